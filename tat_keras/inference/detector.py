"""A face and eye detector that installs from the registry, in GazeCapture's box convention.

GazeCapture's crops came from Apple's face and eye detectors, and the network
learned their boxes: a square face box (`X, Y, W, H` in frame pixels) and
square eye boxes relative to the face box's top-left corner, the subject's
left eye on the right of the image. This detector finds faces and eyes with
OpenCV's Haar cascades, which `opencv-python-headless` 4.x ships in
`cv2.data.haarcascades` (no download at run time), and maps their boxes onto
that convention:

- face: the largest frontal-face detection; its centre is shifted by
  `(dx, dy)` face widths and its side scaled by `scale` (`BoxConvention`);
- eyes: eye-cascade detections in the upper part of the face, mapped the
  same way; an eye that the cascade misses is placed where the data puts it
  on average relative to the face box (`EyeLayout`), so a found face always
  gives three crops.

The default conventions were fitted on the training recordings of the quick
synthetic set with `recipes/evaluate_detector.py --fit` (median ratios of the
data's boxes to the cascade's); the same recipe measures them on the test
recordings. Why Haar cascades and not MediaPipe or YuNet: see the README
section "From a camera frame to a point on the screen".

Example:

>>> import numpy as np
>>> detector = HaarFaceEyeDetector()
>>> detector.detect(np.zeros((480, 640, 3), np.uint8)) is None
True
"""

import dataclasses
import os

import numpy as np

FACE_CASCADE = "haarcascade_frontalface_alt2.xml"
EYE_CASCADE = "haarcascade_eye.xml"


@dataclasses.dataclass(frozen=True)
class BoxConvention:
    """Maps a detector's square box onto the data's: centre shift and scale.

    The data's box has its centre at the detector box's centre plus
    `(dx, dy)` times the detector box's width, and side `scale` times it.

    Args:
      dx, dy: float. centre shift in detector box widths (x right, y down).
      scale: float. side of the data's box over the detector box's width.
    """

    dx: float = 0.0
    dy: float = 0.0
    scale: float = 1.0

    def apply(self, box):
        """The data-convention box `(x, y, side, side)` for a detector box."""
        x, y, w, h = (float(v) for v in box)
        cx = x + w / 2 + self.dx * w
        cy = y + h / 2 + self.dy * w
        side = self.scale * w
        return np.array([cx - side / 2, cy - side / 2, side, side])


@dataclasses.dataclass(frozen=True)
class EyeLayout:
    """Where the data puts the eye boxes in the face box, in face widths.

    Args:
      left_centre, right_centre: (x, y). eye box centres relative to the face
        box's top-left corner, in face box widths (left: the subject's left
        eye, on the right of the image).
      side: float. eye box side in face box widths.
    """

    left_centre: tuple = (0.5, 0.5)
    right_centre: tuple = (0.5, 0.5)
    side: float = 0.25

    def box(self, face_box, which):
        """An eye box `(x, y, side, side)` relative to `face_box`."""
        width = float(face_box[2])
        cx, cy = self.left_centre if which == "left" else self.right_centre
        side = self.side * width
        return np.array([cx * width - side / 2, cy * width - side / 2, side, side])


# Fitted with `recipes/evaluate_detector.py --fit` on the training
# recordings of the quick synthetic set (see the README for the figures).
DEFAULT_FACE_CONVENTION = BoxConvention(dx=0.0007, dy=0.0304, scale=0.9807)
DEFAULT_EYE_CONVENTION = BoxConvention(dx=0.0266, dy=-0.0022, scale=1.1476)
DEFAULT_EYE_LAYOUT = EyeLayout(
    left_centre=(0.7339, 0.3152), right_centre=(0.2614, 0.3225), side=0.3136
)


