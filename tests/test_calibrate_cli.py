"""End-to-end test of recipes/calibrate.py on a tiny model and data set."""

import json
import os

import numpy as np
import pytest

FACE = [200.0, 100.0, 240.0, 240.0]
EYE = [40.0, 60.0, 60.0, 60.0]
# Subject -> (device, dots, frames per dot).
SUBJECTS = {1: ("iPhone 6", 4, 2), 2: ("iPhone X", 4, 2), 3: ("iPad Air 2", 2, 3)}


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    """Prepared test split: two phone subjects with 4 dots, a tablet with 2."""
    import tensorflow_datasets as tfds

    from tat_keras.data.gaze_capture import layout
    from tat_keras.data.gaze_capture import gaze_capture_dataset_builder

    root = tmp_path_factory.mktemp("calibration_data")
    rng = np.random.default_rng(0)
    for number, (device, num_dots, per_dot) in SUBJECTS.items():
        n = num_dots * per_dot
        dots = rng.uniform(-5, 3, (num_dots, 2))
        layout.write_recording(
            str(root / "raw" / f"{number:05d}"),
            [rng.integers(0, 255, (480, 640, 3), dtype=np.uint8) for _ in range(n)],
            face_boxes=[FACE] * n, left_eye_boxes=[EYE] * n, right_eye_boxes=[EYE] * n,
            face_grid=[[8, 5, 10, 10]] * n, gaze_cm=np.repeat(dots, per_dot, axis=0),
            dot_num=np.repeat(np.arange(num_dots), per_dot), split="test", device=device)
    builder = gaze_capture_dataset_builder.GazeCapture(data_dir=str(root / "tfds"), num_workers=1)
    builder.download_and_prepare(
        download_config=tfds.download.DownloadConfig(manual_dir=str(root / "raw")))
    return str(root / "tfds")


@pytest.fixture(scope="module")
def model_path(tmp_path_factory):
    from tat_keras.export import tflite_test

    path = str(tmp_path_factory.mktemp("calibration_model") / "model.keras")
    tflite_test.tiny_gaze_net().save(path)
    return path


def test_calibrate_writes_the_table_and_counts_subjects(data_dir, model_path, tmp_path, run_recipe):
    output = str(tmp_path / "calibration")
    result = run_recipe(
        "calibrate.py", f"--model={model_path}", f"--data_dir={data_dir}",
        "--points=1,3,5", f"--output={output}", "--head_steps=5",
        "--head_learning_rate=0.05", "--tflite_batch_size=16")
    assert result.returncode == 0, result.stderr[-3000:]
    assert "subject 3: 2 dots, too few for k=3 (needs 4" in result.stdout
    assert "subject 1: 4 dots, too few for k=5" in result.stdout

    with open(os.path.join(output, "calibration.json")) as f:
        report = json.load(f)
    assert report["subjects_per_k"] == {"1": 3, "3": 2, "5": 0}
    assert report["auto_method"] == {"1": "affine", "3": "affine", "5": "ridge"}
    rows = {(r["method"], r["k"], r["group"]): r for r in report["summary"]}
    assert rows[("affine", 1, "all")]["num_subjects"] == 3
    assert rows[("affine", 1, "tablet")]["num_subjects"] == 1
    assert rows[("affine", 1, "tablet")]["error_after_low"] is None  # one subject
    assert rows[("affine", 3, "all")]["num_subjects"] == 2
    assert ("ridge", 1, "all") not in rows  # ridge needs 3 points
    assert not any(k == 5 for _, k, _ in rows)
    # The per-subject records average to the summary.
    records = [r for r in report["records"] if r["method"] == "affine" and r["k"] == 1]
    assert rows[("affine", 1, "all")]["error_after"] == pytest.approx(
        np.mean([r["error_after"] for r in records]))
    assert all(r["num_test_samples"] > 0 for r in report["records"])
    # The .tflite train signature reaches the NumPy steps' error.
    for entry in report["tflite_against_numpy"]:
        assert entry["tflite_error_after"] == pytest.approx(entry["numpy_error_after"], rel=1e-4)
        assert entry["tflite_ms_per_step"] > 0 and entry["numpy_ms_per_step"] > 0
    assert [e["k"] for e in report["tflite_against_numpy"]] == [1, 3]

    with open(os.path.join(output, "calibration.md")) as f:
        table = f.read()
    assert table.strip() in result.stdout
    assert "| k | subjects | before (cm) | affine | auto | heads | heads_tflite | ridge |" in table
    before = rows[("affine", 1, "all")]["error_before"]
    assert f"| 1 | 3 | {before:.2f} | " in table and "| n/a |" in table  # ridge at k=1
    assert "`auto` is affine for k=1, affine for k=3, ridge for k=5." in table
    assert "| 3 | 2 |" in table.split("Head fine-tuning")[1]
    with open(os.path.join(output, "calibration.png"), "rb") as f:
        assert f.read(8) == b"\x89PNG\r\n\x1a\n"
    with open(os.path.join(output, "flags.json")) as f:
        assert json.load(f)["points"] == ["1", "3", "5"]


def test_calibrate_refuses_bad_flags(data_dir, model_path, tmp_path, run_recipe):
    result = run_recipe("calibrate.py", f"--model={model_path}", f"--data_dir={data_dir}",
                        "--points=0,3", f"--output={tmp_path}")
    assert result.returncode == 1 and "--points must be positive" in result.stderr
    result = run_recipe("calibrate.py", f"--model={tmp_path}/none.keras",
                        f"--data_dir={data_dir}", f"--output={tmp_path}")
    assert result.returncode == 1 and "no model at" in result.stderr
