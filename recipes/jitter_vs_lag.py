r"""Jitter against lag: filters on a model's predictions, and a DwO model raw.

Usage (the table of docs/estimator.md and docs/jitter_vs_lag.png, on the quick set):

    python recipes/train_tat.py --flagfile=recipes/configs/synthetic_quick.flags \
        --scheme=standard --nodwo --model_dir=runs/std
    python recipes/train_tat.py --flagfile=recipes/configs/synthetic_quick.flags \
        --scheme=standard --dwo --model_dir=runs/dwo
    python recipes/jitter_vs_lag.py --data_dir=data/quick/tfds \
        --model=runs/std/model.keras --dwo_model=runs/dwo/model.keras \
        --output_dir=runs/jitter_vs_lag --plot=docs/jitter_vs_lag.png

The test recordings of the synthetic set are streams: each subject stares at
a few dots in turn, one stare sequence (`dot`) after the other. Every
filter runs over each recording's valid frames in order, at the data's own
frame rate (read from `dot_time`), restarting at each recording. For each
filter and setting it reports:

- `msd_cm`: MSD (Eq. 10-12) over the stare sequences, as the paper counts it;
- `msd_settled_cm`: MSD over the second half of each sequence, once a slow
  filter has arrived (jitter alone, without the lag's share);
- `lag_ms`: mean time to cover 90% of a dot change, from the first frame of
  the new dot, between the model's own mean raw predictions for the old dot
  (its last frames) and the new one (its second half); only changes of at
  least `--min_step_cm` count;
- `error_cm`: mean error of the filtered points.

The DwO model runs raw and with the recommended One Euro setting, beside the
model trained without DwO. The recommended setting is the One Euro setting
with the lowest `msd_cm` whose `lag_ms` stays within `--max_extra_lag_ms` of
the raw predictions'. Writes `jitter_vs_lag.json` and prints a Markdown table.
"""

import json
import os
import sys

# Before the imports: `jitter_lag` loads TensorFlow (through `tat_keras.metrics`).
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from absl import app  # noqa: E402
from absl import flags  # noqa: E402
import numpy as np  # noqa: E402

from tat_keras import plots  # noqa: E402
from tat_keras import smoothing  # noqa: E402
from tat_keras.inference import jitter_lag  # noqa: E402

flags.DEFINE_string("data_dir", None, "Prepared TFDS data (gaze_capture).")
flags.DEFINE_string("model", None, "A .keras model trained without DwO.")
flags.DEFINE_string("dwo_model", None, "A .keras model trained with DwO on the same data.")
flags.DEFINE_string("output_dir", None, "Folder for jitter_vs_lag.json.")
flags.DEFINE_string("plot", None, "PNG of MSD against lag.")
flags.DEFINE_float("min_step_cm", 3.0, "Smallest dot change counted for the lag.")
flags.DEFINE_float("max_extra_lag_ms", 140.0,
                   "Lag a recommended One Euro setting may add to the raw predictions'.")
flags.DEFINE_integer("msd_min_length", 5, "Shortest stare sequence counted by MSD.")
flags.mark_flags_as_required(["data_dir", "model", "output_dir"])
FLAGS = flags.FLAGS

ONE_EURO_SETTINGS = [
    (min_cutoff, beta) for min_cutoff in (0.3, 1.0, 3.0) for beta in (0.0, 0.05, 0.3, 1.0)
]
EMA_TIME_CONSTANTS = (0.05, 0.1, 0.2, 0.4)
KALMAN_PROCESS_NOISE = (10.0, 100.0, 1000.0)


def _predict(model_path, data_dir):
    import keras

    import tat_keras  # noqa: F401
    from tat_keras import evaluation

    model = keras.models.load_model(model_path, compile=False)

    def predict(inputs):
        return model.decode({k: np.asarray(v) for k, v in model.predict_on_batch(inputs).items()})

    gaze_true, gaze_pred, meta = evaluation.predict_split(
        predict, data_dir, "test", image_size=int(model.image_size)
    )
    order = np.lexsort((meta["frame"], meta["recording"]))
    meta = {k: np.asarray(v)[order] for k, v in meta.items()}
    return np.asarray(gaze_true, np.float64)[order], np.asarray(gaze_pred, np.float64)[order], meta


def evaluate(name, family, setting, make_filter, gaze_true, raw, meta, rate, min_step_cm,
             msd_min_length):
    outputs, _ = jitter_lag.filter_recordings(make_filter, raw, meta, rate)
    row = {"name": name, "family": family, "setting": setting}
    row.update(jitter_lag.jitter_and_lag(outputs, raw, gaze_true, meta, rate,
                                         min_step_cm=min_step_cm,
                                         msd_min_length=msd_min_length))
    return row