@dataclasses.dataclass
class Detection:
    """One face and its eyes, in GazeCapture's convention.

    Args:
      face_box: float array (4,). `X, Y, W, H` in frame pixels.
      left_eye_box, right_eye_box: float arrays (4,). relative to the face
        box's top-left corner (the subject's left eye is on the right of the
        image).
      eyes_from_cascade: (bool, bool). whether the left and right eye boxes
        came from the eye cascade (False: from the layout).
      raw_face_box: int array (4,). the face cascade's own box.
    """

    face_box: np.ndarray
    left_eye_box: np.ndarray
    right_eye_box: np.ndarray
    eyes_from_cascade: tuple
    raw_face_box: np.ndarray


def check_frame(frame):
    """Fails unless `frame` is an RGB uint8 array (H, W, 3)."""
    if not isinstance(frame, np.ndarray):
        raise TypeError(
            "frame must be a NumPy array, RGB uint8 of shape (H, W, 3). "
            f"Received: type={type(frame).__name__}"
        )
    if frame.dtype != np.uint8:
        raise ValueError(
            "frame must be RGB uint8 (H, W, 3), pixels 0-255; convert with "
            f"np.asarray(image, np.uint8). Received: dtype={frame.dtype}"
        )
    if frame.ndim != 3 or frame.shape[2] != 3 or min(frame.shape[:2]) < 16:
        raise ValueError(
            "frame must be RGB uint8 of shape (H, W, 3) with H and W at least "
            f"16. Received: shape={frame.shape}"
        )


