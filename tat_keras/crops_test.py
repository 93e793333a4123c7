"""Tests of the crops: eye boxes, edge fill and the three crops of a frame."""

import numpy as np
import pytest

from tat_keras import crops

FACE = [200.0, 100.0, 240.0, 240.0]
LEFT_EYE = [140.0, 60.0, 60.0, 60.0]  # Image right side: subject's left eye.
RIGHT_EYE = [40.0, 60.0, 60.0, 60.0]


def _frame():
    """A grey frame with a red square at the left eye, blue at the right."""
    frame = np.full((480, 640, 3), 90, np.uint8)
    frame[160:220, 340:400] = (250, 20, 20)  # Left eye: FACE + LEFT_EYE.
    frame[160:220, 240:300] = (20, 20, 250)  # Right eye.
    return frame


def test_eye_boxes_are_relative_to_face_box():
    cut = crops.crop_frame(_frame(), FACE, LEFT_EYE, RIGHT_EYE, image_size=16)
    assert tuple(cut) == crops.INPUT_NAMES
    assert all(c.shape == (16, 16, 3) and c.dtype == np.uint8 for c in cut.values())
    # The left eye crop is the red square only, the right eye crop the blue.
    np.testing.assert_allclose(
        cut["left_eye"][2:-2, 2:-2].reshape(-1, 3).mean(0), [250, 20, 20], atol=3
    )
    np.testing.assert_allclose(
        cut["right_eye"][2:-2, 2:-2].reshape(-1, 3).mean(0), [20, 20, 250], atol=3
    )
    assert crops.absolute_eye_boxes(FACE, LEFT_EYE).tolist() == [340, 160, 60, 60]


def test_box_wholly_outside_the_frame_gives_no_crops():
    assert crops.crop_frame(_frame(), [700.0, 10.0, 50.0, 50.0], LEFT_EYE, RIGHT_EYE,
                            16) is None


def test_crop_past_frame_repeats_edge_pixels():
    image = np.arange(5 * 6 * 3, dtype=np.uint8).reshape(5, 6, 3) + 10
    crop = crops.crop_with_edge_fill(image, x=-2, y=-1, width=4, height=3)
    expected = np.pad(image, ((1, 0), (2, 0), (0, 0)), mode="edge")[:3, :4]
    np.testing.assert_array_equal(crop, expected)
    # Bottom-right corner beyond the frame: the corner pixel repeated.
    corner = crops.crop_with_edge_fill(image, x=5, y=4, width=3, height=2)
    np.testing.assert_array_equal(corner, np.broadcast_to(image[4, 5], (2, 3, 3)))
    assert corner.min() > 0  # Never black.


def test_face_crop_past_frame_is_not_black():
    frame = np.full((480, 640, 3), 200, np.uint8)
    frame[:, :320] = 100  # Left half darker; the box reaches past the left edge.
    cut = crops.crop_frame(
        frame,
        [-100, -50, 200, 200],
        [150, 100, 40, 40],
        [110, 100, 40, 40],
        image_size=20,
    )
    face = cut["face"]
    np.testing.assert_array_equal(face, np.full_like(face, 100))


def test_crop_rejects_empty_box():
    with pytest.raises(ValueError, match="width=0"):
        crops.crop_with_edge_fill(np.zeros((4, 4, 3), np.uint8), 0, 0, 0, 2)


@pytest.mark.parametrize(
    "box", [(-3, 2, 5, 4), (4, -2, 6, 9), (-2, -2, 10, 9), (7, 6, 3, 2), (-5, 1, 2, 2)]
)
def test_edge_fill_equals_numpy_edge_padding(box):
    x, y, w, h = box
    image = np.random.default_rng(0).integers(1, 255, (5, 6, 3), dtype=np.uint8)
    pad = 12
    padded = np.pad(image, ((pad, pad), (pad, pad), (0, 0)), mode="edge")
    expected = padded[y + pad : y + pad + h, x + pad : x + pad + w]
    np.testing.assert_array_equal(crops.crop_with_edge_fill(image, x, y, w, h), expected)
