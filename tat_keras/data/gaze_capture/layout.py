"""GazeCapture's published on-disk layout: read it and write it.

The one module that knows the format. The `gaze_capture` TFDS builder reads
recordings with it and turns each into examples (`process_recording`, the
per-recording work its pool of worker processes runs, which cuts the crops
with `tat_keras.crops`); the synthetic twin and the test fixtures write
recordings with `write_recording`. Pure NumPy and Pillow: importing it loads
neither TensorFlow nor Keras.

A recording folder holds `frames/%05d.jpg` and the JSON files listed in
`REQUIRED_JSON_FILES` (see `tat_keras/data/gaze_capture/README.md`). The
facts that matter here:

- The face box `X, Y, W, H` is in pixels relative to the full frame.
- The eye boxes are relative to the top-left corner of the *face* box.
  "Left eye" is the subject's left eye (the right side of the image).
- A frame is used only where the face, both eyes and the face grid are all
  marked `IsValid`; a box with a non-positive width or height is invalid.
- The face grid divides the frame into 25 x 25 cells whatever its aspect;
  `X, Y` are 1-based cells, `W, H` counts of cells.
- An invalid detection is written with `IsValid` 0 and a zero box.

Example:

>>> face_grid((160., 120., 320., 240.), (640, 480))
(7, 7, 13, 13)
>>> device_type("iPhone 6")
'phone'
"""

import collections
import dataclasses
import io
import json
import math
import os

import numpy as np
from PIL import Image

from tat_keras import crops

REQUIRED_JSON_FILES = (
    "frames.json",
    "appleFace.json",
    "appleLeftEye.json",
    "appleRightEye.json",
    "faceGrid.json",
    "dotInfo.json",
    "info.json",
    "screen.json",
)

# Per-frame arrays that must have len(frames.json) entries.
_BOX_FILES = {
    "face": "appleFace.json",
    "left_eye": "appleLeftEye.json",
    "right_eye": "appleRightEye.json",
    "face_grid": "faceGrid.json",
}
_BOX_KEYS = ("X", "Y", "W", "H", "IsValid")
_DOT_KEYS = ("DotNum", "XCam", "YCam", "Time")
_SCREEN_KEYS = ("H", "W", "Orientation")

FACE_GRID_CELLS = 25  # faceGrid.json cells per side.

SPLIT_NAMES = {"train": "train", "val": "validation", "test": "test"}

# Reasons a recording or a frame is skipped, as counted in skips.json.
SKIP_MISSING_JSON = "missing_json"
SKIP_UNPARSABLE_JSON = "unparsable_json"
SKIP_LENGTH_MISMATCH = "length_mismatch"
SKIP_UNKNOWN_SPLIT = "unknown_split"
SKIP_INVALID_DETECTION = "invalid_detection"
SKIP_NON_POSITIVE_BOX = "non_positive_box"
SKIP_BOX_OUTSIDE_FRAME = "box_outside_frame"
SKIP_UNREADABLE_JPEG = "unreadable_jpeg"

# Device names containing one of these words are tablets; all others phones.
_TABLET_WORDS = ("ipad",)


class RecordingError(Exception):
    """A recording that cannot be used at all; `reason` is a skip reason."""

    def __init__(self, reason, message):
        super().__init__(message)
        self.reason = reason


@dataclasses.dataclass
class Recording:
    """The parsed JSON files of one recording folder.

    Args:
      path: str. the recording folder.
      number: int. the folder name as a number (`%05d`).
      frame_names: list of str. `frames.json`.
      boxes: dict of name -> float64 array (N, 4) of `X, Y, W, H`, for
        `face`, `left_eye`, `right_eye` (eyes relative to the face box) and
        `face_grid` (25x25 grid units).
      valid: dict of name -> bool array (N,), the `IsValid` flags.
      dot: dict with `DotNum`, `XCam`, `YCam`, `Time` arrays (N,).
      orientation: int array (N,), `screen.json` `Orientation`.
      split: str. `train`, `validation` or `test`.
      device: str. `info.json` `DeviceName`.
    """

    path: str
    number: int
    frame_names: list
    boxes: dict
    valid: dict
    dot: dict
    orientation: np.ndarray
    split: str
    device: str

    @property
    def num_frames(self):
        return len(self.frame_names)


