"""Frame on disk to a point on the screen, measured on every test frame.

The estimator (`estimator.GazeEstimator`) is run as an app would run it:
each JPEG of a recording in GazeCapture's raw layout is decoded, the face
and eye detector finds the boxes, the crops go through the model, and the
gaze in cm (the point on the screen of the recording's device and
orientation) is compared with the dot the subject looked at (`dotInfo.json`
`XCam`, `YCam`). The same model also runs on the data's own boxes of the
same frames (`GazeEstimator.estimate_from_boxes`, frames the data marks
valid), so that the cost of the detector shows as the gap between the two.

`evaluate_recording` gives one dict of per-frame arrays per recording (a
row per frame; NaN where a path gave no estimate), which `save_result` and
`load_result` keep on disk so that an interrupted run resumes where it
stopped; `summarize` turns the merged arrays into the figures (share of
frames with a face, error in cm per device type, MSD over the stare
sequences raw and after the estimator's One Euro filter, latency per frame)
and `calibrate_recordings` measures per-user calibration end to end:
calibrate on the first k dots a subject saw, test on the others.

Example:

>>> import numpy as np
>>> model = ModelOutputs(lambda x: {"gaze_cm": np.zeros((1, 2))}, image_size=32)
>>> streams = make_estimators(model, detector=None)
>>> sorted(streams)
['crops', 'end_to_end']
"""

import hashlib
import json
import os
import textwrap
import time

import numpy as np

from tat_keras import calibration
from tat_keras import evaluation
from tat_keras import model_files
from tat_keras.data.gaze_capture import layout
from tat_keras.inference import detector as detector_lib
from tat_keras.inference import estimator as estimator_lib
from tat_keras.inference import jitter_lag

# Timestamps when a recording's `dotInfo.json` `Time` gives no frame rate
# (no dot with two consecutive frames): the rate `recipes/estimate.py` assumes.
DEFAULT_FRAME_RATE = 15.0
# The end-to-end error may exceed the error on the data's crops by this share.
TARGET_RELATIVE_GAP = 0.10
# Published calibration figures on GazeCapture, drawn beside ours as anchors
# (not results of this project): k dots -> mean error in cm.
PUBLISHED_ANCHORS = (
    {
        "label": "published, GazeCapture phones: iTracker + SVR on 13 points (Krafka et al. 2016)",
        "k": (0, 13),
        "error_cm": (1.71, 1.34),
    },
    {
        "label": "published: WebEyeTrack, at most 9 calibration samples",
        "k": (9,),
        "error_cm": (2.32,),
    },
)

PATHS = ("end_to_end", "crops")
_PAIR_KEYS = (
    "end_to_end_cm", "end_to_end_smoothed_cm", "crops_cm", "crops_smoothed_cm",
)
_CACHE_FORMAT = "tat_keras.end_to_end.v1"


class ModelOutputs:
    """A model behind `GazeEstimator`'s `predict_fn` that keeps its last feature.

    Calibration from five dots on (`calibration.RidgeCalibrator`) reads the
    network's 128-D `final_feature` of each frame beside its gaze. This
    wraps a function returning all of the model's outputs, hands the gaze
    to the estimator and keeps the feature of the last call.

    Args:
      run_fn: callable. takes a dict of float32 batches `face`, `left_eye`,
        `right_eye` (1, S, S, 3) and returns a dict with `gaze_cm` (1, 2)
        and, optionally, `final_feature` (1, D).
      image_size: int. the crop side `S`.
      description: str. how the model runs (file, kind), for the reports.

    Example:

    >>> model = ModelOutputs(lambda x: {"gaze_cm": np.ones((1, 2)),
    ...                                 "final_feature": np.zeros((1, 4))}, 32)
    >>> model({"face": np.zeros((1, 32, 32, 3))}).tolist(), model.last_feature.shape
    ([[1.0, 1.0]], (4,))
    """

    def __init__(self, run_fn, image_size, description="model"):
        if not callable(run_fn):
            raise TypeError(f"run_fn must be callable. Received: {run_fn!r}")
        self.run_fn = run_fn
        self.image_size = int(image_size)
        self.description = description
        self.last_feature = None

    def __call__(self, inputs):
        outputs = self.run_fn(inputs)
        feature = outputs.get(calibration.FEATURE_KEY)
        self.last_feature = (
            None if feature is None else np.asarray(feature, np.float32).reshape(-1)
        )
        return np.asarray(outputs["gaze_cm"], np.float64).reshape(-1, 2)


