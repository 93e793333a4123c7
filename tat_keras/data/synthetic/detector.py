"""Detector boxes: what a face and eye detector reports for a rendered frame.

Errors are correlated over time (the plan draws them as a slow process),
grow with the head's turn away from the camera and, for the eyes, with
closing lids; now and then the eye detector boxes an eyebrow for a few
frames and still reports it valid. Eyes are lost (invalid) only when nearly
closed, so some half-closed eyes stay in the data. Face boxes are in frame
pixels, eye boxes relative to the face box, and the subject's left eye is on
the right of the image, as in GazeCapture.

Example:

>>> from tat_keras.data.synthetic import plan
>>> plan.OPENING_VALID < 0.5  # Half-closed eyes are kept.
True
"""

import math

import numpy as np

from tat_keras.data.synthetic import geometry
from tat_keras.data.synthetic import plan

FACE_ERROR = 0.02  # Position error of the face box, share of its side.
FACE_SCALE_ERROR = 0.03
EYE_ERROR = 0.02  # Position error of an eye box, share of its side.
EYE_SCALE_ERROR = 0.04
EYE_BOX_SCALE = 1.55  # Eye box side / eye width.


def _turn_degrees(frame):
    """Angle between the face's forward direction and the way to the camera."""
    forward = geometry.direction(*frame.head_angles[:2])
    to_camera = -np.asarray(frame.eye_mid, np.float64)
    to_camera /= np.linalg.norm(to_camera)
    return math.degrees(math.acos(float(np.clip(forward @ to_camera, -1.0, 1.0))))


def detect(subject, frame, geo):
    """Boxes and validity of one frame.

    Args:
      subject: Subject.
      frame: Frame.
      geo: dict from `geometry.project_head`.

    Returns:
      (face, face_valid), (right_eye, valid), (left_eye, valid): boxes as
      float64 arrays `X, Y, W, H`, eye boxes relative to the face box.
    """
    width, height = geo["size"]
    pose = 1.0 + _turn_degrees(frame) / 45.0
    error = frame.face_error
    side = geo["face_box_side"] * (1 + FACE_SCALE_ERROR * pose * error[2])
    cu, cv = geo["face_box_centre"] + FACE_ERROR * pose * side * error[:2]
    face = np.array([cu - side / 2, cv - side / 2, side, side])
    face_valid = frame.face_detected and (0 <= cu < width and 0 <= cv < height)
    lids = 1.0 + 1.5 * (1.0 - frame.opening)
    roll = geo["roll"]
    up = np.array([math.sin(roll), -math.cos(roll)])  # Image direction of "up".
    eye_boxes = []
    for index, (eye, error) in enumerate(zip(geo["eyes"], frame.eye_errors)):
        width_px = float(np.hypot(*(eye.outer - eye.inner)))
        side = EYE_BOX_SCALE * width_px * (1 + EYE_SCALE_ERROR * pose * error[2])
        centre = (eye.inner + eye.outer) / 2 + EYE_ERROR * pose * lids * side * error[:2]
        if frame.gross_eye == index:  # The eyebrow, boxed as an eye.
            centre = centre + up * geometry.BROW_HEIGHT * eye.scale
        box = np.array(
            [centre[0] - side / 2 - face[0], centre[1] - side / 2 - face[1], side, side]
        )
        valid = (
            face_valid
            and frame.opening >= plan.OPENING_VALID
            and 0 <= centre[0] < width
            and 0 <= centre[1] < height
        )
        eye_boxes.append((box, valid))
    return (face, face_valid), eye_boxes[0], eye_boxes[1]
