r"""Recomputes a run's metrics from its saved model.

Usage:

    python recipes/evaluate.py --model_dir=runs/quick
    python recipes/evaluate.py --model_dir=runs/quick --data_dir=data/quick/tfds \
        --msd_min_length=5 --output=runs/quick/metrics_recomputed.json

Prints the same keys as the run's `metrics.json` (error in cm on train,
validation and test, per device type, and MSD over the test stare sequences
with at least `--msd_min_length` frames, with the number of sequences
counted). The data directory defaults to the one the run was trained on.
"""

import json
import os
import sys

from absl import app
from absl import flags

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

flags.DEFINE_string("model_dir", None, "Folder of a finished training run.")
flags.DEFINE_string("data_dir", None, "Prepared data; default: the run's own.")
flags.DEFINE_integer("msd_min_length", None,
                     "Shortest stare sequence counted by MSD; default: the run's (5).")
flags.DEFINE_string("output", None, "Also write the metrics to this JSON file.")
flags.mark_flag_as_required("model_dir")
FLAGS = flags.FLAGS


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"Unexpected arguments: {argv[1:]}")
    model_path = os.path.join(FLAGS.model_dir, "model.keras")
    config_path = os.path.join(FLAGS.model_dir, "config.json")
    if not os.path.exists(model_path) or not os.path.exists(config_path):
        print(f"error: {FLAGS.model_dir} holds no finished run (model.keras and "
              "config.json); train one with recipes/train_tat.py.", file=sys.stderr)
        return 1
    import keras

    import tat_keras  # noqa: F401  Registers the custom objects.
    from tat_keras.training import experiment

    with open(config_path) as f:
        config = json.load(f)
    model = keras.models.load_model(model_path)
    try:
        results = experiment.evaluate_model(
            model,
            FLAGS.data_dir or config["data_dir"],
            image_size=config["image_size"],
            msd_min_length=FLAGS.msd_min_length or config["msd_min_length"],
            max_train_examples=config.get("max_train_examples"),
        )
    except FileNotFoundError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    print(json.dumps(results, indent=2))
    if FLAGS.output:
        with open(FLAGS.output, "w") as f:
            json.dump(results, f, indent=2)
    return 0


if __name__ == "__main__":
    app.run(main)
