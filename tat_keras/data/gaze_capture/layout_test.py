"""Tests of GazeCapture parsing, skip reasons and writing."""

import json
import os

import numpy as np
import pytest

from tat_keras.data.gaze_capture import layout as gio

FACE = [200.0, 100.0, 240.0, 240.0]
LEFT_EYE = [140.0, 60.0, 60.0, 60.0]  # Image right side: subject's left eye.
RIGHT_EYE = [40.0, 60.0, 60.0, 60.0]
GRID = [8.0, 5.0, 10.0, 10.0]


def _frames(num_frames, seed=0):
    """Smooth frames with a red square at the left eye, blue at the right."""
    rng = np.random.default_rng(seed)
    frames = []
    for _ in range(num_frames):
        frame = np.full((480, 640, 3), rng.integers(60, 120), np.uint8)
        frame[160:220, 340:400] = (250, 20, 20)  # Left eye: FACE + LEFT_EYE.
        frame[160:220, 240:300] = (20, 20, 250)  # Right eye.
        frames.append(frame)
    return frames


def write_fixture(recording_dir, num_frames=4, **overrides):
    kwargs = dict(
        face_boxes=[FACE] * num_frames,
        left_eye_boxes=[LEFT_EYE] * num_frames,
        right_eye_boxes=[RIGHT_EYE] * num_frames,
        face_grid=[GRID] * num_frames,
        gaze_cm=np.stack([np.arange(num_frames), -np.arange(num_frames)], axis=-1)
        * 1.5,
        dot_num=np.arange(num_frames) // 2,
    )
    kwargs.update(overrides)
    gio.write_recording(str(recording_dir), _frames(num_frames), **kwargs)
    return str(recording_dir)


def _edit_json(recording_dir, name, edit):
    path = os.path.join(recording_dir, name)
    with open(path) as f:
        content = json.load(f)
    edit(content)
    with open(path, "w") as f:
        json.dump(content, f)


def test_process_recording_examples(tmp_path):
    path = write_fixture(
        tmp_path / "00007",
        num_frames=4,
        split="val",
        device="iPad Air 2",
        orientation=3,
    )
    examples, skips, recording_skip = gio.process_recording(path, 32)
    assert recording_skip is None and not skips
    assert [k for k, _ in examples] == [f"00007_{i:05d}" for i in range(4)]
    key, example = examples[3]
    np.testing.assert_allclose(example["gaze_cm"], [4.5, -4.5])
    assert example["face_grid"].tolist() == [8, 5, 10, 10]
    assert example["device_type"] == "tablet"
    assert (example["recording"], example["frame"], example["dot"]) == (7, 3, 1)
    assert example["orientation"] == 3
    assert example["face"].startswith(b"\x89PNG")
    assert gio.read_split(path) == "validation"


def test_box_outside_frame_is_skipped(tmp_path):
    path = write_fixture(
        tmp_path / "00001", num_frames=2, face_boxes=[FACE, [700.0, 10.0, 50.0, 50.0]]
    )
    examples, skips, _ = gio.process_recording(path, 16)
    assert len(examples) == 1
    assert skips == {gio.SKIP_BOX_OUTSIDE_FRAME: 1}


@pytest.mark.parametrize("name", ["dotInfo.json", "appleLeftEye.json"])
def test_missing_json_skips_recording(tmp_path, name):
    path = write_fixture(tmp_path / "00001")
    os.remove(os.path.join(path, name))
    examples, _, recording_skip = gio.process_recording(path, 16)
    assert examples == []
    reason, message, frames = recording_skip
    assert reason == gio.SKIP_MISSING_JSON and name in message and frames == 4


def test_unparsable_json_skips_recording(tmp_path):
    path = write_fixture(tmp_path / "00001")
    with open(os.path.join(path, "faceGrid.json"), "w") as f:
        f.write('{"X": [1, 2')
    examples, _, recording_skip = gio.process_recording(path, 16)
    assert examples == [] and recording_skip[0] == gio.SKIP_UNPARSABLE_JSON
    with pytest.raises(gio.RecordingError, match="faceGrid.json"):
        gio.read_recording(path)


def test_length_mismatch_skips_recording(tmp_path):
    path = write_fixture(tmp_path / "00001")
    _edit_json(path, "dotInfo.json", lambda c: c["XCam"].pop())
    examples, _, recording_skip = gio.process_recording(path, 16)
    assert examples == [] and recording_skip[0] == gio.SKIP_LENGTH_MISMATCH
    assert "XCam" in recording_skip[1]


