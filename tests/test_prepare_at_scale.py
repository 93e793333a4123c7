"""Preparation at scale: the disk-space check, running out of space midway,
the disk estimate against a real preparation, and the lowered shuffle
buffer, which must not change the prepared dataset."""

import os
import subprocess
import sys

import numpy as np
import pytest

from tat_keras.data.gaze_capture import layout

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
RAW = dict(num_train_subjects=3, num_val_subjects=1, num_test_subjects=1,
           dots_per_recording=4, frames_per_dot=2, stare_dots_per_recording=1,
           stare_frames_per_dot=4, seed=5)


@pytest.fixture(scope="module")
def raw_dir(tmp_path_factory):
    from tat_keras.data import synthetic

    raw = str(tmp_path_factory.mktemp("scale") / "raw")
    synthetic.render_dataset(raw, synthetic.SyntheticConfig(**RAW), num_workers=1,
                             progress=False)
    return raw


def _prepare_patched(patch, raw, data_dir):
    """Runs prepare_gazecapture.py in a child process after `patch` (Python
    source run first, in the child)."""
    script = "\n".join([
        "import runpy, sys",
        patch,
        f"sys.argv = ['prepare_gazecapture.py', '--manual_dir={raw}', "
        f"'--data_dir={data_dir}', '--num_workers=1']",
        f"runpy.run_path({os.path.join(REPO, 'recipes', 'prepare_gazecapture.py')!r}, "
        "run_name='__main__')",
    ])
    return subprocess.run([sys.executable, "-c", script], capture_output=True,
                          text=True, timeout=300, cwd=REPO,
                          env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"})


def test_refuses_to_start_without_the_space_it_needs(raw_dir, tmp_path):
    data_dir = str(tmp_path / "tfds")
    result = _prepare_patched(
        "import collections, shutil\n"
        "shutil.disk_usage = lambda path: collections.namedtuple("
        "'usage', 'total used free')(10**12, 10**12 - 1000, 1000)",
        raw_dir, data_dir)
    assert result.returncode == 1, result.stderr[-2000:]
    frames = sum(layout.count_recording_frames(os.path.join(raw_dir, n))
                 for n in layout.list_recordings(raw_dir))
    needed = layout.required_disk_bytes(frames) / 1e9
    assert (f"Not enough disk space. Preparing needs about {needed:.1f} GB of free "
            f"disk space in --data_dir={data_dir}") in result.stderr
    assert "0.0 GB are free" in result.stderr
    assert not os.path.exists(os.path.join(data_dir, "gaze_capture"))


def test_running_out_of_space_midway_says_what_is_needed(raw_dir, tmp_path):
    data_dir = str(tmp_path / "tfds")
    result = _prepare_patched(
        "import errno\n"
        "from tat_keras.data.gaze_capture import gaze_capture_dataset_builder as g\n"
        "def full(self, *args, **kwargs):\n"
        "    raise OSError(errno.ENOSPC, 'No space left on device')\n"
        "g.GazeCapture.download_and_prepare = full",
        raw_dir, data_dir)
    assert result.returncode == 1, result.stderr[-2000:]
    assert "The disk ran out of space while preparing. Preparing needs about" in (
        result.stderr)
    assert "run the same command again" in result.stderr


def test_disk_estimate_covers_a_real_preparation(tiny_synthetic_dir):
    raw = os.path.join(os.path.dirname(tiny_synthetic_dir), "raw")
    frames = sum(layout.count_recording_frames(os.path.join(raw, n))
                 for n in layout.list_recordings(raw))
    prepared = sum(os.path.getsize(os.path.join(root, name))
                   for root, _, names in os.walk(tiny_synthetic_dir) for name in names)
    per_frame = prepared / frames
    # The estimate per frame is an upper bound of what was written, and not
    # far above it (the bench set's 15.8 KB gave the constant).
    assert 0.6 * layout.PREPARED_BYTES_PER_FRAME[64] < per_frame
    assert per_frame <= layout.PREPARED_BYTES_PER_FRAME[64]
    assert layout.required_disk_bytes(frames) == int(
        layout.DISK_MARGIN * frames * layout.PREPARED_BYTES_PER_FRAME[64])
    with pytest.raises(ValueError, match="image_size must be one of"):
        layout.required_disk_bytes(frames, image_size=96)


def test_spilled_shuffle_gives_the_same_dataset(raw_dir, tmp_path, monkeypatch):
    """With a shuffle buffer of one byte every example goes through TFDS's
    bucket files; the prepared examples and their order stay the same."""
    import tensorflow_datasets as tfds

    from tat_keras.data import pipeline
    from tat_keras.data.gaze_capture import gaze_capture_dataset_builder as builder_lib
    from tensorflow_datasets.core import shuffle

    def prepare(name):
        data_dir = str(tmp_path / name)
        builder = builder_lib.GazeCapture(data_dir=data_dir, num_workers=1)
        builder.download_and_prepare(
            download_config=tfds.download.DownloadConfig(manual_dir=raw_dir))
        return {split: pipeline.decode_split(data_dir, split)
                for split in ("train", "validation", "test")}

    spilled_into = []
    add_to_bucket = shuffle.Shuffler._add_to_bucket
    monkeypatch.setattr(shuffle.Shuffler, "_add_to_bucket",
                        lambda self, *a: (spilled_into.append(1),
                                          add_to_bucket(self, *a))[1])
    in_memory = prepare("in_memory")
    assert not spilled_into
    monkeypatch.setattr(builder_lib, "SHUFFLE_MEMORY_BYTES", 1)
    spilled = prepare("spilled")
    assert spilled_into
    assert shuffle.MAX_MEM_BUFFER_SIZE == 1000 << 20  # Restored after preparing.
    for split, decoded in in_memory.items():
        assert len(decoded) == len(spilled[split]) > 0
        np.testing.assert_array_equal(decoded.gaze_cm, spilled[split].gaze_cm)
        for key, images in decoded.images.items():
            np.testing.assert_array_equal(images, spilled[split].images[key])
