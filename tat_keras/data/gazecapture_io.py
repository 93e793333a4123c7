"""Reading GazeCapture recordings and cutting the face and eye crops.

Pure NumPy and Pillow, no TensorFlow: this is the per-recording work that the
`gaze_capture` TFDS builder runs in a pool of worker processes.

A recording folder holds `frames/%05d.jpg` and the JSON files listed in
`REQUIRED_JSON_FILES` (see `tat_keras/data/gaze_capture/README.md`). The
facts that matter here:

- The face box `X, Y, W, H` is in pixels relative to the full frame.
- The eye boxes are relative to the top-left corner of the *face* box.
  "Left eye" is the subject's left eye (the right side of the image).
- A frame is used only where the face, both eyes and the face grid are all
  marked `IsValid`; a box with a non-positive width or height is invalid.
- A box that reaches past the frame is filled by repeating the edge pixel,
  never with black.

Example:

>>> import numpy as np
>>> frame = np.zeros((480, 640, 3), np.uint8)
>>> crop_with_edge_fill(frame, x=-10, y=-10, width=20, height=20).shape
(20, 20, 3)
"""

import collections
import dataclasses
import io
import json
import os

import numpy as np
from PIL import Image

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


def absolute_eye_boxes(face_boxes, eye_boxes):
    """Moves eye boxes from face-box coordinates to frame coordinates.

    Args:
      face_boxes: array (..., 4). `X, Y, W, H` in frame pixels.
      eye_boxes: array (..., 4). `X, Y, W, H` relative to the face box's
        top-left corner.

    Example:

    >>> absolute_eye_boxes(np.array([100., 50, 200, 200]),
    ...                    np.array([20., 30, 40, 40])).tolist()
    [120.0, 80.0, 40.0, 40.0]
    """
    face_boxes = np.asarray(face_boxes, np.float64)
    eye_boxes = np.asarray(eye_boxes, np.float64)
    return np.concatenate(
        [eye_boxes[..., :2] + face_boxes[..., :2], eye_boxes[..., 2:]], axis=-1
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


def pixel_box(box):
    """Rounds a float `X, Y, W, H` box to integer pixels, width/height >= 1."""
    x, y, w, h = (float(v) for v in box)
    x0, y0 = int(round(x)), int(round(y))
    return x0, y0, max(int(round(w)), 1), max(int(round(h)), 1)


def box_overlaps_frame(box, frame_shape):
    """True when an integer `X, Y, W, H` box shares a pixel with the frame."""
    x, y, w, h = box
    height, width = frame_shape[:2]
    return x < width and y < height and x + w > 0 and y + h > 0


def crop_with_edge_fill(image, x, y, width, height):
    """Cuts `image[y:y+height, x:x+width]`, repeating edge pixels outside.

    Pixels of the box outside the frame take the value of the nearest frame
    pixel (as `np.pad(..., mode="edge")`), never black.

    Args:
      image: array (H, W, C).
      x, y: int. top-left corner in pixels; may be negative.
      width, height: int. box size in pixels, positive.

    Example:

    >>> image = np.arange(4, dtype=np.uint8).reshape(2, 2, 1)
    >>> crop_with_edge_fill(image, -1, 0, 3, 1)[..., 0].tolist()
    [[0, 0, 1]]
    """
    if width <= 0 or height <= 0:
        raise ValueError(
            "Crop width and height must be positive. "
            f"Received: width={width}, height={height}"
        )
    rows_in = (y >= 0) and (y + height <= image.shape[0])
    cols_in = (x >= 0) and (x + width <= image.shape[1])
    if rows_in and cols_in:
        return image[y : y + height, x : x + width]
    y0, y1 = np.clip([y, y + height], 0, image.shape[0])
    x0, x1 = np.clip([x, x + width], 0, image.shape[1])
    if y1 > y0 and x1 > x0:  # Pad the part inside the frame with its edges.
        pad = ((y0 - y, y + height - y1), (x0 - x, x + width - x1))
        pad += ((0, 0),) * (image.ndim - 2)
        return np.pad(image[y0:y1, x0:x1], pad, mode="edge")
    # No overlap: every pixel repeats the nearest frame pixel.
    rows = np.clip(np.arange(y, y + height), 0, image.shape[0] - 1)
    cols = np.clip(np.arange(x, x + width), 0, image.shape[1] - 1)
    return np.take(np.take(image, rows, axis=0), cols, axis=1)


def crop_and_resize(image, box, image_size):
    """Crops an integer box with edge fill and resizes it (Pillow bilinear).

    Args:
      image: uint8 array (H, W, 3).
      box: (x, y, width, height) integer pixels.
      image_size: int. output side.

    Returns:
      uint8 array (image_size, image_size, 3).
    """
    crop = crop_with_edge_fill(image, *box)
    resized = Image.fromarray(np.ascontiguousarray(crop)).resize(
        (image_size, image_size), Image.BILINEAR
    )
    return np.asarray(resized)


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


def crop_frame(image, face_box, left_eye_box, right_eye_box, image_size):
    """Returns the face, left and right eye crops of one frame.

    Args:
      image: uint8 array (H, W, 3), the full frame.
      face_box: (4,) `X, Y, W, H` in frame pixels.
      left_eye_box, right_eye_box: (4,) relative to the face box.
      image_size: int.

    Returns:
      dict `face`, `left_eye`, `right_eye` of uint8 (S, S, 3), or None when
      a box does not overlap the frame.
    """
    boxes = {
        "face": pixel_box(face_box),
        "left_eye": pixel_box(absolute_eye_boxes(face_box, left_eye_box)),
        "right_eye": pixel_box(absolute_eye_boxes(face_box, right_eye_box)),
    }
    if not all(box_overlaps_frame(b, image.shape) for b in boxes.values()):
        return None
    return {k: crop_and_resize(image, b, image_size) for k, b in boxes.items()}


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
            (error.reason, str(error), _count_frames(recording_dir, open_fn)),
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
        crops = crop_frame(
            image,
            recording.boxes["face"][index],
            recording.boxes["left_eye"][index],
            recording.boxes["right_eye"][index],
            image_size,
        )
        if crops is None:
            skips[SKIP_BOX_OUTSIDE_FRAME] += 1
            continue
        example = {k: encode_png(v) for k, v in crops.items()}
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


def _count_frames(recording_dir, open_fn):
    """Best-effort frame count of a broken recording (0 when unknown)."""
    for name, key in (("frames.json", None), ("info.json", "TotalFrames")):
        try:
            with open_fn(os.path.join(recording_dir, name), "rb") as f:
                content = json.loads(f.read())
            return int(len(content) if key is None else content[key])
        except Exception:  # Unknown: the file is the broken one.
            continue
    return 0


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
    split="train",
    device="iPhone 6",
    orientation=1,
    jpeg_quality=75,
):
    """Writes a recording folder in the published GazeCapture layout.

    The inverse of `read_recording`, for small test fixtures.

    Args:
      recording_dir: str. the `%05d` folder to create.
      frames: list of uint8 arrays (H, W, 3), written as JPEG.
      face_boxes: array (N, 4). face `X, Y, W, H` in frame pixels.
      left_eye_boxes, right_eye_boxes: array (N, 4). relative to the face box.
      face_grid: array (N, 4). 25x25 grid `X, Y, W, H`.
      valid: optional dict name -> (N,) of 0/1 for `face`, `left_eye`,
        `right_eye`, `face_grid`; all valid by default.
      gaze_cm: optional array (N, 2). `XCam, YCam`; zeros by default.
      dot_num, dot_time: optional arrays (N,). default: one dot, time = i/30.
      split: str. `train`, `val` or `test` (`info.json` `Dataset`).
      device: str. `info.json` `DeviceName`.
      orientation: int or array (N,). `screen.json` `Orientation`.
      jpeg_quality: int.

    Example:

    >>> import tempfile
    >>> frames = [np.full((480, 640, 3), 128, np.uint8)]
    >>> write_recording(tempfile.mkdtemp() + "/00001", frames,
    ...                 face_boxes=[[200, 100, 240, 240]],
    ...                 left_eye_boxes=[[140, 60, 60, 60]],
    ...                 right_eye_boxes=[[40, 60, 60, 60]],
    ...                 face_grid=[[8, 5, 10, 10]])
    """
    num_frames = len(frames)
    os.makedirs(os.path.join(recording_dir, "frames"), exist_ok=True)
    names = [f"{i:05d}.jpg" for i in range(num_frames)]
    for name, frame in zip(names, frames):
        Image.fromarray(frame).save(
            os.path.join(recording_dir, "frames", name), quality=jpeg_quality
        )
    valid = valid or {}

    def boxes(values, name):
        values = np.asarray(values, np.float64).reshape(num_frames, 4)
        is_valid = np.asarray(valid.get(name, np.ones(num_frames)), int)
        content = {k: values[:, i].tolist() for i, k in enumerate("XYWH")}
        content["IsValid"] = is_valid.tolist()
        return content

    gaze_cm = (
        np.zeros((num_frames, 2))
        if gaze_cm is None
        else np.asarray(gaze_cm, np.float64)
    )
    dot_num = np.zeros(num_frames, int) if dot_num is None else dot_num
    dot_time = np.arange(num_frames) / 30.0 if dot_time is None else dot_time
    orientation = np.broadcast_to(np.asarray(orientation, int), (num_frames,))
    faces = boxes(face_boxes, "face")
    content = {
        "frames.json": names,
        "appleFace.json": faces,
        "appleLeftEye.json": boxes(left_eye_boxes, "left_eye"),
        "appleRightEye.json": boxes(right_eye_boxes, "right_eye"),
        "faceGrid.json": boxes(face_grid, "face_grid"),
        "dotInfo.json": {
            "DotNum": np.asarray(dot_num, int).tolist(),
            "XPts": [0.0] * num_frames,
            "YPts": [0.0] * num_frames,
            "XCam": gaze_cm[:, 0].tolist(),
            "YCam": gaze_cm[:, 1].tolist(),
            "Time": np.asarray(dot_time, float).tolist(),
        },
        "info.json": {
            "TotalFrames": num_frames,
            "NumFaceDetections": int(sum(faces["IsValid"])),
            "NumEyeDetections": int(sum(faces["IsValid"])),
            "Dataset": split,
            "DeviceName": device,
        },
        "screen.json": {
            "H": [568.0] * num_frames,
            "W": [320.0] * num_frames,
            "Orientation": orientation.tolist(),
        },
    }
    for name, value in content.items():
        with open(os.path.join(recording_dir, name), "w") as f:
            json.dump(value, f)
