r"""Draws the jitter of a baseline and a DwO model on stare sequences (Fig. 1(b)).

Usage:

    python recipes/plot_jitter.py --baseline_dir=runs/reproduce/bench/standard/seed1 \
        --dwo_dir=runs/reproduce/bench/standard-dwo/seed1 --num_sequences=4 \
        --output=runs/jitter.png

Both folders are finished runs of `recipes/train_tat.py` (Table 5 of
`recipes/reproduce.py --suite=table5` makes them, and draws this figure). Both models predict
the test split of the data the baseline was trained on (or `--data_dir`).
The stare sequences shown are the frames of one recording that share a dot
(`recording`, `dot`), at least `--min_length` frames long, taken from the
recording and screen orientation with the most such sequences, longest
first, so the picture shows one subject looking at several dots of one
screen, like the paper's Fig. 1(b). Where the device is a known profile
(`tat_keras.data.devices`), its screen is drawn. The MSD over all test
sequences of both models is printed as well.
"""

import json
import os
import sys

from absl import app
from absl import flags
import numpy as np

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

flags.DEFINE_string("baseline_dir", None, "Finished run of the baseline (no DwO).")
flags.DEFINE_string("dwo_dir", None, "Finished run trained with DwO.")
flags.DEFINE_string("data_dir", None, "Prepared data; default: the baseline run's.")
flags.DEFINE_string("split", "test", "Split whose stare sequences are drawn.")
flags.DEFINE_integer("num_sequences", 4, "Number of stare sequences drawn.")
flags.DEFINE_integer("min_length", 5, "Shortest sequence drawn and counted by MSD.")
flags.DEFINE_integer("max_examples", None, "Read only this many examples of the split.")
flags.DEFINE_list("titles", ["Baseline", "DwO"], "Panel titles: baseline, DwO.")
flags.DEFINE_string("output", "runs/jitter.png", "PNG file to write.")
FLAGS = flags.FLAGS

_TRAIN_HINT = (
    "Train it with `python recipes/train_tat.py "
    "--flagfile=recipes/configs/synthetic_bench.flags --model_dir={dir}{dwo}` "
    "or Table 5 of the protocol: `python recipes/reproduce.py --suite=table5 "
    "--scale=bench --seeds=1` (runs/reproduce/bench/standard/seed1 and "
    "standard-dwo/seed1)."
)


class RunError(Exception):
    """A run folder or its data is missing; the message says what to do."""


def _run_config(run_dir, dwo):
    hint = _TRAIN_HINT.format(dir=run_dir, dwo=" --dwo" if dwo else "")
    if not os.path.isdir(run_dir):
        raise RunError(f"{run_dir} does not exist. {hint}")
    if not os.path.exists(os.path.join(run_dir, "model.keras")):
        raise RunError(f"{run_dir} holds no model.keras (an unfinished run?). {hint}")
    for name in ("config.json", "flags.json"):
        path = os.path.join(run_dir, name)
        if os.path.exists(path):
            with open(path) as f:
                return json.load(f)
    return {}


def _load_model(run_dir):
    import keras

    import tat_keras  # noqa: F401  Registers the custom objects.

    model = keras.models.load_model(os.path.join(run_dir, "model.keras"))
    if not hasattr(model, "decode"):
        raise RunError(f"{run_dir}/model.keras is a {type(model).__name__}, not a "
                       "GazeNet; it was not written by recipes/train_tat.py.")
    return model


def _predict_both(baseline, dwo, data_dir, image_size, split, max_examples):
    """Predictions of both models on the split, in one pass over the data."""
    from tat_keras import evaluation

    dwo_predictions = []

    def predict_fn(inputs):
        # The DwO model sees the very same batch; keep its answer aside.
        dwo_predictions.append(np.asarray(dwo.decode(dwo.predict_on_batch(inputs))))
        return np.asarray(baseline.decode(baseline.predict_on_batch(inputs)))

    gaze_true, baseline_predictions, metadata = evaluation.predict_split(
        predict_fn, data_dir, split, image_size=image_size,
        max_examples=max_examples,
    )
    return gaze_true, baseline_predictions, np.concatenate(dwo_predictions), metadata


def _screen(metadata, index):
    """Screen rectangle in camera cm of the device of frame `index`, or None."""
    if "device" not in metadata or "orientation" not in metadata:
        return None
    try:
        from tat_keras.data import devices
    except ImportError:
        return None
    name = metadata["device"][index]
    name = name.decode() if isinstance(name, bytes) else str(name)
    device = devices.DEVICES.get(name)
    orientation = int(metadata["orientation"][index])
    if device is None or orientation not in devices.ORIENTATIONS:
        return None
    width, height = devices.screen_size_points(device, orientation)
    x, y = devices.screen_to_camera_cm(
        device, np.array([0.0, width]), np.array([0.0, height]), orientation
    )
    return (float(np.min(x)), float(np.min(y)), float(np.max(x)), float(np.max(y)))