def device_type(device_name):
    """Returns "tablet" for an iPad (or other tablet), else "phone".

    Args:
      device_name: str. `info.json` `DeviceName`, e.g. "iPhone 6".

    Example:

    >>> device_type("iPad Air 2")
    'tablet'
    """
    name = device_name.lower()
    return "tablet" if any(word in name for word in _TABLET_WORDS) else "phone"


def list_recordings(manual_dir, listdir=os.listdir, isdir=os.path.isdir):
    """Returns the sorted recording folder names (`%05d`) under `manual_dir`.

    Args:
      manual_dir: str. the folder holding one sub-folder per recording.
      listdir, isdir: callables, to read through another file system (for
        example `tf.io.gfile.listdir` / `tf.io.gfile.isdir`).
    """
    names = []
    for name in listdir(manual_dir):
        name = name.rstrip("/")
        if name.isdigit() and isdir(os.path.join(manual_dir, name)):
            names.append(name)
    return sorted(names)


def _read_json(path, open_fn):
    name = os.path.basename(path)
    try:
        with open_fn(path, "rb") as f:
            text = f.read()
    except (OSError, IOError) as error:
        raise RecordingError(SKIP_MISSING_JSON, f"cannot read {name}: {error}")
    except Exception as error:  # tf.errors.NotFoundError and similar.
        raise RecordingError(SKIP_MISSING_JSON, f"cannot read {name}: {error}")
    try:
        return json.loads(text)
    except (ValueError, UnicodeDecodeError) as error:
        raise RecordingError(SKIP_UNPARSABLE_JSON, f"{name} is not valid JSON: {error}")


def _array(content, key, name, dtype):
    if not isinstance(content, dict) or key not in content:
        raise RecordingError(SKIP_UNPARSABLE_JSON, f"{name} has no key {key!r}")
    try:
        return np.asarray(content[key], dtype=dtype).reshape(-1)
    except (TypeError, ValueError) as error:
        raise RecordingError(
            SKIP_UNPARSABLE_JSON, f"{name}[{key!r}] is not a list of numbers: {error}"
        )


def read_split(recording_dir, open_fn=open):
    """Returns the split of a recording from `info.json` `Dataset`.

    Raises:
      RecordingError: `info.json` is missing, unparsable or names no known
        split (`train`, `val`, `test`).
    """
    info = _read_json(os.path.join(recording_dir, "info.json"), open_fn)
    dataset = info.get("Dataset") if isinstance(info, dict) else None
    if dataset not in SPLIT_NAMES:
        raise RecordingError(
            SKIP_UNKNOWN_SPLIT if isinstance(info, dict) else SKIP_UNPARSABLE_JSON,
            f"info.json Dataset must be one of {sorted(SPLIT_NAMES)}. "
            f"Received: Dataset={dataset!r}",
        )
    return SPLIT_NAMES[dataset]


def read_recording(recording_dir, open_fn=open):
    """Parses the JSON files of one recording folder.

    Args:
      recording_dir: str. a `%05d` recording folder.
      open_fn: callable like `open`, e.g. `tf.io.gfile.GFile`.

    Returns:
      A `Recording`.

    Raises:
      RecordingError: with reason `missing_json`, `unparsable_json`,
        `unknown_split` or `length_mismatch` (a per-frame array whose length
        differs from `frames.json`).
    """
    recording_dir = recording_dir.rstrip("/")
    content = {
        name: _read_json(os.path.join(recording_dir, name), open_fn)
        for name in REQUIRED_JSON_FILES
    }
    frame_names = content["frames.json"]
    if not isinstance(frame_names, list) or not all(
        isinstance(n, str) for n in frame_names
    ):
        raise RecordingError(
            SKIP_UNPARSABLE_JSON, "frames.json is not a list of file names"
        )
    split = read_split(recording_dir, open_fn)
    num_frames = len(frame_names)

    boxes, valid = {}, {}
    arrays = {}
    for box, name in _BOX_FILES.items():
        values = {k: _array(content[name], k, name, np.float64) for k in _BOX_KEYS}
        arrays.update({f"{name}[{k}]": v for k, v in values.items()})
        if all(len(v) == num_frames for v in values.values()):
            boxes[box] = np.stack([values[k] for k in "XYWH"], axis=-1)
            valid[box] = values["IsValid"] != 0
    dot = {
        k: _array(content["dotInfo.json"], k, "dotInfo.json", np.float64)
        for k in _DOT_KEYS
    }
    arrays.update({f"dotInfo.json[{k}]": v for k, v in dot.items()})
    screen = {
        k: _array(content["screen.json"], k, "screen.json", np.float64)
        for k in _SCREEN_KEYS
    }
    arrays.update({f"screen.json[{k}]": v for k, v in screen.items()})
    wrong = {k: len(v) for k, v in arrays.items() if len(v) != num_frames}
    if wrong:
        raise RecordingError(
            SKIP_LENGTH_MISMATCH,
            f"arrays disagree with frames.json ({num_frames} frames): {wrong}",
        )

    info = content["info.json"]
    return Recording(
        path=recording_dir,
        number=int(os.path.basename(recording_dir)),
        frame_names=frame_names,
        boxes=boxes,
        valid=valid,
        dot=dot,
        orientation=screen["Orientation"].astype(np.int32),
        split=split,
        device=str(info.get("DeviceName", "unknown")),
    )


