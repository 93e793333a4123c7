r"""Exports a prepared gaze_capture set as NumPy arrays, for training without TensorFlow.

Usage:

    python recipes/export_arrays.py --data_dir=data/quick/tfds \
        --output_dir=data/quick/arrays

    # Small enough to travel (about 50 MB once packed with xz): the first
    # 2,000 training frames (as --max_train_examples=2000 reads them), the
    # first 400 validation and 600 test frames:
    python recipes/export_arrays.py --data_dir=data/bench/tfds \
        --output_dir=runs/gpu/arrays --max_train_examples=2000 \
        --max_eval_examples=600

Decodes every crop of the train, validation and test splits once (with
TensorFlow, here) and writes them as `.npy` files (`tat_keras/data/arrays.py`
describes the layout). `recipes/train_tat.py --backend=jax
--data_dir=OUTPUT_DIR` then trains from them with Keras's JAX backend on a
machine that has no TensorFlow (`recipes/gpu_suite.py`). 64-pixel crops take
36 KiB per frame.
"""

import json
import os
import sys

from absl import app
from absl import flags

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

flags.DEFINE_string("data_dir", None, "TFDS data directory of the prepared set.")
flags.DEFINE_integer("image_size", 64, "Crop size of the prepared set (64 or 128).")
flags.DEFINE_string("output_dir", None, "Folder the arrays are written to.")
flags.DEFINE_list("splits", ["train", "validation", "test"], "Splits to export.")
flags.DEFINE_integer("max_train_examples", None,
                     "Export only the first training frames.")
flags.DEFINE_integer("max_eval_examples", None,
                     "Export only the first validation and test frames (whole "
                     "recordings but the last, in stored order).")
flags.DEFINE_bool("overwrite", False, "Replace the arrays already in output_dir.")
flags.mark_flags_as_required(["data_dir", "output_dir"])
FLAGS = flags.FLAGS


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"Unexpected arguments: {argv[1:]}")
    from tat_keras.data import arrays

    unknown = sorted(set(FLAGS.splits) - set(arrays.SPLITS))
    if unknown:
        raise app.UsageError(f"--splits takes {', '.join(arrays.SPLITS)}. "
                             f"Received: {', '.join(unknown)}")
    if arrays.is_array_folder(FLAGS.output_dir) and not FLAGS.overwrite:
        print(f"error: {FLAGS.output_dir} already holds exported arrays; pass "
              "--overwrite to replace them.", file=sys.stderr)
        return 1
    from tat_keras.data import pipeline

    for split in FLAGS.splits:
        try:
            decoded = pipeline.decode_split(
                FLAGS.data_dir, split, image_size=FLAGS.image_size,
                max_examples=(FLAGS.max_train_examples if split == "train"
                              else FLAGS.max_eval_examples))
        except FileNotFoundError as e:
            print(f"error: {e}", file=sys.stderr)
            return 1
        arrays.write_split(FLAGS.output_dir, split, decoded.images, decoded.gaze_cm,
                           decoded.metadata)
        print(f"{split}: {len(decoded)} frames, {decoded.nbytes / 2**20:.1f} MiB of crops")
    arrays.write_info(FLAGS.output_dir, image_size=FLAGS.image_size, source={
        "data_dir": os.path.abspath(FLAGS.data_dir),
        "max_train_examples": FLAGS.max_train_examples,
        "max_eval_examples": FLAGS.max_eval_examples})
    print(json.dumps(arrays.read_info(FLAGS.output_dir), indent=2))
    return 0


if __name__ == "__main__":
    app.run(main)
