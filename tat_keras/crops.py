"""The three crops the network reads (face, left eye, right eye), and how
they are cut from a camera frame.

One definition for every floor that cuts or names the crops: the data
builder (which must not load TensorFlow or Keras in its worker processes),
the network, the export, the LiteRT runner and the gaze estimator, so a
frame is cut in an app exactly as it was for training. Pure NumPy and
Pillow: importing it loads neither TensorFlow nor Keras.

The boxes follow GazeCapture's convention: the face box `X, Y, W, H` in
pixels of the full frame, the eye boxes relative to the top-left corner of
the face box ("left eye": the subject's left, on the right of the image).
A box that reaches past the frame is filled by repeating the edge pixel,
never with black; each crop is resized with Pillow's bilinear filter.

Example:

>>> frame = np.zeros((480, 640, 3), np.uint8)
>>> crops = crop_frame(frame, [200, 100, 240, 240], [140, 60, 60, 60],
...                    [40, 60, 60, 60], image_size=64)
>>> sorted(crops) == sorted(INPUT_NAMES), crops["face"].shape
(True, (64, 64, 3))
"""

import numpy as np
from PIL import Image

INPUT_NAMES = ("face", "left_eye", "right_eye")


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