def frame_skip_reasons(recording):
    """Returns a list with, per frame, None (usable) or the skip reason.

    A frame is usable where the face, both eyes and the face grid are valid
    and every box has a positive width and height.

    Args:
      recording: `Recording`.
    """
    reasons = []
    for i in range(recording.num_frames):
        reason = None
        if not all(recording.valid[k][i] for k in _BOX_FILES):
            reason = SKIP_INVALID_DETECTION
        elif not all(
            recording.boxes[k][i, 2] > 0 and recording.boxes[k][i, 3] > 0
            for k in _BOX_FILES
        ):
            reason = SKIP_NON_POSITIVE_BOX
        reasons.append(reason)
    return reasons


def encode_png(image):
    """Encodes a uint8 (H, W, 3) array as PNG bytes (fast compression)."""
    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, format="PNG", compress_level=1)
    return buffer.getvalue()


def decode_jpeg(path, open_fn=open):
    """Reads a JPEG frame fully into a uint8 RGB array.

    Raises:
      OSError: the file is missing, unreadable or truncated.
    """
    with open_fn(path, "rb") as f:
        data = f.read()
    with Image.open(io.BytesIO(data)) as image:
        image.load()  # Raises OSError on a truncated file.
        return np.asarray(image.convert("RGB"))


def process_recording(recording_dir, image_size, open_fn=open):
    """Turns one recording folder into examples and skip counts.

    This is the unit of work of the builder's process pool.

    Args:
      recording_dir: str. a `%05d` recording folder.
      image_size: int. side of the square crops.
      open_fn: callable like `open`.

    Returns:
      (examples, frame_skips, recording_skip): `examples` is a list of
      (key, example dict) with PNG-encoded crops, in frame order;
      `frame_skips` a `collections.Counter` of frame skip reasons;
      `recording_skip` None or (reason, message, frames lost) when the whole
      recording was skipped.
    """
    try:
        recording = read_recording(recording_dir, open_fn)
    except RecordingError as error:
        return (
            [],
            collections.Counter(),
            (error.reason, str(error), count_recording_frames(recording_dir, open_fn)),
        )
    examples = []
    skips = collections.Counter()
    kind = device_type(recording.device)
    for index, reason in enumerate(frame_skip_reasons(recording)):
        if reason is not None:
            skips[reason] += 1
            continue
        path = os.path.join(recording.path, "frames", recording.frame_names[index])
        try:
            image = decode_jpeg(path, open_fn)
        except Exception:  # Missing, unreadable or truncated JPEG.
            skips[SKIP_UNREADABLE_JPEG] += 1
            continue
        cut = crops.crop_frame(
            image,
            recording.boxes["face"][index],
            recording.boxes["left_eye"][index],
            recording.boxes["right_eye"][index],
            image_size,
        )
        if cut is None:
            skips[SKIP_BOX_OUTSIDE_FRAME] += 1
            continue
        example = {k: encode_png(v) for k, v in cut.items()}
        example.update(
            gaze_cm=np.array(
                [recording.dot["XCam"][index], recording.dot["YCam"][index]], np.float32
            ),
            face_grid=recording.boxes["face_grid"][index].astype(np.int32),
            device=recording.device,
            device_type=kind,
            orientation=int(recording.orientation[index]),
            recording=recording.number,
            frame=index,
            dot=int(recording.dot["DotNum"][index]),
            dot_time=np.float32(recording.dot["Time"][index]),
        )
        examples.append((f"{recording.number:05d}_{index:05d}", example))
    return examples, skips, None