def load_model(path, num_threads=1):
    """A `ModelOutputs` around a `.tflite` export or a `.keras` GazeNet.

    The kind is read from the file's content (`tat_keras.model_files`).

    Args:
      path: str. an exported `.tflite` file (float or int8, from
        `tflite/export.py`) or a saved `.keras` model.
      num_threads: int. LiteRT interpreter threads for a `.tflite`.

    Raises:
      ValueError: the file is neither a `.tflite` flatbuffer nor a `.keras`
        model.
      FileNotFoundError: no file at `path`.
    """
    path = os.fspath(path)
    if model_files.model_kind(path) == "tflite":
        from tat_keras.export import runner

        model = runner.TFLiteGazeModel(path, num_threads=num_threads)
        mode = model.metadata.get("mode", "tflite") if model.metadata else "tflite"
        return ModelOutputs(model.run, model.image_size, f"{os.path.basename(path)} ({mode}, "
                            f"LiteRT, {num_threads} thread{'s' if num_threads != 1 else ''})")
    import keras

    import tat_keras  # noqa: F401  Registers the model's classes.

    model = keras.models.load_model(path, compile=False)
    extractor = calibration.outputs_with_feature(model)

    def run(inputs):
        outputs = extractor(
            {name: np.asarray(inputs[name], np.float32) for name in estimator_lib.INPUT_NAMES},
            training=False,
        )
        outputs = {k: np.asarray(v) for k, v in outputs.items()}
        gaze = np.asarray(model.decode({k: outputs[k] for k in ("x", "y")}), np.float64)
        return {"gaze_cm": gaze, calibration.FEATURE_KEY: outputs[calibration.FEATURE_KEY]}

    return ModelOutputs(run, int(model.image_size), f"{os.path.basename(path)} (Keras)")


