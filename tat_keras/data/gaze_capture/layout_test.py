"""Tests of GazeCapture parsing, skip reasons and crops."""

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


def test_eye_boxes_are_relative_to_face_box():
    frame = _frames(1)[0]
    crops = gio.crop_frame(frame, FACE, LEFT_EYE, RIGHT_EYE, image_size=16)
    # The left eye crop is the red square only, the right eye crop the blue.
    np.testing.assert_allclose(
        crops["left_eye"][2:-2, 2:-2].reshape(-1, 3).mean(0), [250, 20, 20], atol=3
    )
    np.testing.assert_allclose(
        crops["right_eye"][2:-2, 2:-2].reshape(-1, 3).mean(0), [20, 20, 250], atol=3
    )
    assert gio.absolute_eye_boxes(FACE, LEFT_EYE).tolist() == [340, 160, 60, 60]


def test_crop_past_frame_repeats_edge_pixels():
    image = np.arange(5 * 6 * 3, dtype=np.uint8).reshape(5, 6, 3) + 10
    crop = gio.crop_with_edge_fill(image, x=-2, y=-1, width=4, height=3)
    expected = np.pad(image, ((1, 0), (2, 0), (0, 0)), mode="edge")[:3, :4]
    np.testing.assert_array_equal(crop, expected)
    # Bottom-right corner beyond the frame: the corner pixel repeated.
    corner = gio.crop_with_edge_fill(image, x=5, y=4, width=3, height=2)
    np.testing.assert_array_equal(corner, np.broadcast_to(image[4, 5], (2, 3, 3)))
    assert corner.min() > 0  # Never black.


def test_face_crop_past_frame_is_not_black():
    frame = np.full((480, 640, 3), 200, np.uint8)
    frame[:, :320] = 100  # Left half darker; the box reaches past the left edge.
    crops = gio.crop_frame(
        frame,
        [-100, -50, 200, 200],
        [150, 100, 40, 40],
        [110, 100, 40, 40],
        image_size=20,
    )
    face = crops["face"]
    np.testing.assert_array_equal(face, np.full_like(face, 100))


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


def test_crop_rejects_empty_box():
    with pytest.raises(ValueError, match="width=0"):
        gio.crop_with_edge_fill(np.zeros((4, 4, 3), np.uint8), 0, 0, 0, 2)


@pytest.mark.parametrize(
    "box", [(-3, 2, 5, 4), (4, -2, 6, 9), (-2, -2, 10, 9), (7, 6, 3, 2), (-5, 1, 2, 2)]
)
def test_edge_fill_equals_numpy_edge_padding(box):
    x, y, w, h = box
    image = np.random.default_rng(0).integers(1, 255, (5, 6, 3), dtype=np.uint8)
    pad = 12
    padded = np.pad(image, ((pad, pad), (pad, pad), (0, 0)), mode="edge")
    expected = padded[y + pad : y + pad + h, x + pad : x + pad + w]
    np.testing.assert_array_equal(gio.crop_with_edge_fill(image, x, y, w, h), expected)
