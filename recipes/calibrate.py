r"""Per-user calibration: error before and after, against the number of dots.

Usage:

    python recipes/calibrate.py --model=runs/quick/model.keras \
        --data_dir=data/quick/tfds --points=1,3,5,9,13 --output=runs/quick/calibration

For every test subject (a recording) and every k in --points, k of the
subject's dots are chosen (GazeCapture's 13-point layout placed on the
subject's screen where the device is known, the subject kept one
orientation and k <= 13; otherwise, or with --nolayout, k dots spread over
the subject's dots), each method is fitted on those dots'
frames and tested on the frames of the subject's other dots. A subject with
fewer than k + 1 dots is named and left out of the count for that k.
Methods (`tat_keras.calibration`): `affine` (on the prediction), `ridge` (on
the 128-D final feature), `heads` (plain gradient steps on the ordinal
heads, NumPy), `heads_tflite` (the same steps by the `train` signature of
the personalization `.tflite`, under LiteRT) and `auto` (the method
`calibrator_for(k)` chooses).

Writes to --output: `calibration.json` (per method, k and device group: the
mean error over subjects before and after calibration, the confidence
interval of the mean after, the number of subjects; the per-subject records;
the subjects left out; the TFLite-against-NumPy comparison), `calibration.md`
(the tables of docs/estimator.md: per device group, a row per k and a column per
method, and the TFLite comparison), `calibration.png`, `heads.tflite` (the
personalization model) and `flags.json`.
"""

import json
import os
import sys

from absl import app
from absl import flags

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

METHODS = ("affine", "ridge", "heads", "heads_tflite", "auto")

flags.DEFINE_string("model", None, "The trained model.keras.")
flags.DEFINE_string("data_dir", None, "Prepared TFDS data directory.")
flags.DEFINE_string("split", "test", "Split whose subjects are calibrated.")
flags.DEFINE_list("points", ["1", "3", "5", "9", "13"], "Numbers of calibration dots k.")
flags.DEFINE_string("output", None, "Folder for calibration.json, .md, .png.")
flags.DEFINE_list("methods", list(METHODS), f"Methods among {', '.join(METHODS)}.")
flags.DEFINE_float("affine_alpha", 10.0, "Pull of the affine map toward the identity (cm^2).")
flags.DEFINE_float("ridge_alpha", 1.0, "Ridge penalty, relative to the mean squared feature.")
flags.DEFINE_integer("head_steps", 100, "Gradient steps of head fine-tuning.")
flags.DEFINE_float("head_learning_rate", 0.01, "Step size of head fine-tuning.")
flags.DEFINE_integer("tflite_batch_size", 256,
                     "Fixed train batch of the personalization .tflite; also the most "
                     "calibration frames any method sees (evenly spaced).")
flags.DEFINE_boolean("layout", True, "Choose the calibration dots by GazeCapture's 13-point layout "
                     "where the device is known (--nolayout: spread over the subject's dots).")
flags.DEFINE_integer("batch_size", 128, "Batch size of the network's forward pass.")
flags.DEFINE_integer("max_examples", None, "Use only the first examples of the split.")
flags.mark_flags_as_required(["model", "data_dir", "output"])
FLAGS = flags.FLAGS


def fail(message):
    print(f"error: {message}", file=sys.stderr)
    return 1


def network_outputs(model, data_dir, split, batch_size, max_examples):
    """Prediction, final feature, truth and metadata of every frame."""
    import numpy as np
    from tqdm import tqdm

    from tat_keras import calibration
    from tat_keras.data import pipeline

    dataset = pipeline.make_dataset(
        data_dir, split, image_size=model.image_size, batch_size=batch_size,
        with_metadata=True, max_examples=max_examples,
    )
    extractor = calibration.outputs_with_feature(model)
    parts = {"gaze_cm": [], "final_feature": [], "true": []}
    metadata = {}
    for inputs, gaze_cm, meta in tqdm(dataset.as_numpy_iterator(), desc="Network", unit=" batches"):
        outputs = extractor(inputs, training=False)
        parts["gaze_cm"].append(model.decode({k: np.asarray(outputs[k]) for k in ("x", "y")}))
        parts["final_feature"].append(np.asarray(outputs["final_feature"]))
        parts["true"].append(gaze_cm)
        for key, value in meta.items():
            metadata.setdefault(key, []).append(np.asarray(value))
    if not parts["true"]:
        raise ValueError(f"Split {split!r} in {data_dir} has no examples.")
    arrays = {key: np.concatenate(value).astype(np.float64) for key, value in parts.items()}
    metadata = {key: np.concatenate(value) for key, value in metadata.items()}
    return arrays, metadata