def count_recording_frames(recording_dir, open_fn=open):
    """Best-effort frame count of a (possibly broken) recording, 0 if unknown.

    Args:
      recording_dir: str. a `%05d` recording folder.
      open_fn: callable like `open`.
    """
    for name, key in (("frames.json", None), ("info.json", "TotalFrames")):
        try:
            with open_fn(os.path.join(recording_dir, name), "rb") as f:
                content = json.loads(f.read())
            return int(len(content) if key is None else content[key])
        except Exception:  # Unknown: the file is the broken one.
            continue
    return 0


def face_grid(face_box, frame_size):
    """faceGrid.json parameters of a face box: 1-based X, Y and W, H in cells.

    The frame is divided into 25 x 25 cells (whatever its aspect); the grid
    box is clipped to the grid.

    Args:
      face_box: (X, Y, W, H) in frame pixels.
      frame_size: (width, height) of the frame.

    Example:

    >>> face_grid((160., 120., 320., 240.), (640, 480))
    (7, 7, 13, 13)
    """
    x, y, w, h = (float(v) for v in face_box)
    width, height = frame_size
    cells = FACE_GRID_CELLS
    x0 = int(np.clip(math.floor(x * cells / width), 0, cells - 1))
    y0 = int(np.clip(math.floor(y * cells / height), 0, cells - 1))
    x1 = int(np.clip(math.ceil((x + w) * cells / width), x0 + 1, cells))
    y1 = int(np.clip(math.ceil((y + h) * cells / height), y0 + 1, cells))
    return x0 + 1, y0 + 1, x1 - x0, y1 - y0


def _box_json(boxes, is_valid, integer=False):
    """One box file: `X, Y, W, H` (zero where invalid) and `IsValid`."""
    boxes = np.where(is_valid[:, None], boxes, 0.0)
    if integer:
        columns = [[int(round(v)) for v in boxes[:, i]] for i in range(4)]
    else:
        columns = [[round(float(v), 3) for v in boxes[:, i]] for i in range(4)]
    content = dict(zip("XYWH", columns))
    content["IsValid"] = [int(v) for v in is_valid]
    return content


def _per_frame(values, num_frames, name, dtype, shape=()):
    try:
        return np.broadcast_to(np.asarray(values, dtype), (num_frames,) + shape)
    except ValueError as error:
        raise ValueError(
            f"{name} must hold one entry per frame ({num_frames} frames). "
            f"Received: {name} of shape {np.shape(values)}"
        ) from error


