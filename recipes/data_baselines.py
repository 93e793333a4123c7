r"""Is the data a real learning problem? Error of four predictors on held-out subjects.

Usage (the numbers in `tat_keras/data/gaze_capture/README.md`):

    python recipes/data_baselines.py --data_dir=data/quick/tfds \
        --epochs=8 --width_multiplier=0.25 --batch_size=32 --seeds=1,2 \
        --output=runs/data_baselines.json

On the test split (subjects never seen in training) it measures the mean
Euclidean error in cm, overall and per device type, of:

- `constant`: the mean gaze of the training split, whatever the frame;
- `device_orientation`: the mean gaze of the training frames taken on the
  same device model in the same orientation (the least-squares fit on
  their one-hots; the training mean for a pair training never saw). Device
  and orientation fix where the screen lies from the camera, so they
  explain part of the label in GazeCapture too; a network must do clearly
  better than this to be reading the eyes;
- `face_only`: a `GazeNet` that sees only the face crop;
- `face_and_eyes`: the same `GazeNet` seeing the face and both eye crops.

Both networks are trained the same way, with the standard scheme (hard
ordinal loss only, Eq. 1-3: `GazeTrainer` with `lambda_hard=1`, no mixup, no
teacher, no DwO), the same architecture, width, epochs, batch size, learning
rate schedule (linear warm-up for one epoch, then cosine decay), label range,
augmentation and seed (built by `tat_keras.training.builders` from a
standard-scheme `TrainConfig`, as `train_tat.py` builds them). The only
difference is the input:

    `face_only` sees both eye crops blanked to a constant mid-grey (127.5,
    which the model's pixel normalization maps to 0), in training and in
    evaluation alike, after augmentation. The eye branch then receives the
    same image for every frame, so its output is a constant and carries no
    information about the frame; the network keeps its full architecture
    and parameter count.

Whatever the face-only network predicts comes from the face crop alone
(head pose, position of the face in the crop, and the eyes as far as the
64x64 face crop resolves them); the gap to `face_and_eyes` is what the
high-resolution eye crops add.

Each network is trained once per seed; the table gives the mean and the
sample standard deviation over seeds (the constant predictor has no seed).
Writes `--output` (JSON: resolved flags, per-seed results, summary) and the
same path with `.md` (the markdown table), and prints the table.
"""

import json
import math
import os
import sys
import time

from absl import app
from absl import flags

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

flags.DEFINE_string("data_dir", "data/quick/tfds",
                    "TFDS data directory holding the prepared gaze_capture set.")
flags.DEFINE_integer("image_size", 64, "Crop size of the prepared data.")
flags.DEFINE_integer("epochs", 8, "Training epochs of each network.")
flags.DEFINE_float("width_multiplier", 0.25, "Scales the channels of every convolution.")
flags.DEFINE_integer("batch_size", 32, "Training batch size.")
flags.DEFINE_float("learning_rate", 0.002, "Peak learning rate.")
flags.DEFINE_float("batch_norm_momentum", None,
                   "Momentum of the batch-norm moving statistics; unset: "
                   "GazeNet's default.")
flags.DEFINE_integer("x_bins", 64, "Ordinal bins, horizontal.")
flags.DEFINE_integer("y_bins", 64, "Ordinal bins, vertical.")
flags.DEFINE_bool("augment", True, "Photometric augmentation and crop shifts in training.")
flags.DEFINE_list("seeds", ["1", "2"], "Seeds; each network is trained once per seed.")
flags.DEFINE_integer("max_train_examples", None,
                     "Use only this many training examples (quick checks).")
flags.DEFINE_list("predictors", ["face_only", "face_and_eyes"],
                  "Networks to train (the constant and device-orientation "
                  "predictors are always measured): face_only, face_and_eyes; "
                  "empty for those two alone.")
flags.DEFINE_string("output", "runs/data_baselines.json",
                    "JSON results; the markdown table goes beside it with .md.")
FLAGS = flags.FLAGS

PREDICTORS = ("constant", "device_orientation", "face_only", "face_and_eyes")
FIXED_PREDICTORS = ("constant", "device_orientation")  # No training, no seed.
DESCRIPTIONS = {
    "constant": "constant (training mean)",
    "device_orientation": "device and orientation (training mean per pair)",
    "face_only": "GazeNet, face crop only",
    "face_and_eyes": "GazeNet, face + both eyes",
}
BLANK_PIXEL = 127.5  # Mapped to 0 by the model's x / 127.5 - 1.
EYE_KEYS = ("left_eye", "right_eye")
ERROR_KEYS = ("test_error_cm", "test_error_cm_phone", "test_error_cm_tablet")