def layouts_of(metadata):
    """Per subject: the 13-point layout in cm on their screen, or None.

    The layout fits a subject who kept one orientation on a known device;
    one who turned the device saw the dots on screens turned differently,
    so their dots are spread instead (None).
    """
    import numpy as np

    from tat_keras import calibration
    from tat_keras.data import devices

    layouts = {}
    for subject in np.unique(metadata["recording"]):
        rows = metadata["recording"] == subject
        name = metadata["device"][rows][0]
        name = name.decode() if isinstance(name, bytes) else str(name)
        orientations = np.unique(metadata["orientation"][rows])
        if name not in devices.DEVICES or len(orientations) > 1:
            layouts[subject.item()] = None
            continue
        device = devices.DEVICES[name]
        orientation = int(orientations[0])
        width, height = devices.screen_size_points(device, orientation)
        fractions = calibration.GAZECAPTURE_13_POINT_LAYOUT
        x_cm, y_cm = devices.screen_to_camera_cm(
            device, fractions[:, 0] * width, fractions[:, 1] * height, orientation)
        layouts[subject.item()] = np.stack([x_cm, y_cm], axis=-1)
    return layouts


def comparison(rows):
    """Head fine-tuning by the .tflite against NumPy, per k (all subjects)."""
    by_key = {(r["method"], r["k"]): r for r in rows if r["group"] == "all"}
    result = []
    for (method, k), python in sorted(by_key.items()):
        device = by_key.get(("heads_tflite", k))
        if method != "heads" or device is None:
            continue
        result.append({
            "k": k,
            "num_subjects": python["num_subjects"],
            "error_before": python["error_before"],
            "numpy_error_after": python["error_after"],
            "tflite_error_after": device["error_after"],
            "relative_gap": device["error_after"] / python["error_after"] - 1.0,
            "numpy_ms_per_step": python.get("ms_per_step"),
            "tflite_ms_per_step": device.get("ms_per_step"),
        })
    return result