def write_recording(
    recording_dir,
    frames,
    *,
    face_boxes,
    left_eye_boxes,
    right_eye_boxes,
    face_grid,
    valid=None,
    gaze_cm=None,
    dot_num=None,
    dot_time=None,
    dot_pts=None,
    screen_pts=(320.0, 568.0),
    split="train",
    device="iPhone 6",
    orientation=1,
    jpeg_quality=75,
):
    """Writes a recording folder in the published GazeCapture layout.

    The inverse of `read_recording`. Frames are written as they come, so a
    generator keeps one frame in memory at a time; the number of frames is
    the number of face boxes.

    Args:
      recording_dir: str. the `%05d` folder to create.
      frames: iterable of uint8 arrays (H, W, 3), written as JPEG.
      face_boxes: array (N, 4). face `X, Y, W, H` in frame pixels.
      left_eye_boxes, right_eye_boxes: array (N, 4). relative to the face box
        (the left eye is the subject's left, on the right of the image).
      face_grid: array (N, 4). 25x25 grid `X, Y, W, H` (see `face_grid`).
      valid: optional dict name -> (N,) of 0/1 for `face`, `left_eye`,
        `right_eye`, `face_grid`; all valid by default.
      gaze_cm: optional array (N, 2). `XCam, YCam`; zeros by default.
      dot_num, dot_time: optional arrays (N,). default: one dot, time = i/30.
      dot_pts: optional array (N, 2). `XPts, YPts`; zeros by default.
      screen_pts: (W, H) or array (N, 2). `screen.json` size in points.
      split: str. `train`, `val` or `test` (`info.json` `Dataset`).
      device: str. `info.json` `DeviceName`.
      orientation: int or array (N,). `screen.json` `Orientation`.
      jpeg_quality: int or array (N,). JPEG quality of each frame.

    Returns:
      int, the number of frames written.

    Raises:
      ValueError: a per-frame argument does not hold one entry per frame,
        or `frames` holds fewer frames than boxes.

    Example:

    >>> import tempfile
    >>> frames = [np.full((480, 640, 3), 128, np.uint8)]
    >>> write_recording(tempfile.mkdtemp() + "/00001", frames,
    ...                 face_boxes=[[200, 100, 240, 240]],
    ...                 left_eye_boxes=[[140, 60, 60, 60]],
    ...                 right_eye_boxes=[[40, 60, 60, 60]],
    ...                 face_grid=[[8, 5, 10, 10]])
    1
    """
    face_boxes = np.asarray(face_boxes, np.float64).reshape(-1, 4)
    num_frames = len(face_boxes)
    boxes = {
        "face": face_boxes,
        "left_eye": _per_frame(left_eye_boxes, num_frames, "left_eye_boxes", np.float64, (4,)),
        "right_eye": _per_frame(right_eye_boxes, num_frames, "right_eye_boxes", np.float64, (4,)),
        "face_grid": _per_frame(face_grid, num_frames, "face_grid", np.float64, (4,)),
    }
    valid = valid or {}
    is_valid = {
        name: _per_frame(valid.get(name, 1), num_frames, f"valid[{name!r}]", bool)
        for name in boxes
    }
    gaze_cm = _per_frame(0.0 if gaze_cm is None else gaze_cm, num_frames, "gaze_cm", np.float64, (2,))
    dot_pts = _per_frame(0.0 if dot_pts is None else dot_pts, num_frames, "dot_pts", np.float64, (2,))
    dot_num = _per_frame(0 if dot_num is None else dot_num, num_frames, "dot_num", np.int64)
    if dot_time is None:
        dot_time = np.arange(num_frames) / 30.0
    dot_time = _per_frame(dot_time, num_frames, "dot_time", np.float64)
    screen_pts = _per_frame(screen_pts, num_frames, "screen_pts", np.float64, (2,))
    orientation = _per_frame(orientation, num_frames, "orientation", np.int64)
    quality = _per_frame(jpeg_quality, num_frames, "jpeg_quality", np.int64)

    frames_dir = os.path.join(recording_dir, "frames")
    os.makedirs(frames_dir, exist_ok=True)
    names = [f"{i:05d}.jpg" for i in range(num_frames)]
    written = 0
    for name, frame in zip(names, frames):
        Image.fromarray(np.asarray(frame, np.uint8)).save(
            os.path.join(frames_dir, name), "JPEG", quality=int(quality[written])
        )
        written += 1
    if written != num_frames:
        raise ValueError(
            f"frames must hold one image per face box ({num_frames}). "
            f"Received: {written} frames"
        )
    detected = is_valid["face"] & is_valid["left_eye"] & is_valid["right_eye"]
    content = {
        "frames.json": names,
        "appleFace.json": _box_json(boxes["face"], is_valid["face"]),
        "appleLeftEye.json": _box_json(boxes["left_eye"], is_valid["left_eye"]),
        "appleRightEye.json": _box_json(boxes["right_eye"], is_valid["right_eye"]),
        "faceGrid.json": _box_json(boxes["face_grid"], is_valid["face_grid"], integer=True),
        "dotInfo.json": {
            "DotNum": [int(v) for v in dot_num],
            "XPts": [round(float(v), 3) for v in dot_pts[:, 0]],
            "YPts": [round(float(v), 3) for v in dot_pts[:, 1]],
            "XCam": [round(float(v), 5) for v in gaze_cm[:, 0]],
            "YCam": [round(float(v), 5) for v in gaze_cm[:, 1]],
            "Time": [round(float(v), 5) for v in dot_time],
        },
        "info.json": {
            "TotalFrames": num_frames,
            "NumFaceDetections": int(is_valid["face"].sum()),
            "NumEyeDetections": int(detected.sum()),
            "Dataset": split,
            "DeviceName": device,
        },
        "screen.json": {
            "H": [float(v) for v in screen_pts[:, 1]],
            "W": [float(v) for v in screen_pts[:, 0]],
            "Orientation": [int(v) for v in orientation],
        },
    }
    for name, value in content.items():
        with open(os.path.join(recording_dir, name), "w") as f:
            json.dump(value, f, separators=(",", ":"))
    return num_frames


