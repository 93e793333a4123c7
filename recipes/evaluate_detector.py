r"""Measures the face and eye detector against the data's own boxes.

Usage (the figures of docs/estimator.md, on the quick synthetic set):

    python recipes/evaluate_detector.py --raw_dir=data/quick/raw --fit \
        --detector=mediapipe --variant=short_range \
        --output=runs/detector/mediapipe_short_range.json
    python recipes/evaluate_detector.py --raw_dir=data/quick/raw --fit \
        --detector=mediapipe --variant=full_range \
        --output=runs/detector/mediapipe_full_range.json
    python recipes/evaluate_detector.py --raw_dir=data/quick/raw --fit \
        --detector=haar --output=runs/detector/haar.json
    # With a model: its error on detector crops against the data's crops,
    # and the estimator's latency end to end.
    python recipes/evaluate_detector.py --raw_dir=data/quick/raw --fit \
        --model=runs/quick/model.keras --tflite=runs/quick/model_int8.tflite \
        --output=runs/detector/detector.json

`--detector` is MediaPipe's BlazeFace and face mesh (the default;
`--variant` picks BlazeFace's short- or full-range model) or OpenCV's Haar
cascades. With `--fit`, the box conventions (centre shift and scale of the
detector's face and eye boxes onto the data's; for Haar also the eye
layout) are first fitted on the training recordings (every
`--fit_stride`-th frame) and then used for the measurement; without it, the
detector's defaults are measured. On the test recordings (every frame whose
face and eyes the data marks valid) it reports the detection rate, the IoU
of the face and eye boxes with the data's, the share of eyes the detector
saw itself (mesh or eye cascade, not the layout), the detector's time per
frame on one thread (median and 90th percentile over the test frames, and,
less disturbed by other work on the machine, the median over
`--latency_frames` frames of the fastest of `--speed_repeats` runs), and, with `--model`, the
model's error in cm on detector crops against the data's crops on the same
frames. With `--tflite` it times the estimator end to end (detector, crops,
the `.tflite` model, screen mapping, filter). `--face_cascade`,
`--min_neighbors` and `--detect_width` compare Haar settings. It also runs
the detector on the photograph `astronaut.png` that scikit-image ships in
its wheel, when scikit-image is installed.
"""

import json
import os
import sys
import time

from absl import app
from absl import flags
import numpy as np
import tqdm

from tat_keras import crops
from tat_keras.data.gaze_capture import layout
from tat_keras.inference import detector as detector_lib

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

flags.DEFINE_string("raw_dir", None, "GazeCapture-layout recordings (frames and JSON).")
flags.DEFINE_bool("fit", False, "Fit the box conventions on the training recordings first.")
flags.DEFINE_integer("fit_stride", 4, "Use every n-th training frame for the fit.")
flags.DEFINE_integer("test_stride", 1, "Use every n-th test frame.")
flags.DEFINE_string("model", None, "A .keras model: error on detector vs data crops.")
flags.DEFINE_string("tflite", None, "A .tflite model: end-to-end estimator latency.")
flags.DEFINE_integer("latency_frames", 60, "Frames timed for the latencies.")
flags.DEFINE_integer("speed_repeats", 5, "Runs of the detector per frame for its speed; "
                     "the fastest counts (the others waited for a busy CPU).")
flags.DEFINE_string("output", None, "JSON file for the results.")
flags.DEFINE_enum("detector", detector_lib.DEFAULT_DETECTOR, sorted(detector_lib.DETECTORS),
                  "Face and eye detector.")
flags.DEFINE_enum("variant", "short_range", ["short_range", "full_range"],
                  "BlazeFace model of --detector=mediapipe.")
flags.DEFINE_string("face_cascade", detector_lib.FACE_CASCADE, "Face cascade file.")
flags.DEFINE_integer("min_neighbors", 3, "Detections a face needs to be kept.")
flags.DEFINE_integer("detect_width", 320, "Longer side the frame is shrunk to.")
flags.mark_flag_as_required("raw_dir")
FLAGS = flags.FLAGS


def _frames(raw_dir, split, stride):
    """Yields (recording, index, frame) for frames whose boxes are all valid."""
    for name in layout.list_recordings(raw_dir):
        path = os.path.join(raw_dir, name)
        if layout.read_split(path) != split:
            continue
        recording = layout.read_recording(path)
        reasons = layout.frame_skip_reasons(recording)
        for index in range(0, recording.num_frames, stride):
            if reasons[index] is None:
                image = layout.decode_jpeg(
                    os.path.join(path, "frames", recording.frame_names[index])
                )
                yield recording, index, image


def _count(raw_dir, split, stride):
    total = 0
    for name in layout.list_recordings(raw_dir):
        path = os.path.join(raw_dir, name)
        if layout.read_split(path) == split:
            recording = layout.read_recording(path)
            reasons = layout.frame_skip_reasons(recording)
            total += sum(r is None for r in reasons[::stride])
    return total


