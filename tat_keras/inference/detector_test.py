import os

import numpy as np
import pytest

from tat_keras.inference import detector as detector_lib


@pytest.fixture(scope="module")
def detector():
    return detector_lib.HaarFaceEyeDetector()


def test_box_convention_apply_and_fit_are_inverse():
    rng = np.random.default_rng(0)
    convention = detector_lib.BoxConvention(dx=0.05, dy=-0.12, scale=1.3)
    raw = np.column_stack([rng.uniform(0, 300, (20, 2)), np.repeat(rng.uniform(50, 200, 20), 2)
                           .reshape(20, 2)])
    mapped = np.stack([convention.apply(b) for b in raw])
    # NumPy re-derivation: centre + (dx, dy) * w, side scale * w.
    centre = raw[:, :2] + raw[:, 2:] / 2 + np.column_stack([0.05 * raw[:, 2], -0.12 * raw[:, 2]])
    np.testing.assert_allclose(mapped[:, :2] + mapped[:, 2:] / 2, centre)
    np.testing.assert_allclose(mapped[:, 2], 1.3 * raw[:, 2])
    assert detector_lib.fit_box_convention(raw, mapped) == convention


def test_eye_layout_fit_and_box():
    faces = np.array([[10.0, 20.0, 100.0, 100.0], [0.0, 0.0, 200.0, 200.0]])
    left = np.array([[60.0, 30.0, 20.0, 20.0], [120.0, 60.0, 40.0, 40.0]])
    right = np.array([[20.0, 30.0, 20.0, 20.0], [40.0, 60.0, 40.0, 40.0]])
    layout = detector_lib.fit_eye_layout(faces, left, right)
    assert layout == detector_lib.EyeLayout((0.7, 0.4), (0.3, 0.4), 0.2)
    np.testing.assert_allclose(layout.box(faces[1], "left"), left[1])
    np.testing.assert_allclose(layout.box(faces[0], "right"), right[0])


def test_box_iou_against_hand_values():
    assert detector_lib.box_iou([0, 0, 2, 2], [1, 1, 2, 2]) == pytest.approx(1 / 7)
    assert detector_lib.box_iou([0, 0, 2, 2], [5, 5, 1, 1]) == 0.0
    np.testing.assert_allclose(
        detector_lib.box_iou(np.array([[0, 0, 2, 2]] * 2), np.array([[0, 0, 2, 2], [0, 0, 1, 2]])),
        [1.0, 0.5],
    )


def test_no_face_on_a_blank_or_noise_frame(detector):
    assert detector.detect(np.full((480, 640, 3), 127, np.uint8)) is None
    noise = np.random.default_rng(0).integers(0, 256, (480, 640, 3), dtype=np.uint8)
    assert detector.detect(noise) is None


def test_finds_a_real_face_in_a_photograph_a_package_ships(detector):
    skimage = pytest.importorskip("skimage")
    from PIL import Image

    path = os.path.join(os.path.dirname(skimage.__file__), "data", "astronaut.png")
    image = np.asarray(Image.open(path).convert("RGB"))
    detection = detector.detect(image)
    assert detection is not None
    x, y, w, h = detection.face_box
    # Eileen Collins' face in the 512x512 portrait lies about x 165-290, y 50-180.
    assert 165 < x + w / 2 < 290 and 50 < y + h / 2 < 180 and 80 < w < 200
    assert detection.eyes_from_cascade == (True, True)
    # The subject's left eye is on the right of the image, both in the upper face.
    assert detection.left_eye_box[0] > detection.right_eye_box[0]
    for eye in (detection.left_eye_box, detection.right_eye_box):
        assert 0 < eye[1] + eye[3] / 2 < 0.6 * h


def test_bad_frames_and_arguments_are_refused(detector):
    with pytest.raises(ValueError, match="dtype=float64"):
        detector.detect(np.zeros((480, 640, 3)))
    with pytest.raises(ValueError, match=r"Received: shape=\(480, 640, 1\)"):
        detector.detect(np.zeros((480, 640, 1), np.uint8))
    with pytest.raises(ValueError, match="scale_factor must be greater than 1. Received: scale_factor=1.0"):
        detector_lib.HaarFaceEyeDetector(scale_factor=1.0)
    with pytest.raises(ValueError, match="detect_width must be an integer >= 32"):
        detector_lib.HaarFaceEyeDetector(detect_width=8)
    with pytest.raises(FileNotFoundError, match="Cannot load the Haar cascade"):
        detector_lib.HaarFaceEyeDetector(face_cascade="no_such_cascade.xml")
