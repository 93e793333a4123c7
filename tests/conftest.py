"""Fixtures shared by the end-to-end tests: a tiny prepared synthetic set.

The synthetic twin is rendered once per test session (a few subjects per
split, test subjects staring at their dots) and prepared with the
`gaze_capture` TFDS builder, so training, resume and evaluation tests read
the same data the README's job reads, only less of it.
"""

import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# About 150 train, 40 validation and 60 test frames (valid ones a bit fewer):
# enough for a quarter-width network to learn where the eyes look.
TINY_SYNTHETIC = dict(
    num_train_subjects=6,
    num_val_subjects=2,
    num_test_subjects=2,
    dots_per_recording=8,
    frames_per_dot=3,
    stare_dots_per_recording=3,
    stare_frames_per_dot=10,
    seed=7,
)


# A set to learn from: one phone held upright in even light, many subjects
# with few frames each (about 420 training frames), a narrow spread of head
# poses, no glasses, and sensor noise as the only nuisance between frames. On
# the tiny set above (several devices, six subjects, every nuisance) a short
# training does not yet carry over to new subjects; here a minute of it does.
LEARNABLE_SYNTHETIC = dict(
    num_train_subjects=36,
    num_val_subjects=2,
    num_test_subjects=3,
    dots_per_recording=4,
    frames_per_dot=3,
    stare_dots_per_recording=3,
    stare_frames_per_dot=8,
    seed=7,
    devices=("iPhone 6",),
    orientation_weights=(1.0, 0.0, 0.0, 0.0),
    lighting_weights=(1.0, 0.0, 0.0, 0.0),
    head_pose_std_deg=(8.0, 7.0, 5.0),
    glasses_fraction=0.0,
    nuisances="sensor_noise_only",
)


def _prepare_synthetic(root, config):
    """Renders `config` under `root` and prepares it; returns the data_dir."""
    import tensorflow_datasets as tfds

    from tat_keras.data import synthetic
    from tat_keras.data.gaze_capture import gaze_capture_dataset_builder

    raw = str(root / "raw")
    synthetic.render_dataset(raw, synthetic.SyntheticConfig(**config),
                             num_workers=1, progress=False)
    data_dir = str(root / "tfds")
    builder = gaze_capture_dataset_builder.GazeCapture(data_dir=data_dir, num_workers=1)
    builder.download_and_prepare(
        download_config=tfds.download.DownloadConfig(manual_dir=raw))
    return data_dir


def _write_flagfile(path, **flag_values):
    """Writes `--name=value` lines (booleans as `--name` / `--noname`)."""
    lines = []
    for name, value in flag_values.items():
        if isinstance(value, bool):
            lines.append(f"--{name}" if value else f"--no{name}")
        else:
            lines.append(f"--{name}={value}")
    with open(path, "w") as f:
        f.write("\n".join(lines) + "\n")
    return str(path)


def _run_recipe(script, *args, timeout=600):
    """Runs `recipes/<script>` in a fresh interpreter; returns the result."""
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2", KERAS_BACKEND="tensorflow")
    return subprocess.run(
        [sys.executable, os.path.join(REPO, "recipes", script), *args],
        capture_output=True, text=True, cwd=REPO, env=env, timeout=timeout,
    )


@pytest.fixture(scope="session")
def tiny_synthetic_dir(tmp_path_factory):
    """TFDS data_dir holding a prepared tiny synthetic `gaze_capture/size64`."""
    return _prepare_synthetic(tmp_path_factory.mktemp("tiny_synthetic"),
                              TINY_SYNTHETIC)


@pytest.fixture(scope="session")
def learnable_synthetic_dir(tmp_path_factory):
    """TFDS data_dir of `LEARNABLE_SYNTHETIC`, prepared."""
    return _prepare_synthetic(tmp_path_factory.mktemp("learnable_synthetic"),
                              LEARNABLE_SYNTHETIC)


@pytest.fixture(scope="session")
def tiny_labels(tiny_synthetic_dir):
    """Labels per split of the tiny set: dict split -> (N, 2) float32."""
    from tat_keras.data import pipeline

    return {split: pipeline.load_labels(tiny_synthetic_dir, split)
            for split in ("train", "validation", "test")}


@pytest.fixture(scope="session")
def constant_predictor_error(tiny_labels):
    """Mean Euclidean test error (cm) of always predicting the train mean."""
    mean = np.mean(tiny_labels["train"], axis=0)
    return float(np.mean(np.linalg.norm(tiny_labels["test"] - mean, axis=1)))


def _kill_when(command, ready, *, what, log_path=None, timeout=900, settle=0.0,
               **popen_kwargs):
    """Starts `command`, waits until `ready()` holds (or the process ends),
    `settle` seconds more, then kills it with SIGKILL; returns the ended
    `Popen` (`returncode == -SIGKILL` when the kill found it running).
    Fails with `what` when `timeout` seconds pass first."""
    log = open(log_path, "w") if log_path else subprocess.DEVNULL
    try:
        process = subprocess.Popen(command, stdout=log, stderr=log, **popen_kwargs)
        deadline = time.monotonic() + timeout
        while not ready() and process.poll() is None:
            assert time.monotonic() < deadline, what
            time.sleep(0.05)
        time.sleep(settle)
        process.send_signal(signal.SIGKILL)
        process.wait()
    finally:
        if log_path:
            log.close()
    return process


@pytest.fixture(scope="session")
def kill_when():
    """`kill_when(command, ready, *, what, ...)` -> the killed `Popen`."""
    return _kill_when


@pytest.fixture(scope="session")
def write_flagfile():
    """`write_flagfile(path, **flags)` -> path of a flagfile."""
    return _write_flagfile


@pytest.fixture(scope="session")
def run_recipe():
    """`run_recipe(script, *args)` -> `subprocess.CompletedProcess`."""
    return _run_recipe
