"""Camera frames for the estimator: a folder of images, a recording, or a video file.

Every source yields `Frame`s in order. A frame that cannot be read (a
truncated or corrupt JPEG, a file that is no image) comes as a `Frame`
with `image=None` and the reason in `error`, so that a run can mark it and
go on. A recording folder in GazeCapture's layout (`frames/`, `info.json`,
`screen.json`, `dotInfo.json`, `frames.json`) also gives the device, the
orientation of each frame and the dot the subject looked at (`XCam`,
`YCam`, cm from the camera). Videos are read with OpenCV. Importing this
module loads neither TensorFlow nor Keras.

Example:

>>> import os, tempfile
>>> import numpy as np
>>> from PIL import Image
>>> folder = tempfile.mkdtemp()
>>> Image.fromarray(np.zeros((48, 64, 3), np.uint8)).save(os.path.join(folder, "a.png"))
>>> _ = open(os.path.join(folder, "b.jpg"), "wb").write(b"not a jpeg")
>>> [(f.name, f.image is None) for f in read_images(list_frames(folder).paths)]
[('a.png', False), ('b.jpg', True)]
"""

import dataclasses
import json
import os

import numpy as np
from PIL import Image

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png")


@dataclasses.dataclass
class Frame:
    """One frame of a source.

    Args:
      index: int. position in the source, from 0.
      name: str. file name, or the frame number of a video.
      image: uint8 RGB array (H, W, 3), or None when it cannot be read.
      error: str or None. why the frame cannot be read.
    """

    index: int
    name: str
    image: np.ndarray = None
    error: str = None


@dataclasses.dataclass
class FrameFolder:
    """The frames of a folder and what a recording folder says about them.

    Args:
      paths: list of str. image files in frame order.
      device: str or None. `info.json` `DeviceName`.
      orientations: list of int or None. `screen.json` `Orientation`, one per frame.
      true_cm: float array (N, 2) or None. `dotInfo.json` `XCam`, `YCam`.
    """

    paths: list
    device: str = None
    orientations: list = None
    true_cm: np.ndarray = None


def _json(folder, name):
    path = os.path.join(folder, name)
    if not os.path.isfile(path):
        return None
    with open(path) as f:
        return json.load(f)


def list_frames(folder):
    """The frames of a folder of images or of a recording folder.

    A folder of images is read in name order (`.jpg`, `.jpeg`, `.png`). A
    recording folder holds `frames/`; its frames follow `frames.json` when
    there is one, and its JSON files give the device, orientations and dots.

    Args:
      folder: str.

    Returns:
      A `FrameFolder`.
    """
    if not os.path.isdir(folder):
        raise FileNotFoundError(
            f"No folder of frames at {folder}: pass a folder of .jpg/.png "
            f"frames or a recording folder holding frames/. Received: {folder!r}"
        )
    frames_dir = os.path.join(folder, "frames")
    if not os.path.isdir(frames_dir):
        names = sorted(n for n in os.listdir(folder) if n.lower().endswith(IMAGE_EXTENSIONS))
        return FrameFolder([os.path.join(folder, n) for n in names])
    names = _json(folder, "frames.json")
    if names is None:
        names = sorted(n for n in os.listdir(frames_dir) if n.lower().endswith(IMAGE_EXTENSIONS))
    info = _json(folder, "info.json") or {}
    screen = _json(folder, "screen.json")
    dots = _json(folder, "dotInfo.json")
    true_cm = None
    if dots is not None and len(dots.get("XCam", ())) == len(names):
        true_cm = np.column_stack([dots["XCam"], dots["YCam"]]).astype(np.float64)
    return FrameFolder(
        paths=[os.path.join(frames_dir, n) for n in names],
        device=info.get("DeviceName"),
        orientations=None if screen is None else [int(o) for o in screen["Orientation"]],
        true_cm=true_cm,
    )


def read_image(path):
    """An image file as RGB uint8, or (None, reason) when it cannot be read.

    Returns:
      (image, error): one of the two is None.
    """
    try:
        with Image.open(path) as image:
            return np.asarray(image.convert("RGB")), None
    except (OSError, ValueError, SyntaxError, Image.DecompressionBombError) as error:
        return None, f"{type(error).__name__}: {error}"


def read_images(paths):
    """Yields a `Frame` per image file, `image=None` for an unreadable one."""
    for index, path in enumerate(paths):
        image, error = read_image(path)
        yield Frame(index, os.path.basename(path), image, error)


class VideoFrames:
    """The frames of a video file, read with OpenCV, as RGB `Frame`s.

    Args:
      path: str. a video file OpenCV can decode (e.g. MP4, AVI, MOV).

    Raises:
      ValueError: the file cannot be opened as a video.

    Example:

    >>> VideoFrames("no_such_video.mp4")
    Traceback (most recent call last):
    ...
    FileNotFoundError: No video file at no_such_video.mp4...
    """

    def __init__(self, path):
        import cv2

        if not os.path.isfile(path):
            raise FileNotFoundError(
                f"No video file at {path}: pass a video file (e.g. .mp4) that "
                f"OpenCV can read. Received: {path!r}"
            )
        self._cv2 = cv2
        self.path = path
        self._capture = cv2.VideoCapture(path)
        if not self._capture.isOpened():
            self._capture.release()
            raise ValueError(
                f"Cannot open {path} as a video: OpenCV {cv2.__version__} found no "
                "decoder for it. Pass a video file such as an H.264 .mp4, or a "
                "folder of frames with --frames."
            )
        fps = self._capture.get(cv2.CAP_PROP_FPS)
        self.frame_rate = float(fps) if fps and np.isfinite(fps) and fps > 0 else None

    def __iter__(self):
        index = 0
        while True:
            ok, bgr = self._capture.read()
            if not ok:
                break
            yield Frame(index, f"{index:05d}", self._cv2.cvtColor(bgr, self._cv2.COLOR_BGR2RGB))
            index += 1
        self._capture.release()
