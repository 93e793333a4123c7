r"""What the main job's model is worth: its test error beside two predictors
that never look at the eyes.

Usage (the last step of `make demo`):

    python recipes/demo_summary.py --model_dir=runs/demo --data_dir=data/demo/tfds

Reads `metrics.json` (the Keras model) and `metrics_int8.json` (the int8
TFLite model, from `tflite/evaluate.py`) in `--model_dir`, fits the training
mean and the device-and-orientation prior on the training labels
(`tat_keras/baselines.py`), and prints one table of three rows: the model,
the training mean, the prior. Writes it to `--model_dir/summary.md` and the
figures to `--model_dir/summary.json`.
"""

import json
import os
import sys

from absl import app
from absl import flags

from tat_keras import reporting

flags.DEFINE_string("model_dir", "runs/demo", "The trained run.")
flags.DEFINE_string("data_dir", None, "Prepared data; default: the run's config.json.")
FLAGS = flags.FLAGS

COLUMNS = ("test_error_cm", "test_error_cm_phone", "test_error_cm_tablet")


def _read(path):
    if not os.path.exists(path):
        return None
    with open(path) as f:
        return json.load(f)


def _cell(*values):
    return " / ".join(reporting.format_number(v, 2) for v in values)


def summary_table(keras_metrics, int8_metrics, baseline_metrics):
    """The Markdown table: the model (Keras / int8), then each baseline.

    Args:
        keras_metrics: dict. The Keras model's `metrics.json`.
        int8_metrics: dict or None. The int8 model's evaluation.
        baseline_metrics: dict name -> summary (`baselines.evaluate`).

    >>> row = {"test_error_cm": 2.5, "test_error_cm_phone": 2.0,
    ...        "test_error_cm_tablet": 4.0}
    >>> print(summary_table(row, row, {"training mean": row}).splitlines()[2])
    | GazeNet, Keras / int8 | 2.50 / 2.50 | 2.00 / 2.00 | 4.00 / 4.00 |
    """
    headers = ["predictor", "test error (cm)", "phones", "tablets"]
    if int8_metrics:
        model = ["GazeNet, Keras / int8"] + [
            _cell(keras_metrics.get(c), int8_metrics.get(c)) for c in COLUMNS]
    else:
        model = ["GazeNet, Keras"] + [_cell(keras_metrics.get(c)) for c in COLUMNS]
    rows = [model] + [[name] + [_cell(values.get(c)) for c in COLUMNS]
                      for name, values in baseline_metrics.items()]
    return reporting.markdown_table(headers, rows)


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"Unexpected arguments: {argv[1:]}")
    keras_metrics = _read(os.path.join(FLAGS.model_dir, "metrics.json"))
    if keras_metrics is None:
        print(f"error: no metrics.json in {FLAGS.model_dir}; train the model first "
              "(recipes/train_tat.py --model_dir=...).", file=sys.stderr)
        return 1
    config = _read(os.path.join(FLAGS.model_dir, "config.json")) or {}
    data_dir = FLAGS.data_dir or config.get("data_dir")
    if not data_dir:
        print(f"error: no data_dir in {FLAGS.model_dir}/config.json; pass --data_dir.",
              file=sys.stderr)
        return 1
    int8_metrics = _read(os.path.join(FLAGS.model_dir, "metrics_int8.json"))

    from tat_keras import baselines

    baseline_metrics = baselines.evaluate(
        data_dir, config.get("image_size", 64), config.get("max_train_examples"),
        splits=(("test", "test"),), msd_min_length=config.get("msd_min_length", 5))
    table = summary_table(keras_metrics, int8_metrics, baseline_metrics)
    prior = baseline_metrics["device and orientation prior"]["test_error_cm"]
    margin = prior - keras_metrics["test_error_cm"]
    verdict = (f"The model is {margin:.2f} cm better than the device-and-orientation "
               f"prior on {keras_metrics.get('test_examples')} test frames of "
               f"subjects it never saw." if margin > 0 else
               f"The model is {-margin:.2f} cm WORSE than the device-and-orientation "
               "prior: it does not read the eyes yet (train longer or on more data).")
    jitter = ("Stare jitter (MSD) of the model: "
              + _cell(keras_metrics.get("test_msd_cm"),
                      *([int8_metrics.get("test_msd_cm")] if int8_metrics else []))
              + " cm over the test subjects' stare sequences.")
    text = f"{table}\n\n{verdict}\n{jitter}\n"
    print(f"\n{text}")
    with open(os.path.join(FLAGS.model_dir, "summary.md"), "w") as f:
        f.write(text)
    reporting.write_json(os.path.join(FLAGS.model_dir, "summary.json"), {
        "model": keras_metrics, "model_int8": int8_metrics, **baseline_metrics,
        "margin_over_prior_cm": margin})
    return 0


if __name__ == "__main__":
    app.run(main)
