r"""Measures the gaze estimator end to end on every frame of the test recordings.

Usage (the demo's model, int8, on the demo twin's 48 test subjects):

    python recipes/evaluate_estimator.py --raw_dir=data/demo/raw \
        --model=runs/demo/tflite/gaze_int8.tflite --output_dir=runs/demo/end_to_end

From the JPEGs on disk and each recording's device and orientation
(`info.json`, `screen.json`), every frame goes through the estimator as an
app would run it: the face and eye detector (`--detector`), the crops, the
model (`--model`: an exported `.tflite`, int8 for the deployed figures, or a
`.keras` GazeNet), the point on the screen and the One Euro filter. Each
gaze in cm is compared with the dot (`dotInfo.json` `XCam`, `YCam`). The
same model also runs on the data's own boxes of the same frames (frames the
data marks valid), so the detector's cost is the gap between the two.

Reported: the share of frames with a face; the error in cm over the frames
with a face, overall, for phones and for tablets; the same for the data's
crops, and both on the frames both estimated, with whether the end-to-end
error is within 10% of the crops'; MSD over the stare sequences (frames of
one recording sharing a dot), raw and after the estimator's default One
Euro filter; the latency per frame of the whole estimate (detector, crops,
model, screen, filter; JPEG decoding apart), median and p95, on
`--num_threads` LiteRT threads. With `--calibration_dots` (default
0,3,5,9,13; empty for none) each subject is calibrated on the first k dots
they saw (the calibrator `tat_keras.calibration.method_for` chooses: affine
below five dots, ridge on the final feature from five) and measured end to
end on their other dots; `calibration.png` draws that curve beside
published figures on GazeCapture, labelled as such.

Writes to --output_dir: `end_to_end.json` (the figures, the calibration rows
and per-subject records, the recordings skipped), `end_to_end.md` (the
tables), `calibration.png`, `flags.json`, and `recordings/NNNNN.npz`: the
per-frame results of each recording, written as soon as it is done. An
interrupted run loses at most the recording it was in: run the same command
again and it reuses every recording already done for the same model file,
detector and settings (`--noresume` recomputes all).
"""

import json
import os
import sys

from absl import app
from absl import flags

from tat_keras.inference import detector as detector_lib

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

flags.DEFINE_string("raw_dir", None, "Recordings in GazeCapture's raw layout (frames/ and JSON).")
flags.DEFINE_string("model", None, "An exported .tflite (int8 for the deployed figures) or a .keras GazeNet.")
flags.DEFINE_string("output_dir", None, "Folder for end_to_end.json, .md, calibration.png.")
flags.DEFINE_string("split", "test", "Split whose recordings are measured (info.json Dataset).")
flags.DEFINE_enum("detector", detector_lib.DEFAULT_DETECTOR, sorted(detector_lib.DETECTORS),
                  "Face and eye detector (tat_keras/inference/detector.py).")
flags.DEFINE_integer("num_threads", 1, "LiteRT interpreter threads of a .tflite model.")
flags.DEFINE_float("frame_rate", None, "Frames per second for the timestamps; default: read "
                   "from each recording's dotInfo.json Time.")
flags.DEFINE_integer("frame_stride", 1, "Use every n-th frame of each recording.")
flags.DEFINE_integer("max_recordings", None, "Use only the first recordings of the split.")
flags.DEFINE_list("calibration_dots", ["0", "3", "5", "9", "13"],
                  "Numbers of calibration dots k (a subject's first k); empty for none.")
flags.DEFINE_integer("msd_min_length", 5, "Shortest stare sequence counted by MSD.")
flags.DEFINE_string("title", None, "Title of calibration.png; default: the model and data.")
flags.DEFINE_boolean("resume", True, "Reuse the recordings an earlier run with the same "
                     "model, detector and settings finished (--noresume: recompute all).")
flags.mark_flags_as_required(["raw_dir", "model", "output_dir"])
FLAGS = flags.FLAGS


