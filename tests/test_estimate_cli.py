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


def run_estimate(*args):
    return subprocess.run(
        [sys.executable, os.path.join(REPO, "recipes", "estimate.py"), *args],
        capture_output=True, text=True, cwd=REPO, timeout=600,
        env={**os.environ, "PYTHONPATH": REPO, "TF_CPP_MIN_LOG_LEVEL": "2"},
    )


@pytest.fixture(scope="module")
def inputs(tmp_path_factory):
    """A tiny .keras GazeNet and a recording folder: three photographs with a
    face (scikit-image's astronaut.png on a 640x480 canvas) and a blank frame."""
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
    with open(recording / "info.json", "w") as f:
        json.dump({"DeviceName": "iPhone 6"}, f)
    with open(recording / "screen.json", "w") as f:
        json.dump({"Orientation": [1, 1, 1, 1], "H": [667] * 4, "W": [375] * 4}, f)
    return model_path, str(recording), root


def test_estimate_writes_one_row_per_frame_and_draws(inputs):
    model_path, recording, root = inputs
    output = str(root / "gaze.csv")
    draw_dir = str(root / "drawn")
    result = run_estimate(f"--model={model_path}", f"--frames={recording}",
                          f"--output={output}", f"--draw_dir={draw_dir}")
    assert result.returncode == 0, result.stderr[-3000:]
    with open(output) as f:
        rows = list(csv.DictReader(f))
    assert [int(r["face_found"]) for r in rows] == [1, 1, 1, 0]
    device = devices.DEVICES["iPhone 6"]
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
    assert "3 of 4 frames with a face (iPhone 6)" in result.stdout


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
