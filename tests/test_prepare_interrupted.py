"""Preparation killed midway, then run again: a complete and correct dataset.

`recipes/prepare_gazecapture.py` is killed (SIGKILL) while TFDS writes its
incomplete copy; the same command run again must finish and give the
dataset a clean preparation gives: the same splits, sizes and labels.
"""

import glob
import os
import signal
import subprocess
import sys

import numpy as np
import pytest

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
RAW = dict(num_train_subjects=8, num_val_subjects=2, num_test_subjects=2,
           dots_per_recording=12, frames_per_dot=3, stare_dots_per_recording=2,
           stare_frames_per_dot=10, seed=11)


def _prepare_command(raw, data_dir):
    return [sys.executable, os.path.join(REPO, "recipes", "prepare_gazecapture.py"),
            f"--manual_dir={raw}", f"--data_dir={data_dir}", "--num_workers=1"]


def _env():
    return {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}


def _final_info(data_dir):
    return glob.glob(os.path.join(data_dir, "gaze_capture", "size64", "*",
                                  "dataset_info.json"))


def _incomplete(data_dir):
    return glob.glob(os.path.join(data_dir, "gaze_capture", "size64", "*incomplete*"))


@pytest.mark.slow
def test_a_killed_preparation_completes_when_run_again(tmp_path, kill_when):
    from tat_keras.data import pipeline
    from tat_keras.data import synthetic
    from tat_keras.training import builders

    raw = str(tmp_path / "raw")
    synthetic.render_dataset(raw, synthetic.SyntheticConfig(**RAW), num_workers=1,
                             progress=False)
    killed = str(tmp_path / "killed")
    # Half a second into the writing of the shards.
    process = kill_when(_prepare_command(raw, killed), lambda: _incomplete(killed),
                        what="preparation never started writing", timeout=300,
                        settle=0.5, env=_env())
    assert process.returncode == -signal.SIGKILL, (
        "preparation finished before it could be killed")
    assert not _final_info(killed) and _incomplete(killed)

    again = subprocess.run(_prepare_command(raw, killed), env=_env(),
                           capture_output=True, text=True, timeout=600)
    assert again.returncode == 0, again.stderr[-3000:]
    clean = str(tmp_path / "clean")
    subprocess.run(_prepare_command(raw, clean), env=_env(), check=True,
                   capture_output=True, timeout=600)

    sizes = builders.split_sizes(killed)
    assert sizes == builders.split_sizes(clean) and sizes["train"] > 0
    for split in ("train", "validation", "test"):
        np.testing.assert_array_equal(pipeline.load_labels(killed, split),
                                      pipeline.load_labels(clean, split))
