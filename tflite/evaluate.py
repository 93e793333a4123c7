r"""Evaluates a `.tflite` gaze model on a prepared split with LiteRT.

Usage:
    python tflite/evaluate.py --tflite=runs/quick/tflite/gaze_int8.tflite
    python tflite/evaluate.py --tflite=runs/quick/tflite/gaze_int8.tflite \
        --data_dir=data/quick/tfds --output=runs/quick/tflite/gaze_int8.eval.json

Runs the file one sample at a time through the LiteRT interpreter's
signature runner (`ai_edge_litert`) and prints the same keys as
`recipes/evaluate.py`: `test_error_cm`, per device type, `test_msd_cm` and
`test_msd_sequences`. The data directory defaults to the one recorded in
FILE.json by tflite/export.py.
"""

import json
import os
import sys

from absl import app
from absl import flags

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

flags.DEFINE_string("tflite", None, "The .tflite file from tflite/export.py.")
flags.DEFINE_string("data_dir", None, "Prepared data; default: the one in FILE.json.")
flags.DEFINE_enum("split", "test", ["train", "validation", "test"], "Split to evaluate.")
flags.DEFINE_integer("image_size", None, "Crop size of the data; default: the model's input size.")
flags.DEFINE_integer("msd_min_length", 5, "Shortest stare sequence counted by MSD.")
flags.DEFINE_integer("max_examples", None, "Evaluate at most this many examples.")
flags.DEFINE_integer("num_threads", 2, "Interpreter threads.")
flags.DEFINE_string("output", None, "Also write the metrics to this JSON file.")
flags.DEFINE_boolean("overwrite", False, "Replace an existing --output file.")
flags.mark_flag_as_required("tflite")
FLAGS = flags.FLAGS


def fail(message):
    print(f"error: {message}", file=sys.stderr)
    return 1


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"Unexpected arguments: {argv[1:]}")
    if FLAGS.output and os.path.exists(FLAGS.output) and not FLAGS.overwrite:
        return fail(f"{FLAGS.output} exists; pass --overwrite to replace it.")
    from tat_keras import evaluation
    from tat_keras import model_files
    from tat_keras.export import runner as runner_lib

    try:
        model_files.check_tflite_file(FLAGS.tflite)
        model = runner_lib.TFLiteGazeModel(FLAGS.tflite, num_threads=FLAGS.num_threads)
    except (FileNotFoundError, ValueError) as e:
        return fail(str(e))
    data_dir = FLAGS.data_dir
    sidecar = FLAGS.tflite + ".json"
    if data_dir is None and os.path.exists(sidecar):
        with open(sidecar) as f:
            data_dir = json.load(f).get("data_dir")
    if not data_dir:
        return fail(f"no data_dir recorded in {sidecar}; pass --data_dir=DIR.")
    image_size = FLAGS.image_size or model.image_size
    try:
        gaze_true, gaze_pred, metadata = evaluation.predict_split(
            model, data_dir, FLAGS.split, image_size=image_size, batch_size=64,
            max_examples=FLAGS.max_examples,
        )
    except (FileNotFoundError, ValueError) as e:
        return fail(str(e))
    results = evaluation.summarize(
        gaze_true, gaze_pred, metadata, prefix=FLAGS.split.replace("validation", "val"),
        msd_min_length=FLAGS.msd_min_length,
    )
    results.update({
        "tflite": FLAGS.tflite,
        "mode": (model.metadata or {}).get("mode"),
        "file_bytes": os.path.getsize(FLAGS.tflite),
    })
    print(json.dumps(results, indent=2))
    if FLAGS.output:
        with open(FLAGS.output, "w") as f:
            json.dump(results, f, indent=2)
    return 0


if __name__ == "__main__":
    app.run(main)