def choose_sequences(metadata, num_sequences, min_length, split="test"):
    """Frame indices of the stare sequences to draw, and whether one screen.

    Sequences are (recording, dot) groups of at least `min_length` frames.
    The (recording, orientation) with the most such sequences comes first
    and gives its longest ones; other recordings fill up if it has too few.
    """
    recording = np.asarray(metadata["recording"]).astype(np.int64)
    dot = np.asarray(metadata["dot"]).astype(np.int64)
    orientation = np.asarray(metadata.get("orientation", np.zeros_like(recording)))
    sequences = {}
    for i, key in enumerate(zip(recording, dot)):
        sequences.setdefault(key, []).append(i)
    sequences = {k: v for k, v in sequences.items() if len(v) >= min_length}
    if not sequences:
        raise RunError(
            f"No stare sequence of at least {min_length} frames in the "
            f"{split} split; lower --min_length or use data with longer "
            "sequences (the synthetic twin of recipes/make_synthetic.py has them)."
        )
    groups = {}
    for key, frames in sequences.items():
        group = (key[0], int(orientation[frames[0]]))
        groups.setdefault(group, []).append(key)
    ranked_groups = sorted(groups, key=lambda g: (-len(groups[g]), g))
    chosen = []
    for group in ranked_groups:
        keys = sorted(groups[group], key=lambda k: (-len(sequences[k]), k))
        chosen += keys[: num_sequences - len(chosen)]
        if len(chosen) == num_sequences:
            break
    one_screen = len({(k[0], int(orientation[sequences[k][0]])) for k in chosen}) == 1
    return [(key, np.asarray(sequences[key])) for key in chosen], one_screen


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"Unexpected arguments: {argv[1:]}")
    if not FLAGS.baseline_dir or not FLAGS.dwo_dir:
        raise app.UsageError("--baseline_dir and --dwo_dir are required.")
    if FLAGS.num_sequences < 1 or FLAGS.min_length < 1:
        raise app.UsageError("--num_sequences and --min_length must be at least 1.")
    if len(FLAGS.titles) != 2:
        raise app.UsageError(f"--titles needs two names. Received: {FLAGS.titles}")
    try:
        baseline_config = _run_config(FLAGS.baseline_dir, dwo=False)
        dwo_config = _run_config(FLAGS.dwo_dir, dwo=True)
        data_dir = FLAGS.data_dir or baseline_config.get("data_dir")
        if not data_dir:
            raise RunError(f"{FLAGS.baseline_dir} names no data_dir; pass --data_dir.")
        image_size = int(baseline_config.get("image_size", 64))
        if int(dwo_config.get("image_size", image_size)) != image_size:
            raise RunError(
                f"The runs were trained at different image sizes: {image_size} and "
                f"{dwo_config.get('image_size')}."
            )
        baseline = _load_model(FLAGS.baseline_dir)
        dwo = _load_model(FLAGS.dwo_dir)
        gaze_true, baseline_pred, dwo_pred, metadata = _predict_both(
            baseline, dwo, data_dir, image_size, FLAGS.split, FLAGS.max_examples
        )
        chosen, one_screen = choose_sequences(
            metadata, FLAGS.num_sequences, FLAGS.min_length, FLAGS.split
        )
    except (RunError, FileNotFoundError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 1

    from tat_keras import metrics
    from tat_keras import plots

    sequences = [
        {
            "target": gaze_true[frames].mean(axis=0),
            "predictions": [baseline_pred[frames], dwo_pred[frames]],
            "label": f"rec {key[0]} dot {key[1]} ({len(frames)} frames)",
        }
        for key, frames in chosen
    ]
    screen = _screen(metadata, chosen[0][1][0]) if one_screen else None
    path = plots.plot_jitter(sequences, FLAGS.output, screen=screen, titles=FLAGS.titles)
    ids = (np.asarray(metadata["recording"]), np.asarray(metadata["dot"]))
    for title, predictions in zip(FLAGS.titles, (baseline_pred, dwo_pred)):
        error = float(np.mean(metrics.euclidean_error(gaze_true, predictions)))
        msd = metrics.mean_standard_deviation(predictions, ids, min_length=FLAGS.min_length)
        print(f"{title}: {FLAGS.split} error {error:.3f} cm, MSD {msd:.3f} cm "
              f"(sequences of >= {FLAGS.min_length} frames)")
    print(f"Wrote {path}")
    return 0


if __name__ == "__main__":
    app.run(main)
