import os

import numpy as np
import pytest

from tat_keras import crops as crop_lib
from tat_keras import smoothing
from tat_keras.data import devices
from tat_keras.inference import detector as detector_lib
from tat_keras.inference import estimator as estimator_lib
from tat_keras.inference import screen

FACE = np.array([180.0, 90.0, 260.0, 260.0])
LEFT = np.array([150.0, 70.0, 70.0, 70.0])  # Subject's left eye: right of the image.
RIGHT = np.array([40.0, 72.0, 70.0, 70.0])


class _FixedDetector:
    """Returns the same boxes for any frame, or none for a uniform frame."""

    def detect(self, frame):
        if frame.min() == frame.max():
            return None
        return detector_lib.Detection(FACE, LEFT, RIGHT, (True, True), FACE)


class _LinearModel:
    """Gaze = a fixed linear function of the mean crop pixels; records inputs."""

    def __init__(self):
        self.calls = []

    def __call__(self, inputs):
        self.calls.append(inputs)
        face = inputs["face"].mean(axis=(1, 2, 3))
        eyes = inputs["left_eye"].mean(axis=(1, 2, 3)) - inputs["right_eye"].mean(axis=(1, 2, 3))
        return np.stack([0.05 * eyes, -0.02 * face], axis=-1)


@pytest.fixture(scope="module")
def frame():
    rng = np.random.default_rng(0)
    return rng.integers(0, 256, (480, 640, 3), dtype=np.uint8)


def test_estimate_with_known_boxes_matches_crops_model_and_screen_mapping(frame):
    model = _LinearModel()
    est = estimator_lib.GazeEstimator(model, 64, detector=_FixedDetector(), smoother=None)
    result = est.estimate(frame, device="iPad Air 2", orientation=3, timestamp=1.0)
    crops = crop_lib.crop_frame(frame, FACE, LEFT, RIGHT, 64)
    for name in ("face", "left_eye", "right_eye"):
        np.testing.assert_array_equal(model.calls[0][name][0], crops[name].astype(np.float32))
        assert model.calls[0][name].dtype == np.float32
    expected = model({k: v[None].astype(np.float32) for k, v in crops.items()})[0]
    assert result.face_found
    assert result.face_box == tuple(FACE)
    assert result.left_eye_box == tuple(LEFT)
    np.testing.assert_allclose(result.gaze_cm, expected)
    # The screen point maps back to the gaze through the data's own mapping.
    back = devices.screen_to_camera_cm(devices.DEVICES["iPad Air 2"], *result.screen_points, 3)
    np.testing.assert_allclose(back, expected, atol=1e-9)
    ratio = screen.pixels_per_point("iPad Air 2")
    np.testing.assert_allclose(result.screen_pixels, np.array(result.screen_points) * ratio)
    assert result.smoothed_points is None


def test_estimate_from_boxes_equals_estimate_with_the_detector_boxes(frame):
    a = estimator_lib.GazeEstimator(_LinearModel(), 64, detector=_FixedDetector(), smoother=None)
    b = estimator_lib.GazeEstimator(_LinearModel(), 64, detector=_FixedDetector(), smoother=None)
    r1 = a.estimate(frame, device="iPhone 6", orientation=1, timestamp=0.0)
    r2 = b.estimate_from_boxes(frame, FACE, LEFT, RIGHT, device="iPhone 6", orientation=1,
                               timestamp=0.0)
    assert r1 == r2


def test_smoothing_follows_the_one_euro_filter_and_resets_without_a_face(frame):
    est = estimator_lib.GazeEstimator(
        _LinearModel(), 64, detector=_FixedDetector(),
        smoother=smoothing.OneEuroFilter(min_cutoff=0.5, beta=0.0),
    )
    reference = smoothing.OneEuroFilter(min_cutoff=0.5, beta=0.0)
    rng = np.random.default_rng(1)
    for i in range(4):
        noisy = np.clip(frame.astype(int) + rng.integers(-40, 40, frame.shape), 0, 255)
        result = est.estimate(noisy.astype(np.uint8), device="iPhone X", orientation=4,
                              timestamp=i / 30)
        np.testing.assert_allclose(result.smoothed_cm, reference(result.gaze_cm, i / 30))
        expected = screen.camera_cm_to_screen_points("iPhone X", *result.smoothed_cm, 4)
        np.testing.assert_allclose(result.smoothed_points, expected)
    blank = np.full_like(frame, 90)
    lost = est.estimate(blank, device="iPhone X", orientation=4, timestamp=0.2)
    assert not lost.face_found
    assert lost.gaze_cm is None and lost.screen_points is None and lost.smoothed_points is None
    # After the lost face the filter starts again: the first value passes through.
    again = est.estimate(frame, device="iPhone X", orientation=4, timestamp=0.25)
    assert again.smoothed_cm == again.gaze_cm


def test_a_new_orientation_restarts_the_filter(frame):
    est = estimator_lib.GazeEstimator(_LinearModel(), 64, detector=_FixedDetector())
    est.estimate(frame, device="iPhone 6", orientation=1, timestamp=0.0)
    turned = est.estimate(frame[::-1].copy(), device="iPhone 6", orientation=3, timestamp=0.1)
    assert turned.smoothed_cm == turned.gaze_cm