def _seeds(values):
    from tat_keras import reporting

    try:
        return reporting.parse_seeds(values)
    except ValueError as error:
        raise app.UsageError(f"--{error}") from None


def blank_eyes(inputs):
    """The same batch of tensors with both eye crops replaced by mid-grey."""
    import tensorflow as tf

    outputs = dict(inputs)
    for key in EYE_KEYS:
        outputs[key] = tf.fill(tf.shape(inputs[key]), BLANK_PIXEL)
    return outputs


def _evaluate(predict_fn, data_dir, image_size):
    from tat_keras import evaluation

    results = {}
    for split, prefix in (("validation", "val"), ("test", "test")):
        gaze_true, gaze_pred, metadata = evaluation.predict_split(
            predict_fn, data_dir, split, image_size=image_size)
        results.update(evaluation.summarize(gaze_true, gaze_pred, metadata,
                                            prefix=prefix))
    return results


def baseline_config(data_dir, *, image_size, epochs, width_multiplier, batch_size,
                    learning_rate, batch_norm_momentum, x_bins, y_bins, augment,
                    max_train_examples, seed):
    """The standard-scheme `TrainConfig` both networks train with: `epochs`
    epochs, the first a linear warm-up (when there are two or more)."""
    from tat_keras.training.config import TrainConfig

    warmup = min(1, epochs - 1)
    return TrainConfig(
        data_dir=data_dir, image_size=image_size, scheme="standard",
        width_multiplier=width_multiplier, x_bins=x_bins, y_bins=y_bins,
        batch_size=batch_size, learning_rate=learning_rate,
        mini_generations=1, epochs_per_generation=epochs - warmup,
        warmup_epochs=warmup, augment=augment,
        max_train_examples=max_train_examples, seed=seed,
        **({} if batch_norm_momentum is None
           else {"batch_norm_momentum": batch_norm_momentum}),
    ).resolved()


def train_network(predictor, config, train_labels):
    """Trains one GazeNet with the builders of `train_tat.py` and evaluates it."""
    import numpy as np

    from tat_keras.training import builders

    face_only = predictor == "face_only"
    config = builders.with_label_range(config, train_labels)
    student = builders.build_student(config)
    trainer = builders.build_trainer(
        config, student, math.ceil(len(train_labels) / config.batch_size))
    inputs = builders.build_inputs(config, validation=False)
    train_data = inputs.train
    if face_only:
        train_data = train_data.map(lambda inputs, gaze: (blank_eyes(inputs), gaze))
    started = time.time()
    history = trainer.fit(train_data, epochs=sum(config.generation_epochs()),
                          steps_per_epoch=inputs.steps_per_epoch, verbose=2)
    train_seconds = time.time() - started

    def predict_fn(inputs):
        if face_only:
            inputs = {key: np.full_like(value, BLANK_PIXEL) if key in EYE_KEYS
                      else value for key, value in inputs.items()}
        return np.asarray(student.decode(student(inputs, training=False)))

    results = _evaluate(predict_fn, config.data_dir, config.image_size)
    results["train_error_cm_last_epoch"] = float(history.history["error_cm"][-1])
    results["train_seconds"] = round(train_seconds, 1)
    results["parameters"] = int(student.count_params())
    return results


def summarize_runs(constant, runs):
    """Mean and sample standard deviation over seeds of each error key.

    `constant`: dict predictor -> results of the predictors without seed."""
    import numpy as np

    summary = {
        name: {key: None if fixed[key] is None else
               {"mean": fixed[key], "std": 0.0, "seeds": 1}
               for key in ERROR_KEYS + ("val_error_cm",)}
        for name, fixed in constant.items()}
    for predictor in PREDICTORS[len(FIXED_PREDICTORS):]:
        finished = [r for r in runs if r["predictor"] == predictor]
        if not finished:
            continue
        summary[predictor] = {}
        for key in ERROR_KEYS + ("val_error_cm",):
            values = [r[key] for r in finished if r[key] is not None]
            if not values:
                summary[predictor][key] = None
                continue
            summary[predictor][key] = {
                "mean": float(np.mean(values)),
                "std": float(np.std(values, ddof=1)) if len(values) > 1 else 0.0,
                "seeds": len(values),
            }
    return summary


def _cell(stats, with_std):
    if stats is None:
        return "-"
    if not with_std or stats["seeds"] < 2:
        return f"{stats['mean']:.2f}"
    return f"{stats['mean']:.2f} ± {stats['std']:.2f}"


