r"""Measures what TAT and DwO cost per epoch, as ratios to a standard epoch.

Usage:

    python recipes/benchmark_epoch_cost.py --data_dir=data/bench/tfds \
        --width_multiplier=0.25 --max_examples=1024 --rounds=3 \
        --output=runs/epoch_cost.json

All variants train the same network on the same examples in one process.
The examples are decoded once into memory, so an epoch here is the train
steps alone (`train_on_batch` over every batch); reading the data costs all
variants the same. Each variant first runs one untimed epoch (graph
tracing), then the variants take turns, one epoch each, for `--rounds`
rounds, so that the machine's noise falls on all of them alike; the median
epoch time of each is compared with the standard epoch's. Variants:

- `standard`: the ordinal loss on the labels only;
- `tat`: Eq. 9 with one teacher (an extra forward pass) and feature mixup;
- `standard+dwo`: the standard loss on a batch where 10% of the samples are
  PGD perturbations (T=1);
- `tat+dwo`: both.
"""

import json
import os
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from absl import app  # noqa: E402
from absl import flags  # noqa: E402

flags.DEFINE_string("data_dir", "data/bench/tfds", "Prepared gaze_capture data.")
flags.DEFINE_float("width_multiplier", 0.25, "Network width.")
flags.DEFINE_integer("bins", 64, "Ordinal bins per axis.")
flags.DEFINE_integer("batch_size", 32, "Batch size.")
flags.DEFINE_integer("max_examples", 1024, "Training examples per epoch.")
flags.DEFINE_integer("rounds", 3, "Timed epochs per variant.")
flags.DEFINE_string("output", None, "Write the results to this JSON file.")
FLAGS = flags.FLAGS

DWO = dict(epsilon=3.0, step_size=1.0, steps=1, num_center_bins=8,
           original_fraction=0.9)
VARIANTS = {
    "standard": dict(lambda_hard=1.0),
    "tat": dict(lambda_hard=0.2, lambda_mix=0.4, lambda_teacher=0.6),
    "standard+dwo": dict(lambda_hard=1.0, dwo=DWO),
    "tat+dwo": dict(lambda_hard=0.2, lambda_mix=0.4, lambda_teacher=0.6, dwo=DWO),
}


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"Unexpected arguments: {argv[1:]}")
    import keras
    import numpy as np

    from tat_keras import models
    from tat_keras.data import pipeline
    from tat_keras.training import trainer as trainer_lib

    batches = list(pipeline.make_dataset(
        FLAGS.data_dir, "train", batch_size=FLAGS.batch_size,
        max_examples=FLAGS.max_examples, drop_remainder=True,
    ).as_numpy_iterator())
    labels = pipeline.load_labels(FLAGS.data_dir, "train")
    low, high = labels.min(axis=0) - 1.0, labels.max(axis=0) + 1.0
    size = (high - low) / (FLAGS.bins + 1)
    config = dict(width_multiplier=FLAGS.width_multiplier, x_bins=FLAGS.bins,
                  y_bins=FLAGS.bins, x_low=float(low[0]), x_bin_size=float(size[0]),
                  y_low=float(low[1]), y_bin_size=float(size[1]))

    def run_epoch(trainer):
        for inputs, gaze_cm in batches:
            trainer.train_on_batch(inputs, gaze_cm)

    trainers = {}
    for name, kwargs in VARIANTS.items():
        keras.utils.set_random_seed(0)
        trainer = trainer_lib.GazeTrainer(models.GazeNet(**config), **kwargs)
        trainer.compile(optimizer=keras.optimizers.Adam(1e-3), jit_compile=False)
        if kwargs.get("lambda_teacher"):
            trainer.set_teachers([models.GazeNet(**config).get_weights()])
        run_epoch(trainer)  # Tracing, untimed.
        trainers[name] = trainer

    seconds = {name: [] for name in trainers}
    for round_index in range(FLAGS.rounds):
        for name, trainer in trainers.items():
            started = time.perf_counter()
            run_epoch(trainer)
            seconds[name].append(time.perf_counter() - started)
            print(f"round {round_index + 1}/{FLAGS.rounds} {name:>13}: "
                  f"{seconds[name][-1]:.2f} s")

    base = float(np.median(seconds["standard"]))
    results = {
        "config": {k: FLAGS[k].value for k in ("data_dir", "width_multiplier", "bins",
                                               "batch_size", "max_examples", "rounds")},
        "variants": {
            name: {"median_epoch_seconds": round(float(np.median(s)), 3),
                   "ratio_to_standard": round(float(np.median(s)) / base, 3),
                   "epoch_seconds": [round(v, 3) for v in s]}
            for name, s in seconds.items()
        },
    }
    print("\n| variant | median epoch (s) | ratio to standard |")
    print("|---|---|---|")
    for name, row in results["variants"].items():
        print(f"| {name} | {row['median_epoch_seconds']:.2f} | "
              f"{row['ratio_to_standard']:.2f}x |")
    if FLAGS.output:
        os.makedirs(os.path.dirname(os.path.abspath(FLAGS.output)), exist_ok=True)
        with open(FLAGS.output, "w") as f:
            json.dump(results, f, indent=2)
    return 0


if __name__ == "__main__":
    app.run(main)