def file_fingerprint(path):
    """SHA-256 of a file's bytes, hex: names the model a cached result is for."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def make_estimators(model, detector):
    """The two streams measured: detector crops and the data's own crops.

    Args:
      model: `ModelOutputs` (or any predict_fn with `image_size`).
      detector: a detector of `detector.py`, or None for the estimator's
        default.

    Returns:
      dict `end_to_end`, `crops` of `GazeEstimator`s, each with its own
      One Euro filter at the estimator's default setting.
    """
    return {
        path: estimator_lib.GazeEstimator(model, model.image_size, detector=detector)
        for path in PATHS
    }


def list_test_recordings(raw_dir, split="test"):
    """Recording folder names of `split` under `raw_dir`, and those unreadable.

    Args:
      raw_dir: str. recordings in GazeCapture's raw layout.
      split: str. `train`, `validation` or `test`.

    Returns:
      `(names, skipped)`: sorted `%05d` names; a list of `(name, reason)`
      for recordings whose `info.json` could not be read.

    Raises:
      FileNotFoundError: `raw_dir` is not a folder.
    """
    if not os.path.isdir(raw_dir):
        raise FileNotFoundError(
            f"No folder of recordings at {raw_dir}. Render the synthetic twin with "
            "recipes/make_synthetic.py or point to GazeCapture's extracted folder."
        )
    names, skipped = [], []
    for name in layout.list_recordings(raw_dir):
        try:
            if layout.read_split(os.path.join(raw_dir, name)) == split:
                names.append(name)
        except layout.RecordingError as error:
            skipped.append((name, f"{error.reason}: {error}"))
    return names, skipped


def recording_frame_rate(recording, default=DEFAULT_FRAME_RATE):
    """Frames per second of a recording, from `dotInfo.json` `Time`.

    Args:
      recording: `layout.Recording`.
      default: float. the rate when no dot has two consecutive frames.
    """
    frames = np.arange(recording.num_frames)
    meta = {
        "recording": np.zeros(recording.num_frames, np.int64),
        "dot": recording.dot["DotNum"],
        "frame": frames,
        "dot_time": recording.dot["Time"],
    }
    try:
        return jitter_lag.frame_rate(meta)
    except ValueError:
        return float(default)


def _nan(shape):
    return np.full(shape, np.nan)


def evaluate_recording(recording, estimators, model, *, frame_rate=None, frame_stride=1,
                       clock=time.perf_counter, on_frame=None):
    """Runs both streams over every frame of one recording.

    The end-to-end stream sees every readable frame (`estimate`: detector,
    crops, model, screen mapping, filter) and is timed per frame; the crop
    stream sees the frames whose boxes the data marks valid, with those
    boxes (`estimate_from_boxes`). Timestamps are the frame index over the
    recording's frame rate; each stream starts afresh (`reset_time`).

    Args:
      recording: `layout.Recording`.
      estimators: dict from `make_estimators`.
      model: the `ModelOutputs` both estimators call (its `last_feature`
        is read after each estimate).
      frame_rate: float or None. frames per second; None reads it from
        `dotInfo.json` (`recording_frame_rate`).
      frame_stride: int. use every n-th frame.
      clock: callable giving seconds, for the latency.
      on_frame: callable or None. called once per frame (a progress bar).

    Returns:
      dict of per-frame arrays: `recording`, `frame`, `dot`, `dot_time`,
      `orientation`, `device_type` (0 phone, 1 tablet), `true_cm` (N, 2),
      `readable`, `valid` (the data's boxes), `face_found`,
      `end_to_end_cm`, `end_to_end_smoothed_cm`, `crops_cm`,
      `crops_smoothed_cm` (N, 2; NaN without an estimate),
      `end_to_end_feature`, `crops_feature` (N, D; D = 0 for a model
      without the feature), `face_box`, `data_face_box` (N, 4),
      `end_to_end_seconds`, `decode_seconds` (N,); and `device` (a string).

    Raises:
      ValueError: the recording's device is unknown to `tat_keras.data.devices`.
    """
    if int(frame_stride) != frame_stride or frame_stride < 1:
        raise ValueError(f"frame_stride must be a positive integer. Received: {frame_stride}")
    rate = recording_frame_rate(recording) if frame_rate is None else float(frame_rate)
    if not rate > 0:
        raise ValueError(f"frame_rate must be positive. Received: frame_rate={frame_rate}")
    frames = np.arange(0, recording.num_frames, int(frame_stride))
    n = len(frames)
    reasons = layout.frame_skip_reasons(recording)
    kind = layout.device_type(recording.device)
    result = {
        "recording": np.full(n, recording.number, np.int64),
        "frame": frames.astype(np.int64),
        "dot": recording.dot["DotNum"][frames].astype(np.int64),
        "dot_time": recording.dot["Time"][frames],
        "orientation": recording.orientation[frames].astype(np.int64),
        "device_type": np.full(n, evaluation.DEVICE_TYPES.index(kind), np.int64),
        "true_cm": np.stack([recording.dot["XCam"], recording.dot["YCam"]], -1)[frames],
        "readable": np.zeros(n, bool),
        "valid": np.array([reasons[i] is None for i in frames], bool),
        "face_found": np.zeros(n, bool),
        "face_box": _nan((n, 4)),
        "data_face_box": recording.boxes["face"][frames].astype(np.float64),
        "end_to_end_seconds": _nan(n),
        "decode_seconds": _nan(n),
    }
    for key in _PAIR_KEYS:
        result[key] = _nan((n, 2))
    features = {path: [None] * n for path in PATHS}
    for estimator in estimators.values():
        estimator.reset_time()
    for row, index in enumerate(frames):
        start = clock()
        try:
            image = layout.decode_jpeg(
                os.path.join(recording.path, "frames", recording.frame_names[index]))
        except Exception:  # Missing, unreadable or truncated JPEG: a dropped frame.
            image = None
        result["decode_seconds"][row] = clock() - start
        if image is not None:
            result["readable"][row] = True
            orientation = int(recording.orientation[index])
            timestamp = index / rate
            start = clock()
            found = estimators["end_to_end"].estimate(
                image, device=recording.device, orientation=orientation, timestamp=timestamp)
            result["end_to_end_seconds"][row] = clock() - start
            if found.face_found:
                result["face_found"][row] = True
                result["face_box"][row] = found.face_box
                result["end_to_end_cm"][row] = found.gaze_cm
                result["end_to_end_smoothed_cm"][row] = found.smoothed_cm or np.nan
                features["end_to_end"][row] = model.last_feature
            if result["valid"][row]:
                boxed = estimators["crops"].estimate_from_boxes(
                    image, *(recording.boxes[k][index] for k in ("face", "left_eye", "right_eye")),
                    device=recording.device, orientation=orientation, timestamp=timestamp)
                if boxed.face_found:
                    result["crops_cm"][row] = boxed.gaze_cm
                    result["crops_smoothed_cm"][row] = boxed.smoothed_cm or np.nan
                    features["crops"][row] = model.last_feature
        if on_frame is not None:
            on_frame()
    for path in PATHS:
        result[f"{path}_feature"] = _stack_features(features[path], n)
    result["device"] = np.array(recording.device)
    return result


def _stack_features(features, n):
    size = next((len(f) for f in features if f is not None), 0)
    stacked = np.full((n, size), np.nan, np.float32)
    for row, feature in enumerate(features):
        if feature is not None and size:
            stacked[row] = feature
    return stacked


def save_result(path, result, signature):
    """Writes one recording's arrays and the run's `signature` (a dict) to `.npz`."""
    folder = os.path.dirname(os.fspath(path))
    if folder:
        os.makedirs(folder, exist_ok=True)
    temporary = os.fspath(path) + ".partial.npz"
    np.savez(temporary, **result, _signature=np.array(
        json.dumps({"format": _CACHE_FORMAT, **signature}, sort_keys=True)))
    os.replace(temporary, path)  # A run killed while writing leaves no half file.


def load_result(path, signature):
    """One recording's arrays saved by `save_result`, or None.

    None when there is no file, the file cannot be read, or it was made with
    another `signature` (another model, detector or setting).
    """
    try:
        with np.load(path, allow_pickle=False) as data:
            stored = json.loads(str(data["_signature"]))
            if stored != {"format": _CACHE_FORMAT, **json.loads(json.dumps(signature))}:
                return None
            return {key: data[key] for key in data.files if key != "_signature"}
    except (OSError, ValueError, KeyError):
        return None


def merge(results):
    """Concatenates per-recording results into one dict of arrays (no `device`).

    A recording where a path gave no estimate has a feature array of width 0;
    its rows become NaN of the others' width.
    """
    results = list(results)
    if not results:
        raise ValueError("No recording was evaluated: there is nothing to summarize.")
    merged = {}
    for key in (key for key in results[0] if key != "device"):
        arrays = [r[key] for r in results]
        if key.endswith("_feature"):  # A recording without estimates has no width.
            width = max(a.shape[1] for a in arrays)
            arrays = [a if a.shape[1] == width else np.full((len(a), width), np.nan, np.float32)
                      for a in arrays]
        merged[key] = np.concatenate(arrays)
    return merged


def _metrics(merged, key, rows, msd_min_length):
    """`evaluation.summarize` of the estimates `merged[key]` on `rows`."""
    meta = {name: merged[name][rows] for name in ("recording", "dot", "device_type")}
    return evaluation.summarize(merged["true_cm"][rows], merged[key][rows], meta,
                                prefix="x", msd_min_length=msd_min_length)


def _percentile_ms(seconds, q):
    return float(1000.0 * np.percentile(seconds, q)) if len(seconds) else None


def summarize(merged, *, msd_min_length=5):
    """The end-to-end figures of the merged per-frame arrays.

    Error is the mean Euclidean distance in cm to the dot over the frames a
    path gave an estimate for; MSD the mean over stare sequences (frames of
    one recording sharing a dot, at least `msd_min_length` of them with an
    estimate) of the spread of the estimates (`tat_keras.metrics`), raw and
    after the estimator's One Euro filter.

    Args:
      merged: dict from `merge`.
      msd_min_length: int. shortest stare sequence counted by MSD.

    Returns:
      dict with `frames` (counts and the share with a face), `end_to_end`
      and `crops` (error overall / phone / tablet, MSD raw and smoothed,
      frames), `same_frames` (both paths on the frames both estimated, the
      ratio and whether the end-to-end error is within
      `TARGET_RELATIVE_GAP` of the crops'), `latency` (ms per frame, median
      and p95, of the end-to-end estimate over readable frames and over
      frames with a face; JPEG decoding apart) and `face_iou` (median IoU of
      the detector's face box with the data's, where both exist).
    """
    true_cm = merged["true_cm"]
    readable, valid, found = merged["readable"], merged["valid"], merged["face_found"]
    result = {
        "frames": {
            "total": int(len(true_cm)),
            "readable": int(readable.sum()),
            "unreadable": int((~readable).sum()),
            "valid_in_data": int(valid.sum()),
            "with_face": int(found.sum()),
            "face_share": float(found.sum() / max(readable.sum(), 1)),
            "face_share_of_valid": float((found & valid).sum() / max((valid & readable).sum(), 1)),
        }
    }
    estimated = {}
    for path in PATHS:
        rows = np.all(np.isfinite(merged[f"{path}_cm"]), axis=1)
        estimated[path] = rows
        block = {"frames": int(rows.sum())}
        if rows.any():
            raw = _metrics(merged, f"{path}_cm", rows, msd_min_length)
            smoothed_rows = rows & np.all(np.isfinite(merged[f"{path}_smoothed_cm"]), axis=1)
            smooth = (_metrics(merged, f"{path}_smoothed_cm", smoothed_rows, msd_min_length)
                      if smoothed_rows.any() else {})
            block.update(
                error_cm=raw["x_error_cm"],
                error_cm_phone=raw["x_error_cm_phone"],
                error_cm_tablet=raw["x_error_cm_tablet"],
                msd_cm=raw["x_msd_cm"],
                msd_sequences=raw["x_msd_sequences"],
                smoothed_error_cm=smooth.get("x_error_cm"),
                smoothed_msd_cm=smooth.get("x_msd_cm"),
                smoothed_msd_sequences=smooth.get("x_msd_sequences"),
            )
        result[path] = block
    both = estimated["end_to_end"] & estimated["crops"]
    same = {"frames": int(both.sum())}
    if both.any():
        for path in PATHS:
            same[f"{path}_error_cm"] = float(np.mean(np.linalg.norm(
                merged[f"{path}_cm"][both] - true_cm[both], axis=1)))
        same["ratio"] = same["end_to_end_error_cm"] / same["crops_error_cm"]
        same["target_ratio"] = 1.0 + TARGET_RELATIVE_GAP
        same["target_holds"] = bool(same["ratio"] <= 1.0 + TARGET_RELATIVE_GAP)
    result["same_frames"] = same
    seconds = merged["end_to_end_seconds"]
    result["latency"] = {
        "frames": int(readable.sum()),
        "median_ms": _percentile_ms(seconds[readable], 50),
        "p95_ms": _percentile_ms(seconds[readable], 95),
        "with_face_frames": int(found.sum()),
        "with_face_median_ms": _percentile_ms(seconds[found], 50),
        "with_face_p95_ms": _percentile_ms(seconds[found], 95),
        "decode_median_ms": _percentile_ms(merged["decode_seconds"], 50),
    }
    boxes = found & valid
    result["face_iou"] = (
        float(np.median(detector_lib.box_iou(merged["face_box"][boxes],
                                             merged["data_face_box"][boxes])))
        if boxes.any() else None
    )
    return result


# Calibration, end to end ---------------------------------------------------


def dots_in_order(dots):
    """The distinct dots of one recording in the order the subject saw them."""
    dots = np.asarray(dots).reshape(-1)
    unique, first = np.unique(dots, return_index=True)
    return unique[np.argsort(first, kind="stable")]


def calibrate_recordings(merged, ks, *, paths=("end_to_end",)):
    """Calibrates each subject on their first k dots; tests on their other dots.

    Per recording and per k, the first k dots shown (in frame order) are the
    calibration dots and all later dots the test dots, as in an app that
    asks for k dots before use. The calibrator is the one
    `calibration.method_for` chooses for the number of calibration dots
    that gave an estimate, fitted on the estimates of those dots' frames
    (the raw gaze and, for ridge, the final feature); the error before is
    the same path's raw error on the same test frames. k = 0 is the model
    without calibration on all of the subject's dots.

    Args:
      merged: dict from `merge`.
      ks: iterable of int >= 0. numbers of calibration dots.
      paths: names among `PATHS`: the streams to calibrate.

    Returns:
      `(records, skipped)`: a list of dicts (`subject`, `path`, `k`,
      `method` "auto", `calibrator` (the method used, "none" for k = 0),
      `error_before`, `error_after`, `num_calibration_points`,
      `num_calibration_samples`, `num_test_samples`, `calibration_dots`)
      and a list of dicts (`subject`, `path`, `k`, `reason`).

    Raises:
      ValueError: a negative k, an unknown path, or ridge needed and the
        model gave no final feature.
    """
    ks = sorted({int(k) for k in ks})
    if any(k < 0 for k in ks):
        raise ValueError(f"Numbers of calibration dots must be >= 0. Received: {ks}")
    unknown = sorted(set(paths) - set(PATHS))
    if unknown:
        raise ValueError(f"paths must be among {PATHS}. Received: {unknown}")
    records, skipped = [], []
    for path in paths:
        gaze = merged[f"{path}_cm"]
        feature = merged[f"{path}_feature"]
        estimated = np.all(np.isfinite(gaze), axis=1)
        for subject in np.unique(merged["recording"]):
            rows = merged["recording"] == subject
            order = dots_in_order(merged["dot"][rows])
            for k in ks:
                note = {"subject": subject.item(), "path": path, "k": k}
                if len(order) < k + 1:
                    skipped.append({**note, "reason": f"{len(order)} dots, fewer than k + 1"})
                    continue
                chosen = np.isin(merged["dot"], order[:k]) & rows & estimated
                test = ~np.isin(merged["dot"], order[:k]) & rows & estimated
                if not test.any():
                    skipped.append({**note, "reason": "no estimate on the test dots"})
                    continue
                before = np.linalg.norm(gaze[test] - merged["true_cm"][test], axis=1)
                record = {**note, "method": "auto", "calibrator": "none",
                          "error_before": float(np.mean(before)),
                          "error_after": float(np.mean(before)),
                          "num_calibration_points": 0,
                          "num_calibration_samples": int(chosen.sum()),
                          "num_test_samples": int(test.sum()),
                          "calibration_dots": [d.item() for d in order[:k]]}
                if k > 0:
                    num_points = len(np.unique(merged["dot"][chosen]))
                    if num_points == 0:
                        skipped.append({**note, "reason": "no estimate on the calibration dots"})
                        continue
                    method = calibration.method_for(num_points)
                    calibrator = calibration.make_calibrator(method)
                    if calibration.FEATURE_KEY in calibrator.requires and feature.shape[1] == 0:
                        raise ValueError(
                            f"{method} calibration ({num_points} dots) reads the network's "
                            f"{calibration.FEATURE_KEY}, which this model does not output "
                            "(a qat export): use an int8 or float .tflite from tflite/export.py, "
                            "or the .keras model."
                        )
                    samples = {calibration.PREDICTION_KEY: gaze, calibration.FEATURE_KEY: feature}
                    samples = {key: samples[key] for key in calibrator.requires}
                    calibrator.fit({key: v[chosen] for key, v in samples.items()},
                                   merged["true_cm"][chosen])
                    after = calibrator.predict({key: v[test] for key, v in samples.items()})
                    record.update(
                        calibrator=method,
                        error_after=float(np.mean(np.linalg.norm(
                            after - merged["true_cm"][test], axis=1))),
                        num_calibration_points=num_points,
                    )
                records.append(record)
    return records, skipped


def summarize_calibration(records, merged):
    """Mean errors over subjects per path, k and device group (with CIs).

    Args:
      records: list from `calibrate_recordings`.
      merged: dict from `merge` (for each subject's device type).

    Returns:
      list of dicts as `calibration.mean_errors` gives them, each with `path`;
      `method` names the path.
    """
    groups = {}
    for subject, kind in zip(merged["recording"], merged["device_type"]):
        groups[subject.item()] = evaluation.DEVICE_TYPES[int(kind)]
    rows = []
    for path in dict.fromkeys(r["path"] for r in records):
        mine = [{**r, "method": path} for r in records if r["path"] == path]
        rows.extend({**row, "path": path} for row in calibration.mean_errors(mine, groups))
    return rows


def _cm(value):
    return "n/a" if value is None else f"{value:.2f}"


def format_markdown(summary, calibration_rows=(), *, description=""):
    """The end-to-end and calibration tables as Markdown.

    Args:
      summary: dict from `summarize`.
      calibration_rows: list from `summarize_calibration`.
      description: str. the model and data, for the first line.
    """
    frames, same, latency = summary["frames"], summary["same_frames"], summary["latency"]
    lines = []
    if description:
        lines += [description, ""]
    lines += [
        f"A face in {frames['with_face']} of {frames['readable']} readable frames "
        f"({100 * frames['face_share']:.1f}%; {100 * frames['face_share_of_valid']:.1f}% of the "
        f"{frames['valid_in_data']} frames the data marks valid); "
        f"{frames['unreadable']} unreadable. Median face IoU with the data's box: "
        + ("n/a" if summary["face_iou"] is None else f"{summary['face_iou']:.2f}") + ".",
        "",
        "| crops | frames | error (cm) | phones | tablets | MSD raw (cm) | MSD One Euro (cm) | stare sequences |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    names = {"end_to_end": "end to end (the detector's boxes)", "crops": "the data's boxes"}
    for path in PATHS:
        block = summary[path]
        lines.append(
            f"| {names[path]} | {block['frames']} | {_cm(block.get('error_cm'))} | "
            f"{_cm(block.get('error_cm_phone'))} | {_cm(block.get('error_cm_tablet'))} | "
            f"{_cm(block.get('msd_cm'))} | {_cm(block.get('smoothed_msd_cm'))} | "
            f"{block.get('msd_sequences', 0)} |"
        )
    lines.append("")
    if same["frames"]:
        verdict = "holds" if same["target_holds"] else "does not hold"
        lines.append(
            f"On the {same['frames']} frames both gave an estimate: end to end "
            f"{same['end_to_end_error_cm']:.2f} cm, the data's crops "
            f"{same['crops_error_cm']:.2f} cm, ratio {same['ratio']:.3f}; the target "
            f"(end to end within {100 * TARGET_RELATIVE_GAP:.0f}% of the crops) {verdict}."
        )
    else:
        lines.append("No frame had an estimate from both paths: no comparison.")
    if latency["median_ms"] is not None:
        lines += [
            "",
            "| latency per frame (ms) | frames | median | p95 |",
            "|---|---:|---:|---:|",
            f"| end to end, every readable frame | {latency['frames']} | "
            f"{latency['median_ms']:.2f} | {latency['p95_ms']:.2f} |",
        ]
        if latency["with_face_median_ms"] is not None:
            lines.append(
                f"| end to end, frames with a face | {latency['with_face_frames']} | "
                f"{latency['with_face_median_ms']:.2f} | {latency['with_face_p95_ms']:.2f} |")
        lines.append(f"| JPEG decoding (apart) | {latency['frames']} | "
                     f"{latency['decode_median_ms']:.2f} | |")
    for path in dict.fromkeys(row["path"] for row in calibration_rows):
        lines += ["", f"Calibrated, {names[path]}: each subject calibrated on the first k "
                      "dots they saw and tested on their other dots; mean error over subjects, "
                      "cm (95% CI), and the change against the same frames uncalibrated.", "",
                  "| k | group | subjects | before | after | change |",
                  "|---:|---|---:|---:|---:|---:|"]
        for row in (r for r in calibration_rows if r["path"] == path):
            interval = ("" if row["error_after_low"] is None else
                        f" ({row['error_after_low']:.2f} to {row['error_after_high']:.2f})")
            lines.append(
                f"| {row['k']} | {row['group']} | {row['num_subjects']} | "
                f"{row['error_before']:.2f} | {row['error_after']:.2f}{interval} | "
                f"{-100 * row['reduction'] + 0.0:+.0f}% |")
    return "\n".join(lines) + "\n"


def plot_calibration(rows, path, *, anchors=PUBLISHED_ANCHORS, title=None):
    """Error against calibration dots, ours per device group beside published figures.

    Our curves (the end-to-end path, mean over subjects with 95% intervals)
    are solid lines; each published figure is a grey open marker whose label
    says it is published.

    Args:
      rows: list from `summarize_calibration`.
      path: str. the `.png` to write.
      anchors: sequence of dicts `label`, `k`, `error_cm` (published).
      title: str or None.

    Returns:
      `path`.
    """
    import matplotlib
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    from tat_keras import plots

    if not str(path).lower().endswith(".png"):
        raise ValueError(f"path must name a .png file. Received: path={path!r}")
    rows = [r for r in rows if r["path"] == "end_to_end"]
    if not rows:
        raise ValueError("No end-to-end calibration rows to plot: run calibrate_recordings "
                         "with the end_to_end path first.")
    with matplotlib.rc_context(plots.STYLE):  # The project's one figure style.
        figure = Figure(figsize=(7.2, 4.8), layout="constrained")
        FigureCanvasAgg(figure)
        axis = figure.subplots()
        for index, group in enumerate(("all", "phone", "tablet")):
            mine = sorted((r for r in rows if r["group"] == group), key=lambda r: r["k"])
            if not mine:
                continue
            ks = np.array([r["k"] for r in mine], float) + 0.12 * (index - 1)  # Bars apart.
            after = np.array([r["error_after"] for r in mine])
            low = np.array([np.nan if r["error_after_low"] is None else r["error_after_low"]
                            for r in mine])
            high = np.array([np.nan if r["error_after_high"] is None else r["error_after_high"]
                             for r in mine])
            axis.errorbar(ks, after, yerr=np.nan_to_num(np.stack([after - low, high - after])),
                          color=plots.COLORS[index], marker="o", capsize=3,
                          label=f"ours, {group} ({mine[-1]['num_subjects']} subjects "
                                f"at k={mine[-1]['k']})")
        for index, anchor in enumerate(anchors):
            axis.plot(anchor["k"], anchor["error_cm"], linestyle="none", color="0.4",
                      marker=("s", "D", "^", "v")[index % 4], markerfacecolor="none",
                      markersize=8, label=anchor["label"])
        axis.set_xticks(sorted({r["k"] for r in rows}))
        axis.set(xlabel="calibration dots k (the subject's first k)",
                 ylabel="mean error on the other dots (cm)")
        axis.set_ylim(bottom=0)
        figure.legend(loc="outside lower center", ncol=2)
        if title:
            axis.set_title(textwrap.fill(title, 80))
        folder = os.path.dirname(os.fspath(path))
        if folder:
            os.makedirs(folder, exist_ok=True)
        figure.savefig(path, format="png", bbox_inches="tight")
    return path