def prepared_dataset_info(data_dir, image_size=64):
    """`(version, info)`: the newest prepared `gaze_capture/size<image_size>`
    version under `data_dir` and its TFDS `dataset_info.json` as a dict, or
    None when nothing is prepared there (read without TensorFlow)."""
    root = os.path.join(data_dir, "gaze_capture", f"size{image_size}")
    if not os.path.isdir(root):
        return None
    versions = sorted(
        (v for v in os.listdir(root)
         if os.path.exists(os.path.join(root, v, "dataset_info.json"))),
        key=lambda v: tuple(int(p) if p.isdigit() else 0 for p in v.split(".")))
    if not versions:
        return None
    with open(os.path.join(root, versions[-1], "dataset_info.json")) as f:
        return versions[-1], json.load(f)


# Bytes the prepared dataset takes per raw frame (skipped frames included):
# 15.8 KB at 64x64 on the bench twin (225.4 MB for 14,287 frames), rounded
# up; 128x128 crops hold four times the pixels, an estimate not measured
# here. TFDS writes each split's shards while it deletes its spilled shuffle
# buckets, so preparing needs about the prepared size, plus a margin.
PREPARED_BYTES_PER_FRAME = {64: 17_000, 128: 68_000}
DISK_MARGIN = 1.2


def required_disk_bytes(num_frames, image_size=64):
    """Free disk space preparing `num_frames` raw frames needs (an estimate).

    >>> round(required_disk_bytes(2_445_504) / 1e9, 1)  # GazeCapture's frames.
    49.9
    """
    if image_size not in PREPARED_BYTES_PER_FRAME:
        raise ValueError(f"image_size must be one of {sorted(PREPARED_BYTES_PER_FRAME)}. "
                         f"Received: image_size={image_size}")
    return int(DISK_MARGIN * num_frames * PREPARED_BYTES_PER_FRAME[image_size])


def disk_space_message(needed, data_dir, free=None):
    """What to do when preparing into `data_dir` needs `needed` bytes and
    `free` (None: unknown) are free."""
    free_text = "" if free is None else f"; {free / 1e9:.1f} GB are free"
    return (f"Preparing needs about {needed / 1e9:.1f} GB of free disk space in "
            f"--data_dir={data_dir} ({DISK_MARGIN:g} x the prepared size, "
            f"estimated from the frame count){free_text}. Free some space or "
            "choose a --data_dir on a larger disk, then run the same command again.")


def check_disk_space(data_dir, num_frames, image_size=64, free=None):
    """Raises `OSError` (ENOSPC) with `disk_space_message` when the disk
    holding `data_dir` (or its nearest existing parent) lacks the space that
    preparing `num_frames` frames needs.

    Args:
      data_dir: str. where the prepared dataset goes.
      num_frames: int. raw frames to prepare.
      image_size: int. 64 or 128.
      free: int or None. free bytes (None: `shutil.disk_usage`).

    >>> check_disk_space("/tmp", 1000, free=10**9)
    >>> check_disk_space("/tmp", 10**6, free=10**9)  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    OSError: [Errno 28] Preparing needs about 20.4 GB of ...; 1.0 GB are free. ...
    """
    import errno
    import shutil

    needed = required_disk_bytes(num_frames, image_size)
    if free is None:
        path = os.path.abspath(data_dir)
        while not os.path.exists(path) and os.path.dirname(path) != path:
            path = os.path.dirname(path)
        free = shutil.disk_usage(path).free
    if free < needed:
        raise OSError(errno.ENOSPC, disk_space_message(needed, data_dir, free))