def test_truncated_and_missing_jpeg_skip_only_that_frame(tmp_path):
    path = write_fixture(tmp_path / "00001")
    jpeg = os.path.join(path, "frames", "00001.jpg")
    with open(jpeg, "rb") as f:
        data = f.read()
    with open(jpeg, "wb") as f:
        f.write(data[: len(data) // 2])
    os.remove(os.path.join(path, "frames", "00002.jpg"))
    examples, skips, recording_skip = gio.process_recording(path, 16)
    assert recording_skip is None
    assert [e["frame"] for _, e in examples] == [0, 3]
    assert skips == {gio.SKIP_UNREADABLE_JPEG: 2}


@pytest.mark.parametrize("name", ["face", "left_eye", "right_eye", "face_grid"])
def test_invalid_detection_skips_frame(tmp_path, name):
    path = write_fixture(tmp_path / "00001", valid={name: [1, 0, 1, 1]})
    examples, skips, _ = gio.process_recording(path, 16)
    assert [e["frame"] for _, e in examples] == [0, 2, 3]
    assert skips == {gio.SKIP_INVALID_DETECTION: 1}


@pytest.mark.parametrize("box", [[140.0, 60.0, 0.0, 60.0], [140.0, 60.0, 60.0, -5.0]])
def test_non_positive_box_is_invalid(tmp_path, box):
    path = write_fixture(
        tmp_path / "00001", left_eye_boxes=[LEFT_EYE, box, LEFT_EYE, LEFT_EYE]
    )
    examples, skips, _ = gio.process_recording(path, 16)
    assert [e["frame"] for _, e in examples] == [0, 2, 3]
    assert skips == {gio.SKIP_NON_POSITIVE_BOX: 1}


def test_unknown_split_raises(tmp_path):
    path = write_fixture(tmp_path / "00001", split="holdout")
    with pytest.raises(gio.RecordingError, match="Dataset=.holdout"):
        gio.read_split(path)


def test_list_recordings_ignores_other_entries(tmp_path):
    for name in ("00002", "00010", "notes", "00003.zip"):
        (tmp_path / name).mkdir()
    assert gio.list_recordings(str(tmp_path)) == ["00002", "00010"]


def test_face_grid_values():
    assert gio.face_grid((160.0, 120.0, 320.0, 240.0), (640, 480)) == (7, 7, 13, 13)
    # Clipped to the grid; the frame's aspect does not matter.
    assert gio.face_grid((-50.0, -50.0, 200.0, 200.0), (480, 640)) == (1, 1, 8, 6)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_face_grid_matches_numpy(seed):
    rng = np.random.default_rng(seed)
    width, height = (640, 480) if seed % 2 else (480, 640)
    for _ in range(20):
        x, y = rng.uniform(-100, 500, 2)
        w = h = rng.uniform(50, 400)
        gx, gy, gw, gh = gio.face_grid((x, y, w, h), (width, height))
        # The cells the box touches, 1-based, clipped to 25 x 25.
        cells_x = [c for c in range(25) if (c + 1) * width / 25 > x and c * width / 25 < x + w]
        cells_y = [c for c in range(25) if (c + 1) * height / 25 > y and c * height / 25 < y + h]
        if cells_x and cells_y:
            assert (gx, gw) == (cells_x[0] + 1, len(cells_x))
            assert (gy, gh) == (cells_y[0] + 1, len(cells_y))


def test_writer_round_trip_from_a_generator(tmp_path):
    num_frames = 3
    path = str(tmp_path / "00007")
    written = gio.write_recording(
        path,
        (frame for frame in _frames(num_frames)),  # One frame in memory at a time.
        face_boxes=[FACE] * num_frames,
        left_eye_boxes=[LEFT_EYE] * num_frames,
        right_eye_boxes=[RIGHT_EYE] * num_frames,
        face_grid=[GRID] * num_frames,
        valid={"left_eye": [1, 0, 1]},
        gaze_cm=[[1.5, -2.25], [0.0, 0.0], [-3.0, 4.0]],
        dot_num=[0, 0, 1],
        dot_pts=[[10.0, 20.0], [10.0, 20.0], [30.0, 40.0]],
        screen_pts=[[375.0, 667.0], [375.0, 667.0], [667.0, 375.0]],
        orientation=[1, 1, 3],
        split="test",
        device="iPhone 6",
        jpeg_quality=[90, 60, 30],
    )
    assert written == num_frames
    recording = gio.read_recording(path)
    assert recording.split == "test" and recording.device == "iPhone 6"
    np.testing.assert_array_equal(recording.boxes["face"], [FACE] * num_frames)
    # An invalid detection is written as a zero box.
    assert recording.boxes["left_eye"][1].tolist() == [0.0, 0.0, 0.0, 0.0]
    assert recording.valid["left_eye"].tolist() == [True, False, True]
    assert recording.dot["XCam"].tolist() == [1.5, 0.0, -3.0]
    assert recording.orientation.tolist() == [1, 1, 3]
    with open(os.path.join(path, "screen.json")) as f:
        assert json.load(f)["W"] == [375.0, 375.0, 667.0]
    with open(os.path.join(path, "info.json")) as f:
        info = json.load(f)
    assert info["NumFaceDetections"] == 3 and info["NumEyeDetections"] == 2
    sizes = [os.path.getsize(os.path.join(path, "frames", n)) for n in recording.frame_names]
    assert sizes[0] > sizes[1] > sizes[2]  # Lower JPEG quality, smaller file.
    assert gio.frame_skip_reasons(recording) == [None, gio.SKIP_INVALID_DETECTION, None]


def test_writer_rejects_arrays_of_the_wrong_length(tmp_path):
    with pytest.raises(ValueError, match="gaze_cm must hold one entry per frame"):
        write_fixture(tmp_path / "00001", num_frames=2, gaze_cm=[[0.0, 0.0]] * 3)
    with pytest.raises(ValueError, match="frames must hold one image per face box"):
        gio.write_recording(
            str(tmp_path / "00002"),
            _frames(1),
            face_boxes=[FACE] * 2,
            left_eye_boxes=LEFT_EYE,
            right_eye_boxes=RIGHT_EYE,
            face_grid=GRID,
        )
