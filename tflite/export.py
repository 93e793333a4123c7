r"""Exports a trained GazeNet to an app-ready `.tflite` (gaze in cm inside).

Usage:
    python tflite/export.py --model_dir=runs/quick --mode=int8
    python tflite/export.py --model_dir=runs/quick --mode=qat \
        --qat_steps=200 --output=runs/quick/tflite/gaze_qat.tflite --overwrite

Modes: float32, float16, dynamic (int8 weights), int8 (full integer,
calibrated on --num_calibration_samples training examples at batch size 1,
uint8 inputs) and qat (quantization-aware fine-tuning through
tensorflow-model-optimization, then full integer). The file's inputs are
`face`, `left_eye`, `right_eye` (1xSxSx3); its outputs `gaze_cm` (1x2, cm),
the bin probabilities `x`, `y` and, but for qat, the final feature
`final_feature` (1x128) that per-user calibration reads. The label range, bin size, input size and
mode are stored in the file and in FILE.json beside it. The data directory
(for int8 and qat) defaults to the one the model was trained on
(`flags.json` of the run).
"""

import json
import os
import sys

from absl import app
from absl import flags

from tat_keras.export import modes  # Imports nothing heavy.

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

flags.DEFINE_string("model_dir", None, "Training run folder holding model.keras.")
flags.DEFINE_enum("mode", "float32", modes.MODES, "Conversion mode.")
flags.DEFINE_string("output", None, "The .tflite to write; default: MODEL_DIR/tflite/gaze_MODE.tflite.")
flags.DEFINE_string("data_dir", None, "Prepared data for int8/qat; default: the run's.")
flags.DEFINE_integer("num_calibration_samples", 300, "int8: calibration samples (batch size 1).")
flags.DEFINE_integer("qat_steps", 200, "qat: fine-tuning steps.")
flags.DEFINE_integer("qat_batch_size", 32, "qat: batch size.")
flags.DEFINE_float("qat_learning_rate", 1e-5, "qat: Adam learning rate.")
flags.DEFINE_integer("seed", 0, "Seed of the calibration / fine-tuning data order.")
flags.DEFINE_boolean("overwrite", False, "Replace an existing output file.")
flags.mark_flag_as_required("model_dir")
FLAGS = flags.FLAGS


def run_data_dir(model_dir):
    """The data_dir a run was trained on (flags.json, else config.json)."""
    for name in ("flags.json", "config.json"):
        path = os.path.join(model_dir, name)
        if os.path.exists(path):
            with open(path) as f:
                data_dir = json.load(f).get("data_dir")
            if data_dir:
                return data_dir
    return None


def fail(message):
    print(f"error: {message}", file=sys.stderr)
    return 1


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"Unexpected arguments: {argv[1:]}")
    model_path = os.path.join(FLAGS.model_dir, "model.keras")
    if not os.path.isfile(model_path):
        return fail(
            f"no saved model at {model_path}. Train one with "
            f"`python recipes/train_tat.py --model_dir={FLAGS.model_dir}` "
            "or pass the --model_dir of a finished run."
        )
    output = FLAGS.output or os.path.join(
        FLAGS.model_dir, "tflite", f"gaze_{FLAGS.mode}.tflite"
    )
    for path in (output, output + ".json"):
        if os.path.exists(path) and not FLAGS.overwrite:
            return fail(f"{path} exists; pass --overwrite to replace it.")

    import keras

    import tat_keras  # noqa: F401  Registers the custom objects.
    from tat_keras.export import tflite as tflite_lib

    model = keras.models.load_model(model_path)
    representative_dataset = qat_dataset = None
    data_dir = FLAGS.data_dir or run_data_dir(FLAGS.model_dir)
    if FLAGS.mode in modes.INTEGER_MODES:  # both need training data
        from tat_keras.data import pipeline

        if not data_dir:
            return fail(
                f"mode {FLAGS.mode} needs the training data, and no data_dir is "
                f"recorded in {FLAGS.model_dir}/flags.json. Pass --data_dir=DIR "
                "(the --data_dir of recipes/prepare_gazecapture.py)."
            )
        try:
            if FLAGS.mode == "int8":
                calibration = pipeline.make_dataset(
                    data_dir, "train", image_size=model.image_size, batch_size=1,
                    shuffle=True, seed=FLAGS.seed,
                    max_examples=FLAGS.num_calibration_samples,
                )
                representative_dataset = tflite_lib.representative_dataset_from(
                    calibration, FLAGS.num_calibration_samples
                )
            else:
                qat_dataset = pipeline.make_dataset(
                    data_dir, "train", image_size=model.image_size,
                    batch_size=FLAGS.qat_batch_size, shuffle=True, seed=FLAGS.seed,
                    repeat=True, drop_remainder=False,
                )
        except (FileNotFoundError, ValueError) as e:
            return fail(
                f"calibration/training data for mode {FLAGS.mode} not found: {e}\n"
                "Pass --data_dir=DIR pointing at the prepared data."
            )

    metadata = tflite_lib.export_tflite(
        model, output, FLAGS.mode,
        representative_dataset=representative_dataset,
        qat_dataset=qat_dataset,
        qat_steps=FLAGS.qat_steps,
        qat_learning_rate=FLAGS.qat_learning_rate,
    )
    sidecar = output + ".json"
    with open(sidecar) as f:
        written = json.load(f)
    written.update({"model_dir": os.path.abspath(FLAGS.model_dir), "data_dir": data_dir})
    with open(sidecar, "w") as f:
        json.dump(written, f, indent=2)
    print(
        f"Wrote {output} ({written['file_bytes']} bytes, mode {metadata['mode']}, "
        f"inputs {metadata['inputs']['face']['dtype']} "
        f"{metadata['inputs']['face']['shape']}) and {sidecar}"
    )
    return 0


if __name__ == "__main__":
    app.run(main)