def test_no_face_from_the_real_detector_on_a_blank_frame():
    est = estimator_lib.GazeEstimator(_LinearModel(), 64)
    result = est.estimate(np.zeros((480, 640, 3), np.uint8), device="iPhone 6",
                          orientation=1, timestamp=0.0)
    assert result == estimator_lib.GazeResult(face_found=False, timestamp=0.0)


@pytest.mark.parametrize(
    "bad_frame,error,match",
    [
        (np.zeros((480, 640, 3), np.float32), ValueError, "frame must be RGB uint8.*dtype=float32"),
        (np.zeros((480, 640), np.uint8), ValueError, r"shape \(H, W, 3\).*shape=\(480, 640\)"),
        (np.zeros((480, 640, 4), np.uint8), ValueError, r"Received: shape=\(480, 640, 4\)"),
        ([[0, 0, 0]], TypeError, "frame must be a NumPy array"),
    ],
)
def test_bad_frames_are_refused(bad_frame, error, match):
    est = estimator_lib.GazeEstimator(_LinearModel(), 64, detector=_FixedDetector())
    with pytest.raises(error, match=match):
        est.estimate(bad_frame, device="iPhone 6", orientation=1, timestamp=0.0)


def test_bad_device_orientation_and_timestamps_are_refused(frame):
    est = estimator_lib.GazeEstimator(_LinearModel(), 64, detector=_FixedDetector())
    with pytest.raises(ValueError, match=r"Unknown device. Use one of \[.*'iPhone 6'"):
        est.estimate(frame, device="iPhone 15", orientation=1, timestamp=0.0)
    with pytest.raises(ValueError, match="orientation must be one of 1, 2, 3, 4"):
        est.estimate(frame, device="iPhone 6", orientation=0, timestamp=0.0)
    est.estimate(frame, device="iPhone 6", orientation=1, timestamp=1.0)
    with pytest.raises(ValueError, match="timestamps must increase"):
        est.estimate(frame, device="iPhone 6", orientation=1, timestamp=0.5)
    # A lost face does not let time run backwards either.
    est.estimate(np.full_like(frame, 3), device="iPhone 6", orientation=1, timestamp=2.0)
    with pytest.raises(ValueError, match="timestamps must increase"):
        est.estimate(frame, device="iPhone 6", orientation=1, timestamp=1.5)
    est.reset_time()
    assert est.estimate(frame, device="iPhone 6", orientation=1, timestamp=0.0).face_found


def test_estimator_arguments_are_validated():
    with pytest.raises(TypeError, match="predict_fn must be callable"):
        estimator_lib.GazeEstimator(None, 64)
    with pytest.raises(ValueError, match="image_size must be an integer >= 8. Received: image_size=0"):
        estimator_lib.GazeEstimator(_LinearModel(), 0)


def test_from_keras_runs_a_saved_gaze_net(tmp_path, frame):
    from tat_keras import models

    model = models.GazeNet(image_size=32, width_multiplier=0.125, x_bins=8, y_bins=8)
    path = os.path.join(tmp_path, "tiny.keras")
    model.save(path)
    est = estimator_lib.GazeEstimator.from_keras(path, detector=_FixedDetector())
    result = est.estimate(frame, device="iPhone 6", orientation=2, timestamp=0.0)
    crops = crop_lib.crop_frame(frame, FACE, LEFT, RIGHT, 32)
    inputs = {k: v[None].astype(np.float32) for k, v in crops.items()}
    expected = np.asarray(model.decode({k: np.asarray(v) for k, v in model(inputs).items()}))[0]
    np.testing.assert_allclose(result.gaze_cm, expected, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("loader, expected", [
    ("from_tflite", r"is not a TFLite model: expected a \.tflite flatbuffer"),
    ("from_keras", r"is not a Keras model: expected a \.keras model \(a zip archive"),
])
def test_a_file_that_is_not_a_model_is_refused_with_what_was_expected(tmp_path, loader, expected):
    path = tmp_path / ("notes.tflite" if loader == "from_tflite" else "notes.keras")
    path.write_text("hello world, not a model at all")
    with pytest.raises(ValueError, match=expected + r".*Received: 31 bytes"):
        getattr(estimator_lib.GazeEstimator, loader)(str(path), detector=_FixedDetector())
    with pytest.raises(FileNotFoundError, match="No model file at"):
        getattr(estimator_lib.GazeEstimator, loader)(str(tmp_path / "missing"))


def test_the_detectors_eye_landmarks_reach_the_result(frame):
    contours = np.arange(2 * 16 * 2, dtype=np.float64).reshape(2, 16, 2)

    class WithLandmarks(_FixedDetector):
        def detect(self, frame):
            detection = super().detect(frame)
            if detection is not None:
                detection.eye_landmarks = contours
            return detection

    est = estimator_lib.GazeEstimator(_LinearModel(), 64, detector=WithLandmarks())
    result = est.estimate(frame, device="iPhone 6", orientation=1, timestamp=0.0)
    np.testing.assert_array_equal(result.eye_landmarks, contours)
    assert est.estimate(np.zeros_like(frame), device="iPhone 6", orientation=1,
                        timestamp=0.1).eye_landmarks is None