def fail(message):
    print(f"error: {message}", file=sys.stderr)
    return 1


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"Unexpected arguments: {argv[1:]}")
    try:
        ks = sorted({int(k) for k in FLAGS.calibration_dots})
    except ValueError:
        return fail("--calibration_dots must be integers, like 0,3,5,9,13. "
                    f"Received: {FLAGS.calibration_dots}")
    if any(k < 0 for k in ks):
        return fail(f"--calibration_dots must be >= 0. Received: {FLAGS.calibration_dots}")
    if FLAGS.frame_stride < 1:
        return fail(f"--frame_stride must be at least 1. Received: {FLAGS.frame_stride}")
    if FLAGS.frame_rate is not None and not FLAGS.frame_rate > 0:
        return fail(f"--frame_rate must be positive. Received: {FLAGS.frame_rate}")

    from tqdm import tqdm

    from tat_keras import crops
    from tat_keras.data.gaze_capture import layout
    from tat_keras.inference import end_to_end
    from tat_keras.inference import estimator as estimator_lib
    from tat_keras.inference import mediapipe_models
    from tat_keras.inference import screen

    try:
        names, skipped = end_to_end.list_test_recordings(FLAGS.raw_dir, FLAGS.split)
        model = end_to_end.load_model(FLAGS.model, num_threads=FLAGS.num_threads)
        detector = detector_lib.make_detector(FLAGS.detector)
    except (FileNotFoundError, ValueError) as error:
        return fail(str(error))
    if FLAGS.max_recordings is not None:
        names = names[: FLAGS.max_recordings]
    if not names:
        return fail(f"no {FLAGS.split} recording in {FLAGS.raw_dir}: check --raw_dir and --split.")
    estimators = end_to_end.make_estimators(model, detector)
    signature = {
        "model_sha256": end_to_end.file_fingerprint(FLAGS.model),
        "num_threads": FLAGS.num_threads,
        "detector": FLAGS.detector,
        # The code of the path: a change to it makes the saved recordings stale.
        "code_sha256": [end_to_end.file_fingerprint(m.__file__) for m in (
            detector_lib, mediapipe_models, estimator_lib, crops, end_to_end)],
        "frame_rate": FLAGS.frame_rate,
        "frame_stride": FLAGS.frame_stride,
    }
    os.makedirs(FLAGS.output_dir, exist_ok=True)
    with open(os.path.join(FLAGS.output_dir, "flags.json"), "w") as f:
        json.dump(FLAGS.flag_values_dict(), f, indent=2, default=str)

    recordings, results, reused = {}, [], 0
    for name in names:
        try:
            recording = layout.read_recording(os.path.join(FLAGS.raw_dir, name))
            screen.get_device(recording.device)  # The screen mapping must know it.
            recordings[name] = recording
        except layout.RecordingError as error:
            skipped.append((name, f"{error.reason}: {error}"))
        except ValueError as error:
            skipped.append((name, str(error)))
    total = sum(len(range(0, r.num_frames, FLAGS.frame_stride)) for r in recordings.values())
    with tqdm(total=total, desc="Frames", unit=" frames") as bar:
        for name, recording in recordings.items():
            bar.set_postfix(recording=name)
            cache = os.path.join(FLAGS.output_dir, "recordings", f"{name}.npz")
            result = end_to_end.load_result(cache, signature) if FLAGS.resume else None
            if result is not None:
                reused += 1
                bar.update(len(result["frame"]))
            else:
                result = end_to_end.evaluate_recording(
                    recording, estimators, model, frame_rate=FLAGS.frame_rate,
                    frame_stride=FLAGS.frame_stride, on_frame=lambda: bar.update(1))
                end_to_end.save_result(cache, result, signature)
            results.append(result)
    for name, reason in skipped:
        print(f"recording {name} skipped: {reason}")
    if not results:
        return fail("no recording could be measured (see the reasons above).")

    merged = end_to_end.merge(results)
    summary = end_to_end.summarize(merged, msd_min_length=FLAGS.msd_min_length)
    records, calibration_skipped, rows = [], [], []
    if ks:
        try:
            records, calibration_skipped = end_to_end.calibrate_recordings(
                merged, ks, paths=end_to_end.PATHS)
        except ValueError as error:
            return fail(str(error))
        rows = end_to_end.summarize_calibration(records, merged)
    description = (f"{model.description}, detector {signature['detector']}, "
                   f"{len(results)} {FLAGS.split} recordings of {FLAGS.raw_dir}")
    result = {
        "model": os.path.abspath(FLAGS.model),
        "model_description": model.description,
        "raw_dir": os.path.abspath(FLAGS.raw_dir),
        "split": FLAGS.split,
        "detector": signature["detector"],
        "num_recordings": len(results),
        "reused_recordings": reused,
        "skipped_recordings": [{"recording": n, "reason": r} for n, r in skipped],
        "summary": summary,
        "calibration": rows,
        "published_anchors": [dict(a) for a in end_to_end.PUBLISHED_ANCHORS],
        "calibration_skipped": calibration_skipped,
        "calibration_records": records,
    }
    with open(os.path.join(FLAGS.output_dir, "end_to_end.json"), "w") as f:
        json.dump(result, f, indent=2)
    table = end_to_end.format_markdown(summary, rows, description=description)
    with open(os.path.join(FLAGS.output_dir, "end_to_end.md"), "w") as f:
        f.write(table)
    written = ["end_to_end.json", "end_to_end.md"]
    if any(row["path"] == "end_to_end" for row in rows):
        end_to_end.plot_calibration(
            rows, os.path.join(FLAGS.output_dir, "calibration.png"),
            title=FLAGS.title or f"{model.description}, detector {FLAGS.detector}, "
                                 f"{len(results)} {FLAGS.split} subjects")
        written.append("calibration.png")
    print(table)
    if reused:
        print(f"{reused} of {len(results)} recordings reused from an earlier run "
              f"({FLAGS.output_dir}/recordings).")
    print(f"Wrote {', '.join(os.path.join(FLAGS.output_dir, w) for w in written)}")
    return 0


if __name__ == "__main__":
    app.run(main)