class HaarFaceEyeDetector:
    """OpenCV Haar cascades for the face and eyes, boxes in the data's convention.

    Args:
      detect_width: int. the frame is shrunk so that its longer side is this
        many pixels before the cascades run (faster; faces filling a phone
        camera frame stay large).
      scale_factor: float. cascade pyramid step, > 1.
      min_neighbors: int. detections a face needs to be kept, >= 0.
      min_face_fraction: float. smallest face, as a share of the frame's
        shorter side.
      face_convention, eye_convention: BoxConvention.
      eye_layout: EyeLayout. where a missed eye is placed.
      face_cascade, eye_cascade: str. file names in `cv2.data.haarcascades`
        or paths.

    Example:

    >>> import numpy as np
    >>> HaarFaceEyeDetector(detect_width=320).detect(
    ...     np.full((480, 640, 3), 128, np.uint8)) is None
    True
    """

    def __init__(
        self,
        detect_width=320,
        scale_factor=1.1,
        min_neighbors=3,
        min_face_fraction=0.2,
        face_convention=DEFAULT_FACE_CONVENTION,
        eye_convention=DEFAULT_EYE_CONVENTION,
        eye_layout=DEFAULT_EYE_LAYOUT,
        face_cascade=FACE_CASCADE,
        eye_cascade=EYE_CASCADE,
    ):
        if not (isinstance(detect_width, int) and detect_width >= 32):
            raise ValueError(
                f"detect_width must be an integer >= 32. Received: detect_width={detect_width!r}"
            )
        if not scale_factor > 1.0:
            raise ValueError(
                f"scale_factor must be greater than 1. Received: scale_factor={scale_factor!r}"
            )
        if not (isinstance(min_neighbors, int) and min_neighbors >= 0):
            raise ValueError(
                f"min_neighbors must be a non-negative integer. Received: min_neighbors={min_neighbors!r}"
            )
        if not 0.0 < min_face_fraction < 1.0:
            raise ValueError(
                "min_face_fraction must lie in (0, 1). "
                f"Received: min_face_fraction={min_face_fraction!r}"
            )
        import cv2  # Loaded here: importing this module stays light.

        self._cv2 = cv2
        self.detect_width = detect_width
        self.scale_factor = float(scale_factor)
        self.min_neighbors = min_neighbors
        self.min_face_fraction = float(min_face_fraction)
        self.face_convention = face_convention
        self.eye_convention = eye_convention
        self.eye_layout = eye_layout
        self._face = self._load(face_cascade)
        self._eye = self._load(eye_cascade)

    def _load(self, name):
        cv2 = self._cv2
        if not hasattr(cv2, "CascadeClassifier"):
            raise ImportError(
                f"OpenCV {cv2.__version__} has no CascadeClassifier (OpenCV 5 "
                "dropped it); install opencv-python-headless>=4.8,<5."
            )
        path = name if os.path.isfile(name) else os.path.join(cv2.data.haarcascades, name)
        classifier = cv2.CascadeClassifier(path)
        if classifier.empty():
            raise FileNotFoundError(
                f"Cannot load the Haar cascade {path}; opencv-python-headless 4.x "
                f"ships {FACE_CASCADE} and {EYE_CASCADE} in cv2.data.haarcascades."
            )
        return classifier

    def detect_raw(self, frame):
        """The cascades' own boxes in frame pixels.

        Args:
          frame: uint8 RGB array (H, W, 3).

        Returns:
          (face_box, eye_boxes): the largest face `(x, y, w, h)` or None, and
          a list of eye boxes in frame pixels found inside it.
        """
        check_frame(frame)
        cv2 = self._cv2
        gray = cv2.cvtColor(frame, cv2.COLOR_RGB2GRAY)
        shrink = min(1.0, self.detect_width / max(gray.shape))
        small = (
            cv2.resize(gray, None, fx=shrink, fy=shrink, interpolation=cv2.INTER_AREA)
            if shrink < 1.0
            else gray
        )
        min_side = max(int(self.min_face_fraction * min(small.shape)), 20)
        faces = self._face.detectMultiScale(
            small, self.scale_factor, self.min_neighbors, minSize=(min_side, min_side)
        )
        if len(faces) == 0:
            return None, []
        x, y, w, h = max(faces, key=lambda b: b[2] * b[3])
        face = np.array([x, y, w, h], np.float64) / shrink
        # Eyes: in the upper part of the face, at full resolution when small.
        fx, fy, fw, fh = (int(round(v)) for v in face)
        top, bottom = max(fy + int(0.15 * fh), 0), min(fy + int(0.6 * fh), gray.shape[0])
        left, right = max(fx, 0), min(fx + fw, gray.shape[1])
        eyes = []
        if bottom - top > 8 and right - left > 8:
            region = gray[top:bottom, left:right]
            eye_shrink = min(1.0, 160.0 / region.shape[1])
            if eye_shrink < 1.0:
                region = cv2.resize(
                    region, None, fx=eye_shrink, fy=eye_shrink, interpolation=cv2.INTER_AREA
                )
            min_eye = max(int(0.12 * region.shape[1]), 8)
            found = self._eye.detectMultiScale(
                region, 1.1, self.min_neighbors, minSize=(min_eye, min_eye)
            )
            for ex, ey, ew, eh in found:
                eyes.append(
                    np.array([ex, ey, ew, eh], np.float64) / eye_shrink
                    + np.array([left, top, 0, 0])
                )
        return face, eyes

    def detect(self, frame):
        """Face and eye boxes in GazeCapture's convention, or None.

        Args:
          frame: uint8 RGB array (H, W, 3).

        Returns:
          A `Detection`, or None when no face is found.
        """
        raw_face, raw_eyes = self.detect_raw(frame)
        if raw_face is None:
            return None
        face = self.face_convention.apply(raw_face)
        # Keep the two largest eye detections, one on each half of the face.
        centre_x = raw_face[0] + raw_face[2] / 2
        halves = {"left": [], "right": []}
        for eye in raw_eyes:
            # The subject's left eye is on the right of the image.
            side = "left" if eye[0] + eye[2] / 2 > centre_x else "right"
            halves[side].append(eye)
        boxes, from_cascade = {}, {}
        for side in ("left", "right"):
            if halves[side]:
                eye = self.eye_convention.apply(max(halves[side], key=lambda b: b[2]))
                boxes[side] = eye - np.array([face[0], face[1], 0.0, 0.0])
                from_cascade[side] = True
            else:
                boxes[side] = self.eye_layout.box(face, side)
                from_cascade[side] = False
        return Detection(
            face_box=face,
            left_eye_box=boxes["left"],
            right_eye_box=boxes["right"],
            eyes_from_cascade=(from_cascade["left"], from_cascade["right"]),
            raw_face_box=raw_face,
        )


