"""End-to-end test of recipes/data_baselines.py on the tiny synthetic set."""

import json

import numpy as np


def test_fixed_predictors_match_numpy(run_recipe, tiny_synthetic_dir, tiny_labels,
                                      constant_predictor_error, tmp_path):
    import tensorflow_datasets as tfds

    from tat_keras.data import pipeline

    output = tmp_path / "fixed.json"
    result = run_recipe("data_baselines.py", f"--data_dir={tiny_synthetic_dir}",
                        "--predictors=", f"--output={output}")
    assert result.returncode == 0, result.stderr[-3000:]
    payload = json.loads(output.read_text())
    assert payload["runs"] == []  # no network was trained
    np.testing.assert_allclose(payload["constant"]["test_error_cm"],
                               constant_predictor_error, rtol=1e-5)

    # Device-and-orientation prior, re-derived: the training mean per pair.
    def columns(split):
        dataset = pipeline.load_builder(tiny_synthetic_dir).as_dataset(
            split=split, shuffle_files=False, decoders=tfds.decode.PartialDecoding(
                {"gaze_cm": True, "device": True, "orientation": True}))
        rows = list(dataset.as_numpy_iterator())
        return (np.array([r["gaze_cm"] for r in rows]),
                [(r["device"], int(r["orientation"])) for r in rows])

    train_gaze, train_pairs = columns("train")
    test_gaze, test_pairs = columns("test")
    means = {p: train_gaze[[q == p for q in train_pairs]].mean(axis=0)
             for p in set(train_pairs)}
    prediction = np.array([means.get(p, train_gaze.mean(axis=0)) for p in test_pairs])
    expected = np.mean(np.linalg.norm(prediction - test_gaze, axis=1))
    np.testing.assert_allclose(payload["device_orientation"]["test_error_cm"],
                               expected, rtol=1e-5)
    assert "device and orientation" in (tmp_path / "fixed.md").read_text()


def test_unknown_predictor_is_refused(run_recipe, tiny_synthetic_dir, tmp_path):
    result = run_recipe("data_baselines.py", f"--data_dir={tiny_synthetic_dir}",
                        "--predictors=eyes_only", f"--output={tmp_path / 'x.json'}")
    assert result.returncode != 0
    assert "--predictors must name some of face_only, face_and_eyes" in result.stderr


def test_make_synthetic_set_and_oracles_cli(run_recipe, tmp_path):
    # A variant of a preset is rendered with the field replaced.
    output = tmp_path / "raw"
    result = run_recipe("make_synthetic.py", f"--output_dir={output}", "--preset=quick",
                        "--set=num_train_subjects=1", "--set=num_val_subjects=0",
                        "--set=num_test_subjects=0", "--set=dots_per_recording=1",
                        "--set=frames_per_dot=1")
    assert result.returncode == 0, result.stderr[-3000:]
    summary = json.loads((output / "synthetic_summary.json").read_text())
    assert summary["summary"]["frames"] == 1
    assert summary["config"]["num_train_subjects"] == 1
    refused = run_recipe("make_synthetic.py", f"--output_dir={tmp_path / 'other'}",
                         "--set=glases_fraction=0")
    assert refused.returncode != 0 and "Unknown SyntheticConfig field" in refused.stderr

    oracles = tmp_path / "oracles.json"
    result = run_recipe("gaze_oracles.py", "--preset=quick", "--set=num_train_subjects=4",
                        "--set=num_val_subjects=0", "--set=num_test_subjects=2",
                        f"--output={oracles}")
    assert result.returncode == 0, result.stderr[-3000:]
    values = json.loads(oracles.read_text())
    assert values["frames"] > 0 and values["camera_ray_pair_mean_distance"] > 0
    assert "| ideal reader |" in result.stdout