def markdown(rows, auto_method, against_numpy):
    """calibration.md: the tables docs/estimator.md shows, as they are."""
    from tat_keras import calibration

    parts = []
    for group, title in (("all", "All test subjects"), ("phone", "Phone subjects"),
                         ("tablet", "Tablet subjects")):
        table = calibration.format_table(rows, group)
        if table:
            parts.append(f"{title}: mean error over subjects after calibration, cm "
                         f"(95% CI), and its change against before.\n\n{table}")
    if auto_method:
        parts.append("`auto` is " + ", ".join(f"{m} for k={k}" for k, m in auto_method.items()) + ".")
    if against_numpy:
        lines = ["Head fine-tuning: the `.tflite` `train` signature (LiteRT, 1 thread) "
                 "against the NumPy steps, same subjects and dots.", "",
                 "| k | subjects | NumPy (cm) | TFLite (cm) | gap | NumPy ms/step | TFLite ms/step |",
                 "|---:|---:|---:|---:|---:|---:|---:|"]
        for e in against_numpy:
            lines.append(f"| {e['k']} | {e['num_subjects']} | {e['numpy_error_after']:.3f} | "
                         f"{e['tflite_error_after']:.3f} | {100 * e['relative_gap']:+.1f}% | "
                         f"{e['numpy_ms_per_step']:.2f} | {e['tflite_ms_per_step']:.2f} |")
        parts.append("\n".join(lines))
    return "\n\n".join(parts) + "\n"


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"Unexpected arguments: {argv[1:]}")
    try:
        points = sorted({int(p) for p in FLAGS.points})
    except ValueError:
        return fail(f"--points must be integers, like 1,3,5,9,13. Received: {FLAGS.points}")
    if not points or points[0] < 1:
        return fail(f"--points must be positive. Received: {FLAGS.points}")
    unknown = sorted(set(FLAGS.methods) - set(METHODS))
    if unknown:
        return fail(f"unknown --methods {unknown}; choose among {', '.join(METHODS)}.")
    if not os.path.isfile(FLAGS.model):
        return fail(f"no model at {FLAGS.model}. Train one with `make demo` or "
                    "`python recipes/train_tat.py`, then pass its model.keras.")

    import keras
    import numpy as np
    from tqdm import tqdm

    import tat_keras  # noqa: F401  Registers the model's classes.
    from tat_keras import calibration
    from tat_keras import plots
    from tat_keras.data import pipeline
    from tat_keras.export import personalization

    os.makedirs(FLAGS.output, exist_ok=True)
    with open(os.path.join(FLAGS.output, "flags.json"), "w") as f:
        json.dump(FLAGS.flag_values_dict(), f, indent=2, default=str)

    try:
        pipeline.load_builder(FLAGS.data_dir)
    except FileNotFoundError as error:
        return fail(str(error))
    model = keras.models.load_model(FLAGS.model)
    fingerprint = calibration.model_fingerprint(model)
    heads = calibration.OrdinalHeads.from_model(model)
    arrays, metadata = network_outputs(
        model, FLAGS.data_dir, FLAGS.split, FLAGS.batch_size, FLAGS.max_examples)
    samples = {key: arrays[key] for key in ("gaze_cm", "final_feature")}
    subjects = metadata["recording"]

    step_options = {"steps": FLAGS.head_steps, "learning_rate": FLAGS.head_learning_rate}
    factories = {
        "affine": lambda k: calibration.AffineCalibrator(FLAGS.affine_alpha, fingerprint),
        "ridge": lambda k: calibration.RidgeCalibrator(FLAGS.ridge_alpha, model_fingerprint=fingerprint),
        "heads": lambda k: calibration.HeadFineTuning(heads, model_fingerprint=fingerprint, **step_options),
        "auto": lambda k: factories[calibration.method_for(k)](k),
    }
    if "heads_tflite" in FLAGS.methods:
        tflite_path = os.path.join(FLAGS.output, "heads.tflite")
        personalization.export_personalization(model, tflite_path, FLAGS.tflite_batch_size)
        runner = personalization.PersonalizationModel(tflite_path, num_threads=1)
        factories["heads_tflite"] = lambda k: personalization.TFLiteHeadFineTuning(
            runner, heads, model_fingerprint=fingerprint, **step_options)
    methods = {name: factories[name] for name in FLAGS.methods}

    records, skipped = calibration.evaluate_subjects(
        samples, arrays["true"], subjects, metadata["dot"], points, methods,
        layouts=layouts_of(metadata) if FLAGS.layout else None, max_calibration_samples=FLAGS.tflite_batch_size,
        progress=lambda items: tqdm(items, desc="Subjects", unit=" subjects"),
    )
    for entry in skipped:
        print(f"subject {entry['subject']}: {entry['num_dots']} dots, too few for "
              f"k={entry['k']} (needs {entry['k'] + 1}: k to calibrate, one to test); "
              "left out of the count for that k.")
    num_subjects = len(np.unique(subjects))
    per_k = {k: num_subjects - sum(1 for e in skipped if e["k"] == k) for k in points}
    device_types = {s.item(): ("phone", "tablet")[int(metadata["device_type"][subjects == s][0])]
                    for s in np.unique(subjects)}
    rows = calibration.mean_errors(records, groups=device_types)
    result = {
        "model": os.path.abspath(FLAGS.model),
        "model_fingerprint": fingerprint,
        "data_dir": os.path.abspath(FLAGS.data_dir),
        "split": FLAGS.split,
        "num_subjects": num_subjects,
        "subjects_per_k": {str(k): n for k, n in per_k.items()},
        "auto_method": {str(k): calibration.method_for(k) for k in points},
        "summary": rows,
        "tflite_against_numpy": comparison(rows),
        "skipped": skipped,
        "records": records,
    }
    with open(os.path.join(FLAGS.output, "calibration.json"), "w") as f:
        json.dump(result, f, indent=2)
    table = markdown(rows, result["auto_method"], result["tflite_against_numpy"])
    with open(os.path.join(FLAGS.output, "calibration.md"), "w") as f:
        f.write(table)
    if rows:
        plots.plot_calibration(rows, os.path.join(FLAGS.output, "calibration.png"))
    print(table)
    print("subjects per k: " + ", ".join(f"k={k}: {n}" for k, n in per_k.items()))
    print(f"Wrote {FLAGS.output}/calibration.json, calibration.md"
          + (", calibration.png" if rows else " (no k had a subject with enough dots: no plot)"))
    return 0


if __name__ == "__main__":
    app.run(main)