def box_iou(a, b):
    """Intersection over union of two `(x, y, w, h)` boxes (or arrays of them).

    Example:

    >>> box_iou([0, 0, 2, 2], [1, 0, 2, 2])
    0.3333333333333333
    """
    a = np.asarray(a, np.float64)
    b = np.asarray(b, np.float64)
    ix = np.clip(
        np.minimum(a[..., 0] + a[..., 2], b[..., 0] + b[..., 2])
        - np.maximum(a[..., 0], b[..., 0]),
        0,
        None,
    )
    iy = np.clip(
        np.minimum(a[..., 1] + a[..., 3], b[..., 1] + b[..., 3])
        - np.maximum(a[..., 1], b[..., 1]),
        0,
        None,
    )
    inter = ix * iy
    union = a[..., 2] * a[..., 3] + b[..., 2] * b[..., 3] - inter
    iou = inter / np.maximum(union, 1e-12)
    return float(iou) if iou.ndim == 0 else iou


def fit_box_convention(detector_boxes, data_boxes):
    """The `BoxConvention` that best maps detector boxes onto the data's.

    Medians of the per-box centre shift (in detector box widths) and of the
    side ratio, robust to the odd wrong detection.

    Args:
      detector_boxes: array (N, 4). `(x, y, w, h)`.
      data_boxes: array (N, 4). the data's boxes of the same faces or eyes,
        in the same (frame) coordinates.

    Example:

    >>> fit_box_convention([[0, 0, 10, 10]], [[1, 2, 12, 12]])
    BoxConvention(dx=0.2, dy=0.3, scale=1.2)
    """
    det = np.asarray(detector_boxes, np.float64).reshape(-1, 4)
    data = np.asarray(data_boxes, np.float64).reshape(-1, 4)
    if len(det) == 0 or len(det) != len(data):
        raise ValueError(
            "Need one data box per detector box, at least one. "
            f"Received: {len(det)} detector boxes, {len(data)} data boxes"
        )
    width = det[:, 2]
    dx = ((data[:, 0] + data[:, 2] / 2) - (det[:, 0] + det[:, 2] / 2)) / width
    dy = ((data[:, 1] + data[:, 3] / 2) - (det[:, 1] + det[:, 3] / 2)) / width
    scale = data[:, 2] / width
    return BoxConvention(
        dx=round(float(np.median(dx)), 4),
        dy=round(float(np.median(dy)), 4),
        scale=round(float(np.median(scale)), 4),
    )


def fit_eye_layout(face_boxes, left_eye_boxes, right_eye_boxes):
    """The mean `EyeLayout` of the data's eye boxes relative to the face box.

    Args:
      face_boxes: array (N, 4). in frame pixels.
      left_eye_boxes, right_eye_boxes: arrays (N, 4). relative to the face box.

    Example:

    >>> fit_eye_layout([[0, 0, 100, 100]], [[60, 30, 20, 20]], [[20, 30, 20, 20]])
    EyeLayout(left_centre=(0.7, 0.4), right_centre=(0.3, 0.4), side=0.2)
    """
    face = np.asarray(face_boxes, np.float64).reshape(-1, 4)
    width = face[:, 2:3]

    def centre(boxes):
        boxes = np.asarray(boxes, np.float64).reshape(-1, 4)
        c = (boxes[:, :2] + boxes[:, 2:] / 2) / width
        return tuple(round(float(v), 4) for v in np.median(c, axis=0))

    sides = np.concatenate(
        [
            np.asarray(left_eye_boxes, np.float64).reshape(-1, 4)[:, 2],
            np.asarray(right_eye_boxes, np.float64).reshape(-1, 4)[:, 2],
        ]
    ) / np.concatenate([width[:, 0], width[:, 0]])
    return EyeLayout(
        left_centre=centre(left_eye_boxes),
        right_centre=centre(right_eye_boxes),
        side=round(float(np.median(sides)), 4),
    )
