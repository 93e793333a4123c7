"""End-to-end test of recipes/estimate.py on a few frames and a tiny untrained model."""

import csv
import json
import os
import subprocess
import sys

import numpy as np
import pytest

from tat_keras.data import devices

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TRUE_CM = np.array([[1.0, -3.0], [1.5, -4.0], [-2.0, -6.0], [0.0, -2.0], [0.5, -1.0]])


def run_estimate(*args):
    return subprocess.run(
        [sys.executable, os.path.join(REPO, "recipes", "estimate.py"), *args],
        capture_output=True, text=True, cwd=REPO, timeout=600,
        env={**os.environ, "PYTHONPATH": REPO, "TF_CPP_MIN_LOG_LEVEL": "2"},
    )


@pytest.fixture(scope="module")
def inputs(tmp_path_factory):
    """A tiny .keras GazeNet and a recording folder: three photographs with a
    face (scikit-image's astronaut.png on a 640x480 canvas), a blank frame
    and a truncated JPEG, with the dots of dotInfo.json."""
    skimage = pytest.importorskip("skimage")
    from PIL import Image

    from tat_keras import models

    root = tmp_path_factory.mktemp("estimate")
    model_path = str(root / "tiny.keras")
    models.GazeNet(image_size=32, width_multiplier=0.125, x_bins=8, y_bins=8).save(model_path)
    photo = np.asarray(Image.open(
        os.path.join(os.path.dirname(skimage.__file__), "data", "astronaut.png")).convert("RGB"))
    recording = root / "00001"
    os.makedirs(recording / "frames")
    for i, shift in enumerate((0, 4, 8)):
        canvas = np.full((480, 640, 3), 100, np.uint8)
        canvas[:, 60 + shift:572 + shift] = photo[16:496]
        Image.fromarray(canvas).save(recording / "frames" / f"{i:05d}.png")
    Image.fromarray(np.full((480, 640, 3), 100, np.uint8)).save(
        recording / "frames" / "00003.png")
    Image.fromarray(canvas).save(recording / "frames" / "00004.jpg")
    whole = (recording / "frames" / "00004.jpg").read_bytes()
    (recording / "frames" / "00004.jpg").write_bytes(whole[: len(whole) // 3])
    with open(recording / "info.json", "w") as f:
        json.dump({"DeviceName": "iPhone 6"}, f)
    with open(recording / "screen.json", "w") as f:
        json.dump({"Orientation": [1] * 5, "H": [667] * 5, "W": [375] * 5}, f)
    with open(recording / "dotInfo.json", "w") as f:
        json.dump({"XCam": TRUE_CM[:, 0].tolist(), "YCam": TRUE_CM[:, 1].tolist()}, f)
    return model_path, str(recording), root


def test_estimate_writes_one_row_per_frame_and_draws(inputs):
    model_path, recording, root = inputs
    output = str(root / "gaze.csv")
    draw_dir = str(root / "drawn")
    animation = str(root / "drawn.gif")
    result = run_estimate(f"--model={model_path}", f"--frames={recording}",
                          f"--output={output}", f"--draw_dir={draw_dir}",
                          f"--animation={animation}", "--animation_height=120")
    assert result.returncode == 0, result.stderr[-3000:]
    with open(output) as f:
        rows = list(csv.DictReader(f))
    # The truncated JPEG is a row marked unreadable; the run went on.
    assert [r["status"] for r in rows] == ["face"] * 3 + ["no_face", "unreadable"]
    assert [r["face_found"] for r in rows] == ["1", "1", "1", "0", ""]
    assert rows[4]["frame"] == "00004.jpg" and rows[4]["gaze_x_cm"] == ""
    assert "00004.jpg: unreadable (OSError:" in result.stdout
    device = devices.DEVICES["iPhone 6"]
    for row, true_cm in zip(rows[:4], TRUE_CM):
        back = devices.screen_to_camera_cm(
            device, float(row["true_x_pts"]), float(row["true_y_pts"]), 1)
        np.testing.assert_allclose(back, true_cm, atol=1e-3)
    for row in rows[:3]:
        gaze = float(row["gaze_x_cm"]), float(row["gaze_y_cm"])
        back = devices.screen_to_camera_cm(
            device, float(row["screen_x_pts"]), float(row["screen_y_pts"]), 1)
        np.testing.assert_allclose(back, gaze, atol=1e-3)
        assert float(row["screen_x_px"]) == pytest.approx(2 * float(row["screen_x_pts"]), abs=1e-3)
    # The first smoothed point is the raw point (the filter starts there).
    assert rows[0]["smoothed_x_pts"] == rows[0]["screen_x_pts"]
    assert rows[3]["gaze_x_cm"] == "" and rows[3]["smoothed_x_pts"] == ""
    assert sorted(os.listdir(draw_dir)) == [f"{i:05d}.png" for i in range(4)]
    assert "00003.png: no face" in result.stdout
    assert "3 of 5 frames with a face, 1 unreadable (iPhone 6)" in result.stdout
    from PIL import Image

    with Image.open(animation) as gif:
        assert gif.n_frames == 4 and gif.size[1] == 120
        assert gif.info["duration"] == 70  # 15 frames per second, in GIF's 10 ms steps.


def test_estimate_refuses_an_unknown_device(inputs):
    # Bad orientations, dtypes and timestamps are tested on the estimator
    # itself (tat_keras/inference/estimator_test.py); one run checks that
    # the recipe turns such errors into a message and a failing exit code.
    model_path, recording, root = inputs
    result = run_estimate(f"--model={model_path}", f"--frames={os.path.join(recording, 'frames')}",
                          f"--output={root / 'bad.csv'}", "--device=Nokia 3310", "--orientation=1")
    assert result.returncode == 1
    assert "error: Unknown device. Use one of ['iPad 2'" in result.stderr and "'iPhone 6'" in result.stderr
    assert not os.path.exists(root / "bad.csv")


def test_estimate_reads_a_video_file(inputs):
    import cv2
    from PIL import Image

    model_path, recording, root = inputs
    video = str(root / "clip.mp4")
    writer = cv2.VideoWriter(video, cv2.VideoWriter_fourcc(*"mp4v"), 10.0, (640, 480))
    for i in range(3):
        frame = np.asarray(Image.open(os.path.join(recording, "frames", f"{i:05d}.png")))
        writer.write(cv2.cvtColor(frame, cv2.COLOR_RGB2BGR))
    writer.write(np.full((480, 640, 3), 100, np.uint8))
    writer.release()
    output = str(root / "video.csv")
    animation = str(root / "video.mp4")
    result = run_estimate(f"--model={model_path}", f"--video={video}", "--device=iPhone 6",
                          "--orientation=1", f"--output={output}", f"--animation={animation}",
                          "--animation_every=2")
    assert result.returncode == 0, result.stderr[-3000:]
    with open(output) as f:
        rows = list(csv.DictReader(f))
    assert [r["frame"] for r in rows] == ["00000", "00001", "00002", "00003"]
    assert [r["status"] for r in rows] == ["face", "face", "face", "no_face"]
    assert rows[0]["true_x_pts"] == ""  # A video has no true dots.
    assert "3 of 4 frames with a face, 0 unreadable (iPhone 6)" in result.stdout
    capture = cv2.VideoCapture(animation)
    # Every second frame, at half the video's own rate: real time kept.
    assert capture.get(cv2.CAP_PROP_FRAME_COUNT) == 2
    assert capture.get(cv2.CAP_PROP_FPS) == pytest.approx(5.0)
    capture.release()


@pytest.mark.parametrize("case, args, message", [
    ("not a model", ["--frames={recording}", "--model={text}"],
     "is neither a .tflite flatbuffer nor a .keras model: expected a .tflite flatbuffer"),
    ("video that cannot be opened", ["--video={text_video}", "--device=iPhone 6",
                                     "--orientation=1"], "as a video: OpenCV"),
    ("no video file", ["--video={missing}", "--device=iPhone 6", "--orientation=1"],
     "No video file at"),
    ("both sources", ["--frames={recording}", "--video={text_video}"],
     "pass either --frames=DIR (a folder of frames or a recording) or --video=FILE"),
    ("animation format", ["--frames={recording}", "--animation={root}/a.avi"],
     "An animation is written as .gif or .mp4"),
])
def test_estimate_refuses_bad_inputs_with_a_message(inputs, case, args, message):
    model_path, recording, root = inputs
    text = root / "notes.tflite"
    text.write_text("hello world, not a model at all")
    text_video = root / "notes.mp4"
    text_video.write_text("not a video")
    names = dict(recording=recording, text=text, text_video=text_video, root=root,
                 missing=root / "missing.mp4")
    output = root / f"{case.replace(' ', '_')}.csv"
    args = [a.format(**names) for a in args]
    if not any(a.startswith("--model") for a in args):
        args.append(f"--model={model_path}")
    result = run_estimate(*args, f"--output={output}")
    assert result.returncode == 1
    assert "error: " in result.stderr and message in result.stderr
    assert "Traceback" not in result.stderr
    assert not os.path.exists(output)
