import json
import os

import numpy as np
import pytest
from PIL import Image

from tat_keras.inference import frame_sources


def _save(path, value, shape=(48, 64, 3)):
    Image.fromarray(np.full(shape, value, np.uint8)).save(path)


def test_a_folder_of_images_in_name_order_with_unreadable_frames_marked(tmp_path):
    _save(tmp_path / "b.png", 20)
    _save(tmp_path / "a.jpg", 10)
    whole = (tmp_path / "a.jpg").read_bytes()
    (tmp_path / "c.jpeg").write_bytes(whole[: len(whole) // 3])  # Truncated.
    (tmp_path / "d.png").write_text("not an image")
    (tmp_path / "notes.txt").write_text("ignored")
    folder = frame_sources.list_frames(str(tmp_path))
    assert [os.path.basename(p) for p in folder.paths] == ["a.jpg", "b.png", "c.jpeg", "d.png"]
    assert folder.device is None and folder.orientations is None and folder.true_cm is None
    frames = list(frame_sources.read_images(folder.paths))
    assert [f.index for f in frames] == [0, 1, 2, 3]
    assert frames[1].image.shape == (48, 64, 3) and frames[1].image.dtype == np.uint8
    assert int(frames[1].image.mean()) == 20 and frames[1].error is None
    assert frames[2].image is None and frames[2].error.startswith("OSError: ")
    assert frames[3].image is None and "cannot identify image file" in frames[3].error


def test_a_recording_folder_gives_device_orientations_and_dots(tmp_path):
    os.makedirs(tmp_path / "frames")
    for i in (0, 1, 2):
        _save(tmp_path / "frames" / f"{i:05d}.jpg", 10 * i)
    # frames.json sets the order (and thereby the rows of the JSON files).
    (tmp_path / "frames.json").write_text(json.dumps(["00001.jpg", "00000.jpg", "00002.jpg"]))
    (tmp_path / "info.json").write_text(json.dumps({"DeviceName": "iPad Air 2"}))
    (tmp_path / "screen.json").write_text(json.dumps({"Orientation": [1, 3, 4]}))
    (tmp_path / "dotInfo.json").write_text(json.dumps({"XCam": [1, 2, 3], "YCam": [-1, -2, -3]}))
    folder = frame_sources.list_frames(str(tmp_path))
    assert [os.path.basename(p) for p in folder.paths] == ["00001.jpg", "00000.jpg", "00002.jpg"]
    assert folder.device == "iPad Air 2" and folder.orientations == [1, 3, 4]
    np.testing.assert_array_equal(folder.true_cm, [[1, -1], [2, -2], [3, -3]])


def test_missing_folder_and_video_say_what_to_pass(tmp_path):
    with pytest.raises(FileNotFoundError, match="No folder of frames at .*nowhere: pass a folder"):
        frame_sources.list_frames(str(tmp_path / "nowhere"))
    with pytest.raises(FileNotFoundError, match="No video file at"):
        frame_sources.VideoFrames(str(tmp_path / "clip.mp4"))
    (tmp_path / "clip.mp4").write_text("not a video")
    with pytest.raises(ValueError, match=r"Cannot open .*clip.mp4 as a video: OpenCV .* found no decoder"):
        frame_sources.VideoFrames(str(tmp_path / "clip.mp4"))


def test_a_video_file_gives_rgb_frames_and_its_rate(tmp_path):
    import cv2

    path = str(tmp_path / "clip.mp4")
    writer = cv2.VideoWriter(path, cv2.VideoWriter_fourcc(*"mp4v"), 12.0, (64, 48))
    for i in range(5):
        bgr = np.zeros((48, 64, 3), np.uint8)
        bgr[..., 2] = 40 * i  # Red, in OpenCV's BGR order.
        writer.write(bgr)
    writer.release()
    video = frame_sources.VideoFrames(path)
    assert video.frame_rate == pytest.approx(12.0)
    frames = list(video)
    assert [f.name for f in frames] == ["00000", "00001", "00002", "00003", "00004"]
    for i, frame in enumerate(frames):
        red, green, blue = frame.image.reshape(-1, 3).mean(axis=0)
        assert abs(red - 40 * i) < 6 and green < 6 and blue < 6
