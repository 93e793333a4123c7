"""`recipes/benchmark_training.py`'s whole runs: phases that add up to the
run, rates divided by the step's, and clear refusals of bad flags."""

import json

import pytest

pytestmark = pytest.mark.slow


def test_a_whole_run_is_split_into_phases_that_add_up(tiny_synthetic_dir, tmp_path,
                                                      run_recipe):
    output = tmp_path / "runs.json"
    result = run_recipe(
        "benchmark_training.py", f"--data_dir={tiny_synthetic_dir}", "--schemes=",
        "--compare_pipeline=false", "--run_scale=smoke", "--run_generations=2",
        "--run_epochs_per_generation=1", "--run_schemes=standard", "--run_trees=.",
        "--steps=3", "--warmup_steps=1", f"--output={output}")
    assert result.returncode == 0, result.stderr[-3000:]
    payload = json.loads(output.read_text())
    (row,) = payload["runs"]
    assert row["scheme"] == "standard" and row["epochs"] == 2
    assert len(row["epoch_seconds"]) == 2
    assert row["epochs_seconds"] == pytest.approx(sum(row["epoch_seconds"]), abs=0.02)
    phases = (row["setup_seconds"] + row["epochs_seconds"] + row["fit_exit_seconds"]
              + row["final_seconds"])
    assert phases == pytest.approx(row["train_call_seconds"], abs=0.03)
    samples = row["epochs"] * row["train_examples"]
    assert row["epochs_samples_per_s"] == pytest.approx(
        samples / row["epochs_seconds"], rel=0.01)
    assert row["epochs_ratio"] == pytest.approx(
        row["epochs_samples_per_s"] / row["step_samples_per_s"], abs=1e-3)
    assert row["run_samples_per_s"] < row["epochs_samples_per_s"]
    table = (tmp_path / "runs.md").read_text()
    assert "| standard | . |" in table


def test_bad_run_flags_are_refused(tiny_synthetic_dir, tmp_path, run_recipe):
    common = [f"--data_dir={tiny_synthetic_dir}", "--schemes=",
              "--compare_pipeline=false", "--run_epochs_per_generation=1",
              f"--output={tmp_path / 'x.json'}"]
    missing = run_recipe("benchmark_training.py", *common,
                         f"--run_trees={tmp_path / 'nowhere'}")
    assert missing.returncode != 0
    assert "--run_trees must hold a tat_keras package" in missing.stderr
    scheme = run_recipe("benchmark_training.py", *common, "--run_schemes=fast")
    assert scheme.returncode != 0 and "--run_schemes must be among" in scheme.stderr
    scale = run_recipe("benchmark_training.py", *common, "--run_scale=huge")
    assert scale.returncode != 0 and "--run_scale must be one of" in scale.stderr
