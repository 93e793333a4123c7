r"""Jitter against lag: filters on a model's predictions, and a DwO model raw.

Usage (the README's table and docs/jitter_vs_lag.png, on the quick set):

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

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from absl import app  # noqa: E402
from absl import flags  # noqa: E402
import numpy as np  # noqa: E402

from tat_keras import metrics  # noqa: E402
from tat_keras import smoothing  # noqa: E402

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


def frame_rate(meta):
    """The data's frame rate from `dot_time` steps within a stare sequence."""
    same = (np.diff(meta["recording"]) == 0) & (np.diff(meta["dot"]) == 0) & (
        np.diff(meta["frame"]) == 1
    )
    steps = np.diff(meta["dot_time"].astype(np.float64))[same]
    return float(1.0 / np.median(steps))


def _run_filter(make_filter, preds, meta, rate):
    out = np.empty_like(preds)
    times = meta["frame"].astype(np.float64) / rate
    for recording in np.unique(meta["recording"]):
        rows = np.flatnonzero(meta["recording"] == recording)
        if make_filter is None:
            out[rows] = preds[rows]
        else:
            out[rows] = smoothing.filter_sequence(make_filter(), preds[rows], times[rows])
    return out, times


def _second_half(meta):
    keep = np.zeros(len(meta["dot"]), bool)
    keys = meta["recording"].astype(np.int64) * 10000 + meta["dot"].astype(np.int64)
    for key in np.unique(keys):
        rows = np.flatnonzero(keys == key)
        keep[rows[len(rows) // 2:]] = True
    return keep


def _transitions(raw, meta, rate, min_step_cm):
    """(rows of the recording, change time, start level, end level) per dot change."""
    found = []
    times = meta["frame"].astype(np.float64) / rate
    for recording in np.unique(meta["recording"]):
        rows = np.flatnonzero(meta["recording"] == recording)
        dots = meta["dot"][rows]
        for i in np.flatnonzero(np.diff(dots) != 0):
            old = rows[: i + 1][dots[: i + 1] == dots[i]]
            new = rows[i + 1:][dots[i + 1:] == dots[i + 1]]
            if len(old) < 4 or len(new) < 4:
                continue
            start = raw[old[-5:]].mean(axis=0)
            end = raw[new[len(new) // 2:]].mean(axis=0)
            if np.linalg.norm(end - start) >= min_step_cm:
                segment = np.concatenate([old[-5:], new])
                found.append((segment, times[new[0]], start, end))
    return found


def evaluate(name, family, setting, make_filter, gaze_true, raw, meta, rate, min_step_cm,
             msd_min_length):
    out, times = _run_filter(make_filter, raw, meta, rate)
    ids = (meta["recording"], meta["dot"])
    settled = _second_half(meta)
    lags = [
        smoothing.step_lag(times[rows], out[rows], start, end, change)
        for rows, change, start, end in _transitions(raw, meta, rate, min_step_cm)
    ]
    lags = np.asarray(lags)
    return {
        "name": name,
        "family": family,
        "setting": setting,
        "msd_cm": metrics.mean_standard_deviation(out, ids, min_length=msd_min_length),
        "msd_settled_cm": metrics.mean_standard_deviation(
            out[settled], (ids[0][settled], ids[1][settled]),
            min_length=max(msd_min_length // 2, 2),
        ),
        "lag_ms": 1000 * float(np.nanmean(lags)),
        "lag_never_reached": int(np.sum(np.isnan(lags))),
        "transitions": int(len(lags)),
        "error_cm": float(np.mean(np.linalg.norm(out - gaze_true, axis=1))),
    }


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
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    styles = {"raw": ("k", "s"), "one_euro": ("tab:blue", "o"), "ema": ("tab:orange", "^"),
              "kalman": ("tab:green", "v"), "dwo_raw": ("tab:red", "*"),
              "dwo_one_euro": ("tab:purple", "P")}
    fig, ax = plt.subplots(figsize=(8, 5.5))
    for family, (colour, marker) in styles.items():
        chosen = [r for r in rows if r["family"] == family]
        if not chosen:
            continue
        ax.scatter([r["lag_ms"] for r in chosen], [r["msd_cm"] for r in chosen], c=colour,
                   marker=marker, s=90 if family.startswith("dwo") else 45, label=family)
        for r in chosen:
            label = r["name"].replace("one_euro ", "").replace("dwo ", "")
            ax.annotate(label, (r["lag_ms"], r["msd_cm"]), fontsize=6,
                        xytext=(3, 3), textcoords="offset points")
    ax.set_xlabel("lag: time to 90% of a dot change (ms)")
    ax.set_ylabel("MSD over stare sequences (cm)")
    ax.set_title("Jitter against lag, quick synthetic test recordings")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    fig.savefig(path, dpi=120)
    plt.close(fig)


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"Unexpected arguments: {argv[1:]}")
    for path in (FLAGS.model, FLAGS.dwo_model):
        if path and not os.path.isfile(path):
            print(f"error: no model at {path}; train one with recipes/train_tat.py "
                  "(see this file's docstring)", file=sys.stderr)
            return 1
    gaze_true, raw, meta = _predict(FLAGS.model, FLAGS.data_dir)
    rate = frame_rate(meta)
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
