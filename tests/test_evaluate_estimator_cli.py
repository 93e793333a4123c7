"""End-to-end test of recipes/evaluate_estimator.py: photographs of a face, a tiny model."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def run_recipe(*args):
    return subprocess.run(
        [sys.executable, os.path.join(REPO, "recipes", "evaluate_estimator.py"), *args],
        capture_output=True, text=True, cwd=REPO, timeout=600,
        env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"},
    )


@pytest.fixture(scope="module")
def inputs(tmp_path_factory):
    """A tiny .keras GazeNet and a test recording: scikit-image's astronaut
    portrait on a 640x480 canvas, shifted a little from frame to frame, six
    dots of two frames; and a training recording the recipe must leave out."""
    skimage = pytest.importorskip("skimage")
    from PIL import Image

    from tat_keras import models
    from tat_keras.data.gaze_capture import layout

    root = tmp_path_factory.mktemp("evaluate_estimator")
    model_path = str(root / "tiny.keras")
    models.GazeNet(image_size=32, width_multiplier=0.125, x_bins=8, y_bins=8).save(model_path)
    photo = np.asarray(Image.open(
        os.path.join(os.path.dirname(skimage.__file__), "data", "astronaut.png")).convert("RGB"))

    def frames(num):
        for i in range(num):
            canvas = np.full((480, 640, 3), 100, np.uint8)
            canvas[:, 60 + 2 * i:572 + 2 * i] = photo[16:496]
            yield canvas

    raw = root / "raw"
    dots = np.repeat(np.arange(6), 2)
    for name, split in (("00001", "test"), ("00002", "train")):
        layout.write_recording(
            str(raw / name), frames(12), face_boxes=np.tile([230.0, 50.0, 170.0, 170.0], (12, 1)),
            left_eye_boxes=[95.0, 50.0, 45.0, 45.0], right_eye_boxes=[30.0, 50.0, 45.0, 45.0],
            face_grid=[9, 3, 7, 9], gaze_cm=np.stack([dots - 2.5, -2.0 - dots], -1),
            dot_num=dots, dot_time=np.arange(12) / 15.0, split=split, device="iPhone 6")
    return model_path, str(raw), root


def test_evaluate_estimator_writes_figures_and_resumes(inputs):
    model_path, raw, root = inputs
    output = str(root / "out")
    args = (f"--raw_dir={raw}", f"--model={model_path}", f"--output_dir={output}",
            "--calibration_dots=0,1,3")
    result = run_recipe(*args)
    assert result.returncode == 0, result.stderr[-3000:]
    with open(os.path.join(output, "end_to_end.json")) as f:
        report = json.load(f)
    assert report["num_recordings"] == 1 and report["reused_recordings"] == 0
    frames = report["summary"]["frames"]
    assert frames["total"] == 12 and frames["readable"] == 12
    assert frames["with_face"] >= 10  # The portrait's face, found by the default detector.
    assert report["summary"]["crops"]["frames"] == 12
    assert report["summary"]["latency"]["median_ms"] > 0
    assert {(row["path"], row["k"]) for row in report["calibration"]} == {
        (path, k) for path in ("end_to_end", "crops") for k in (0, 1, 3)}
    assert all("published" in anchor["label"] for anchor in report["published_anchors"])
    for name in ("end_to_end.md", "calibration.png", "flags.json", "recordings/00001.npz"):
        assert os.path.isfile(os.path.join(output, name)), name
    with open(os.path.join(output, "end_to_end.md")) as f:
        assert "| end to end (the detector's boxes) |" in f.read()

    again = run_recipe(*args)
    assert again.returncode == 0, again.stderr[-3000:]
    assert "1 of 1 recordings reused" in again.stdout
    with open(os.path.join(output, "end_to_end.json")) as f:
        assert json.load(f)["summary"] == report["summary"]


def test_evaluate_estimator_refuses_a_file_that_is_not_a_model(inputs):
    _, raw, root = inputs
    notes = root / "notes.tflite"
    notes.write_text("not a model")
    result = run_recipe(f"--raw_dir={raw}", f"--model={notes}", f"--output_dir={root / 'bad'}")
    assert result.returncode == 1
    assert "is neither a .tflite flatbuffer nor a .keras model" in result.stderr