def _data_boxes(recording, index):
    face = recording.boxes["face"][index]
    left = crops.absolute_eye_boxes(face, recording.boxes["left_eye"][index])
    right = crops.absolute_eye_boxes(face, recording.boxes["right_eye"][index])
    return face, left, right


def fit(raw_dir, stride, detector_name, detector_options):
    """Fits the face and eye conventions (and Haar's eye layout) on `train`."""
    detector = detector_lib.make_detector(detector_name, **detector_options)
    faces, eyes, layout = ([], []), ([], []), ([], [], [])
    total = _count(raw_dir, "train", stride)
    for recording, index, image in tqdm.tqdm(
        _frames(raw_dir, "train", stride), total=total, desc="fit (train)"
    ):
        face, left, right = _data_boxes(recording, index)
        layout[0].append(face)
        layout[1].append(recording.boxes["left_eye"][index])
        layout[2].append(recording.boxes["right_eye"][index])
        raw_face, raw_eyes = detector.detect_raw(image)
        if raw_face is None or detector_lib.box_iou(raw_face, face) < 0.3:
            continue  # No face, or another object than the data's face.
        faces[0].append(raw_face)
        faces[1].append(face)
        for eye in raw_eyes:
            centre = eye[:2] + eye[2:] / 2
            for truth in (left, right):
                if np.all(np.abs(centre - (truth[:2] + truth[2:] / 2)) < truth[2:] / 2):
                    eyes[0].append(eye)
                    eyes[1].append(truth)
    result = {
        "face_convention": detector_lib.fit_box_convention(*faces),
        "eye_convention": detector_lib.fit_box_convention(*eyes),
        "fit_faces": len(faces[0]),
        "fit_eyes": len(eyes[0]),
        "fit_frames": total,
    }
    if detector_name == "haar":
        result["eye_layout"] = detector_lib.fit_eye_layout(*layout)
    return result


def measure(raw_dir, detector, stride, model_path):
    """Detection rate, IoUs and the model's error on detector vs data crops."""
    predict = None
    if model_path:
        from tat_keras.inference import estimator as estimator_lib

        predict = estimator_lib.GazeEstimator.from_keras(
            model_path, detector=detector, smoother=None
        )
    found, face_iou, eye_iou, eyes_detected, seconds = [], [], [], [], []
    per_recording = {}
    crops_detector, crops_data, gaze_true = [], [], []
    total = _count(raw_dir, "test", stride)
    for recording, index, image in tqdm.tqdm(
        _frames(raw_dir, "test", stride), total=total, desc="measure (test)"
    ):
        face, left, right = _data_boxes(recording, index)
        start = time.perf_counter()
        detection = detector.detect(image)
        seconds.append(time.perf_counter() - start)
        found.append(detection is not None)
        per_recording.setdefault(f"{recording.number:05d}", []).append(found[-1])
        if detection is None:
            continue
        face_iou.append(detector_lib.box_iou(detection.face_box, face))
        for box, truth in ((detection.left_eye_box, left), (detection.right_eye_box, right)):
            absolute = crops.absolute_eye_boxes(detection.face_box, box)
            eye_iou.append(detector_lib.box_iou(absolute, truth))
        eyes_detected.extend(detection.eyes_detected)
        if predict is not None:
            size = predict.image_size
            mine = crops.crop_frame(
                image, detection.face_box, detection.left_eye_box,
                detection.right_eye_box, size,
            )
            theirs = crops.crop_frame(
                image, face, recording.boxes["left_eye"][index],
                recording.boxes["right_eye"][index], size,
            )
            if mine is not None and theirs is not None:
                crops_detector.append(mine)
                crops_data.append(theirs)
                gaze_true.append([recording.dot["XCam"][index], recording.dot["YCam"][index]])
    result = {
        "test_frames": len(found),
        "detection_rate": float(np.mean(found)),
        "face_iou_mean": float(np.mean(face_iou)),
        "face_iou_median": float(np.median(face_iou)),
        "face_iou_at_least_0.5": float(np.mean(np.asarray(face_iou) >= 0.5)),
        "eye_iou_mean": float(np.mean(eye_iou)),
        "eye_iou_median": float(np.median(eye_iou)),
        "eyes_detected": float(np.mean(eyes_detected)),
        "detector_ms_median_test_frames": 1000 * float(np.median(seconds)),
        "detector_ms_p90_test_frames": 1000 * float(np.percentile(seconds, 90)),
        "detection_rate_per_recording": {
            k: round(float(np.mean(v)), 3) for k, v in sorted(per_recording.items())
        },
    }
    if crops_detector:
        gaze_true = np.asarray(gaze_true)

        def error(crops):
            batch = {k: np.stack([c[k] for c in crops]).astype(np.float32)
                     for k in ("face", "left_eye", "right_eye")}
            preds = np.concatenate([
                predict.predict_fn({k: v[i:i + 64] for k, v in batch.items()})
                for i in range(0, len(gaze_true), 64)
            ])
            return float(np.mean(np.linalg.norm(preds - gaze_true, axis=1)))

        result.update(
            error_frames=len(gaze_true),
            error_cm_detector_crops=error(crops_detector),
            error_cm_data_crops=error(crops_data),
        )
    return result