def _filters():
    rows = [("raw", "raw", {}, None)]
    for min_cutoff, beta in ONE_EURO_SETTINGS:
        rows.append((
            f"one_euro fc={min_cutoff} beta={beta}", "one_euro",
            {"min_cutoff": min_cutoff, "beta": beta},
            lambda m=min_cutoff, b=beta: smoothing.OneEuroFilter(m, b),
        ))
    for tau in EMA_TIME_CONSTANTS:
        rows.append((f"ema tau={tau}s", "ema", {"time_constant": tau},
                     lambda t=tau: smoothing.ExponentialMovingAverage(t)))
    for q in KALMAN_PROCESS_NOISE:
        rows.append((f"kalman q={q:g}", "kalman", {"process_noise": q, "measurement_noise": 1.0},
                     lambda q=q: smoothing.ConstantVelocityKalman(q, 1.0)))
    return rows


def plot(rows, path):
    """MSD against lag of every filter and setting (`plots.plot_jitter_against_lag`)."""
    points = [{"family": r["family"], "lag_ms": r["lag_ms"], "msd_cm": r["msd_cm"],
               "label": r["name"].replace("one_euro ", "").replace("dwo ", "")}
              for r in rows]
    plots.plot_jitter_against_lag(
        points, path, title="Jitter against lag, quick synthetic test recordings")


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"Unexpected arguments: {argv[1:]}")
    for path in (FLAGS.model, FLAGS.dwo_model):
        if path and not os.path.isfile(path):
            print(f"error: no model at {path}; train one with recipes/train_tat.py "
                  "(see this file's docstring)", file=sys.stderr)
            return 1
    gaze_true, raw, meta = _predict(FLAGS.model, FLAGS.data_dir)
    rate = jitter_lag.frame_rate(meta)
    args = (gaze_true, raw, meta, rate, FLAGS.min_step_cm, FLAGS.msd_min_length)
    rows = [evaluate(name, family, setting, make, *args)
            for name, family, setting, make in _filters()]
    raw_lag = rows[0]["lag_ms"]
    candidates = [r for r in rows if r["family"] == "one_euro"
                  and r["lag_ms"] <= raw_lag + FLAGS.max_extra_lag_ms]
    recommended = min(candidates, key=lambda r: r["msd_cm"]) if candidates else None
    if FLAGS.dwo_model:
        dwo_true, dwo_raw, dwo_meta = _predict(FLAGS.dwo_model, FLAGS.data_dir)
        dwo_args = (dwo_true, dwo_raw, dwo_meta, rate, FLAGS.min_step_cm, FLAGS.msd_min_length)
        rows.append(evaluate("dwo raw", "dwo_raw", {}, None, *dwo_args))
        if recommended:
            setting = recommended["setting"]
            rows.append(evaluate(
                f"dwo one_euro fc={setting['min_cutoff']} beta={setting['beta']}",
                "dwo_one_euro", setting,
                lambda: smoothing.OneEuroFilter(setting["min_cutoff"], setting["beta"]),
                *dwo_args,
            ))
    result = {
        "data_dir": FLAGS.data_dir,
        "model": FLAGS.model,
        "dwo_model": FLAGS.dwo_model,
        "frame_rate_hz": rate,
        "test_frames": int(len(raw)),
        "min_step_cm": FLAGS.min_step_cm,
        "max_extra_lag_ms": FLAGS.max_extra_lag_ms,
        "recommended": None if recommended is None else recommended["name"],
        "rows": rows,
    }
    os.makedirs(FLAGS.output_dir, exist_ok=True)
    with open(os.path.join(FLAGS.output_dir, "jitter_vs_lag.json"), "w") as f:
        json.dump(result, f, indent=2)
    if FLAGS.plot:
        plot(rows, FLAGS.plot)
    print(f"frame rate {rate:.1f} Hz, {len(raw)} test frames, "
          f"{rows[0]['transitions']} dot changes of at least {FLAGS.min_step_cm} cm")
    print("| filter | MSD (cm) | MSD, second half (cm) | lag (ms) | error (cm) |")
    print("|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['name']} | {r['msd_cm']:.3f} | {r['msd_settled_cm']:.3f} | "
              f"{r['lag_ms']:.0f} | {r['error_cm']:.2f} |")
    print(f"recommended: {result['recommended']}")
    return 0


if __name__ == "__main__":
    app.run(main)