def markdown_table(summary, examples):
    """Test error in cm per predictor, overall and per device type."""
    header = (f"| predictor | test error (cm) | phone | tablet | val error (cm) |\n"
              f"|---|---|---|---|---|\n")
    rows = []
    for predictor in PREDICTORS:
        if predictor not in summary:
            continue
        stats = summary[predictor]
        with_std = predictor not in FIXED_PREDICTORS
        cells = [_cell(stats[key], with_std) for key in
                 ERROR_KEYS + ("val_error_cm",)]
        rows.append(f"| {DESCRIPTIONS[predictor]} | " + " | ".join(cells) + " |")
    note = (f"\nTest split: {examples['test']} frames of held-out subjects; "
            f"validation: {examples['val']} frames. Networks: mean ± sample "
            "standard deviation over seeds.\n")
    return header + "\n".join(rows) + "\n" + note


def _write(path, payload, table):
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    with open(path, "w") as f:
        json.dump(payload, f, indent=2)
    with open(os.path.splitext(path)[0] + ".md", "w") as f:
        f.write(table)


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"Unexpected arguments: {argv[1:]}")
    seeds = _seeds(FLAGS.seeds)
    networks = PREDICTORS[len(FIXED_PREDICTORS):]
    unknown = [name for name in FLAGS.predictors if name not in networks]
    if unknown:
        raise app.UsageError(
            f"--predictors must name some of {', '.join(networks)}. "
            f"Received: {','.join(FLAGS.predictors)}")
    if FLAGS.epochs < 1:
        raise app.UsageError(f"--epochs must be positive. Received: {FLAGS.epochs}")
    from tat_keras.data import pipeline

    try:
        train_labels = pipeline.load_labels(FLAGS.data_dir, "train",
                                            image_size=FLAGS.image_size)
    except FileNotFoundError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    if FLAGS.max_train_examples:
        train_labels = train_labels[: FLAGS.max_train_examples]

    started = time.time()
    from tat_keras import baselines

    fixed = baselines.evaluate(FLAGS.data_dir, FLAGS.image_size, FLAGS.max_train_examples)
    constant = fixed["training mean"]
    fixed = {"constant": constant,
             "device_orientation": fixed["device and orientation prior"]}
    examples = {"train": int(len(train_labels)), "val": constant["val_examples"],
                "test": constant["test_examples"]}
    payload = {"flags": {name: FLAGS[name].value for name in (
        "data_dir", "image_size", "epochs", "width_multiplier", "batch_size",
        "learning_rate", "x_bins", "y_bins", "augment", "seeds",
        "max_train_examples", "predictors", "output")},
        "command": " ".join(sys.argv), "examples": examples,
        "constant": constant, "device_orientation": fixed["device_orientation"],
        "runs": []}
    for seed in seeds:
        for predictor in [p for p in networks if p in FLAGS.predictors]:
            print(f"== {predictor}, seed {seed}", flush=True)
            config = baseline_config(
                FLAGS.data_dir, image_size=FLAGS.image_size, epochs=FLAGS.epochs,
                width_multiplier=FLAGS.width_multiplier, batch_size=FLAGS.batch_size,
                learning_rate=FLAGS.learning_rate,
                batch_norm_momentum=FLAGS.batch_norm_momentum, x_bins=FLAGS.x_bins,
                y_bins=FLAGS.y_bins, augment=FLAGS.augment,
                max_train_examples=FLAGS.max_train_examples, seed=seed)
            results = train_network(predictor, config, train_labels)
            payload["runs"].append({"predictor": predictor, "seed": seed, **results})
            print(f"   test error {results['test_error_cm']:.3f} cm, "
                  f"val {results['val_error_cm']:.3f} cm, "
                  f"{results['train_seconds']:.0f} s training", flush=True)
            payload["summary"] = summarize_runs(fixed, payload["runs"])
            payload["seconds"] = round(time.time() - started, 1)
            _write(FLAGS.output, payload, markdown_table(payload["summary"], examples))
    payload["summary"] = summarize_runs(fixed, payload["runs"])
    payload["seconds"] = round(time.time() - started, 1)
    table = markdown_table(payload["summary"], examples)
    _write(FLAGS.output, payload, table)
    print(table)
    print(f"Results: {FLAGS.output} and {os.path.splitext(FLAGS.output)[0]}.md "
          f"({payload['seconds']:.0f} s in all)")
    return 0


if __name__ == "__main__":
    app.run(main)