def latency(raw_dir, detector, tflite_path, frames):
    """Median detector and end-to-end estimator latency (ms per frame)."""
    from tat_keras.inference import estimator as estimator_lib

    estimator = estimator_lib.GazeEstimator.from_tflite(tflite_path, detector=detector)
    images = []  # Frames where the detector finds a face: the full path runs.
    for recording, index, image in _frames(raw_dir, "test", 1):
        if detector.detect(image) is not None:
            images.append((recording.device, int(recording.orientation[index]), image))
        if len(images) == frames:
            break
    detect_s, total_s, found = [], [], 0
    for i, (device, orientation, image) in enumerate(images):
        start = time.perf_counter()
        detector.detect(image)
        detect_s.append(time.perf_counter() - start)
        start = time.perf_counter()
        result = estimator.estimate(image, device=device, orientation=orientation,
                                    timestamp=float(i))
        total_s.append(time.perf_counter() - start)
        found += result.face_found
    return {
        "latency_frames": len(images),
        "latency_faces_found": found,
        "frame_shape": list(images[0][2].shape),
        "detector_ms_median_faces": 1000 * float(np.median(detect_s)),
        "estimator_int8_ms_median": 1000 * float(np.median(total_s)),
    }


def detector_speed(raw_dir, detector, frames, repeats):
    """The detector's time per frame: the median over frames of the fastest of `repeats` runs."""
    best, shapes = [], set()
    for _, _, image in _frames(raw_dir, "test", 1):
        times = []
        for _ in range(repeats):
            start = time.perf_counter()
            detector.detect(image)
            times.append(time.perf_counter() - start)
        best.append(min(times))
        shapes.add(tuple(image.shape[:2]))
        if len(best) == frames:
            break
    return {
        "speed_frames": len(best),
        "speed_repeats": repeats,
        "speed_frame_shapes": sorted(list(s) for s in shapes),
        "detector_ms_fastest_of_repeats_median": 1000 * float(np.median(best)),
    }


def real_photograph(detector):
    """The detector on scikit-image's bundled `astronaut.png` (no download)."""
    try:
        import skimage
    except ImportError:
        return {"photograph": "scikit-image not installed"}
    from PIL import Image

    path = os.path.join(os.path.dirname(skimage.__file__), "data", "astronaut.png")
    image = np.asarray(Image.open(path).convert("RGB"))
    raw_face, raw_eyes = detector.detect_raw(image)
    detection = detector.detect(image)
    return {
        "photograph": path,
        "photograph_shape": list(image.shape),
        "photograph_face_found": detection is not None,
        "photograph_raw_face_box": None if raw_face is None else raw_face.tolist(),
        "photograph_face_box": None if detection is None else detection.face_box.round(1).tolist(),
        "photograph_eyes_detected": None if detection is None else list(detection.eyes_detected),
        "photograph_raw_eye_boxes": [e.tolist() for e in raw_eyes],
    }


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"Unexpected arguments: {argv[1:]}")
    if not os.path.isdir(FLAGS.raw_dir):
        print(f"error: no recordings at {FLAGS.raw_dir}; render them with "
              "recipes/make_synthetic.py", file=sys.stderr)
        return 1
    results = {"raw_dir": FLAGS.raw_dir, "detector": FLAGS.detector}
    kwargs = {}
    if FLAGS.detector == "haar":
        detector_options = {"face_cascade": FLAGS.face_cascade,
                            "min_neighbors": FLAGS.min_neighbors,
                            "detect_width": FLAGS.detect_width}
    else:  # One thread: the time per frame an app would see on one core.
        detector_options = {"variant": FLAGS.variant, "num_threads": 1}
        results["variant"] = FLAGS.variant
    if FLAGS.fit:
        fitted = fit(FLAGS.raw_dir, FLAGS.fit_stride, FLAGS.detector, detector_options)
        kwargs = {k: v for k, v in fitted.items() if not k.startswith("fit_")}
        results.update({k: repr(v) if k in kwargs else v for k, v in fitted.items()})
        print("fitted:", json.dumps({k: results[k] for k in fitted}, indent=2))
    detector = detector_lib.make_detector(FLAGS.detector, **kwargs, **detector_options)
    results.update(measure(FLAGS.raw_dir, detector, FLAGS.test_stride, FLAGS.model))
    results.update(detector_speed(FLAGS.raw_dir, detector, FLAGS.latency_frames,
                                  FLAGS.speed_repeats))
    if FLAGS.tflite:
        results.update(latency(FLAGS.raw_dir, detector, FLAGS.tflite, FLAGS.latency_frames))
    results.update(real_photograph(detector))
    text = json.dumps(results, indent=2)
    print(text)
    if FLAGS.output:
        os.makedirs(os.path.dirname(os.path.abspath(FLAGS.output)), exist_ok=True)
        with open(FLAGS.output, "w") as f:
            f.write(text + "\n")
    return 0


if __name__ == "__main__":
    app.run(main)
