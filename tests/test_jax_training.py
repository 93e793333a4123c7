"""A run on Keras's JAX backend, end to end: the tf.data input, a kill and a
resume, and the int8 TFLite export of what it trained (under TensorFlow).

A tiny TAT + DwO run (K=2 mini-generations of 2 epochs after one warm-up
epoch: epochs 0-2, 3-4) trains through `recipes/train_tat.py --backend=jax`
from the prepared set. A second attempt of the same command is killed once
the checkpoint of epoch 3 is on disk and rerun: with `--deterministic` its
resumed epochs repeat the uninterrupted run's (the checkpoint holds weights,
moments, teachers and the random generators' states, as on TensorFlow).
Then `tflite/export.py --mode=int8` reloads the JAX-trained `model.keras`
under TensorFlow and `tflite/evaluate.py` measures the file.
"""

import json
import os
import pathlib
import subprocess
import sys

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _read_json(folder, name=None):
    path = pathlib.Path(folder) / (name or "")
    return json.loads(path.read_text())


def _checkpointed_epoch(model_dir):
    """The epoch of the run's newest complete checkpoint, or -1."""
    from tat_keras.training import checkpoint

    try:
        state = checkpoint.latest(os.path.join(model_dir, "checkpoints"))
    except (FileNotFoundError, json.JSONDecodeError):
        return -1
    return -1 if state is None else state["epoch"]


def _command(script, *args):
    return [sys.executable, os.path.join(REPO, *script.split("/")), *args]


def _env(backend):
    return {**os.environ, "KERAS_BACKEND": backend, "TF_CPP_MIN_LOG_LEVEL": "2"}


@pytest.mark.slow
def test_jax_run_resumes_and_exports_to_int8(tmp_path, tiny_synthetic_dir,
                                              write_flagfile, kill_when):
    flagfile = write_flagfile(
        tmp_path / "jax.flags", data_dir=tiny_synthetic_dir, scheme="tat",
        width_multiplier=0.125, x_bins=16, y_bins=16, batch_size=8,
        learning_rate=0.003, mini_generations=2, epochs_per_generation=2,
        warmup_epochs=1, dwo=True, deterministic=True, seed=3, backend="jax")
    train = _command("recipes/train_tat.py", f"--flagfile={flagfile}")
    reference_dir = str(tmp_path / "uninterrupted")
    reference = subprocess.run([*train, f"--model_dir={reference_dir}"], cwd=REPO,
                               env=_env("tensorflow"), capture_output=True, text=True,
                               timeout=900)
    assert reference.returncode == 0, reference.stderr[-3000:]
    metrics = _read_json(reference_dir, "metrics.json")
    assert (metrics["backend"], metrics["epochs"]) == ("jax", 5)

    model_dir = str(tmp_path / "killed")
    kill_when([*train, f"--model_dir={model_dir}"],
              lambda: _checkpointed_epoch(model_dir) >= 3,
              what="no checkpoint of epoch 3 in time",
              log_path=tmp_path / "first_attempt.log", cwd=REPO, env=_env("jax"))
    killed_at = _checkpointed_epoch(model_dir)
    assert killed_at == 3, (tmp_path / "first_attempt.log").read_text()[-3000:]
    resumed = subprocess.run([*train, f"--model_dir={model_dir}"], cwd=REPO,
                             env=_env("jax"), capture_output=True, text=True, timeout=900)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert "after epoch 4" in resumed.stdout
    history = _read_json(model_dir, "history.json")
    reference_history = _read_json(reference_dir, "history.json")
    assert [h["epoch"] for h in history] == list(range(5))
    for got, want in zip(history, reference_history):
        for key in ("loss", "hard_loss", "mix_loss", "teacher_loss"):
            assert got[key] == pytest.approx(want[key], rel=1e-5), (key, got, want)
    got_generations = _read_json(model_dir, "generations.json")["generations"]
    want_generations = _read_json(reference_dir, "generations.json")["generations"]
    assert [g["teachers"] for g in got_generations] == [
        g["teachers"] for g in want_generations]

    # Export reloads the JAX-trained model under TensorFlow: the float32 file
    # predicts what the run evaluated, the int8 file evaluates.
    results = {}
    for mode in ("float32", "int8"):
        tflite = str(tmp_path / f"gaze_{mode}.tflite")
        exported = subprocess.run(
            _command("tflite/export.py", f"--model_dir={reference_dir}",
                     f"--mode={mode}", f"--output={tflite}",
                     "--num_calibration_samples=16"),
            cwd=REPO, env=_env("tensorflow"), capture_output=True, text=True, timeout=900)
        assert exported.returncode == 0, exported.stderr[-3000:]
        output = str(tmp_path / f"{mode}.json")
        evaluated = subprocess.run(
            _command("tflite/evaluate.py", f"--tflite={tflite}",
                     f"--data_dir={tiny_synthetic_dir}", f"--output={output}"),
            cwd=REPO, env=_env("tensorflow"), capture_output=True, text=True, timeout=900)
        assert evaluated.returncode == 0, evaluated.stderr[-3000:]
        results[mode] = _read_json(output)
        assert results[mode]["test_examples"] == metrics["test_examples"]
    assert results["float32"]["test_error_cm"] == pytest.approx(
        metrics["test_error_cm"], abs=1e-3)
    assert 0 < results["int8"]["test_error_cm"] < float("inf")
