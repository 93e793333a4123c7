import os
import subprocess
import sys

import numpy as np
import pytest

from tat_keras.data import arrays

NAMES = arrays.INPUT_NAMES
REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _export(folder, count=7, size=8, seed=0):
    rng = np.random.default_rng(seed)
    images = {k: rng.integers(0, 256, (count, size, size, 3), dtype=np.uint8)
              for k in NAMES}
    gaze = rng.normal(size=(count, 2)).astype(np.float32)
    metadata = {"recording": np.arange(count) // 2, "dot": np.arange(count),
                "device": np.array([b"iPhone 6"] * count, dtype=object)}
    arrays.write_split(str(folder), "train", images, gaze, metadata)
    arrays.write_info(str(folder), image_size=size, source={"data_dir": "somewhere"})
    return images, gaze, metadata


def test_split_round_trips_memory_mapped(tmp_path):
    images, gaze, metadata = _export(tmp_path)
    assert arrays.read_info(str(tmp_path))["splits"] == {"train": 7}
    split = arrays.ArraySplit.load(str(tmp_path), "train")
    assert isinstance(split.images["face"], np.memmap) and len(split) == 7
    for key in NAMES:
        np.testing.assert_array_equal(split.images[key], images[key])
    batches = list(split.batches(3))
    assert [len(b[1]) for b in batches] == [3, 3, 1]
    np.testing.assert_array_equal(np.concatenate([b[1] for b in batches]), gaze)
    np.testing.assert_array_equal(np.concatenate([b[2]["dot"] for b in batches]),
                                  metadata["dot"])
    assert split.metadata["device"].tolist() == ["iPhone 6"] * 7
    assert batches[0][0]["left_eye"].dtype == np.float32
    first = arrays.ArraySplit.load(str(tmp_path), "train", max_examples=2, mmap=False)
    np.testing.assert_array_equal(first.gaze_cm, gaze[:2])


def test_missing_or_wrong_inputs_say_what_to_do(tmp_path):
    with pytest.raises(FileNotFoundError, match="recipes/export_arrays.py"):
        arrays.ArraySplit.load(str(tmp_path), "train")
    _export(tmp_path)
    with pytest.raises(ValueError, match="no 'test'"):
        arrays.ArraySplit.load(str(tmp_path), "test")
    with pytest.raises(ValueError, match="every array 2 rows"):
        arrays.write_split(str(tmp_path), "test",
                           {k: np.zeros((3, 8, 8, 3), np.uint8) for k in NAMES},
                           np.zeros((2, 2)), {})
    with pytest.raises(ValueError, match="split must be one of"):
        arrays.write_split(str(tmp_path), "dev", {}, np.zeros((0, 2)), {})


def _padded_crops(image, shift):
    """Every crop of the mirrored padding an `max_shift` shift can give."""
    padded = np.pad(image, ((shift, shift), (shift, shift), (0, 0)), mode="symmetric")
    size = image.shape[0]
    return [padded[r:r + size, c:c + size] for r in range(2 * shift + 1)
            for c in range(2 * shift + 1)]


def test_shift_is_a_crop_of_the_mirrored_padding_and_takes_every_offset():
    rng = np.random.default_rng(1)
    crops = {k: rng.uniform(0, 255, (64, 6, 6, 3)).astype(np.float32) for k in NAMES}
    shifted = arrays.augment_batch(crops, np.random.default_rng(2), max_shift=1,
                                   max_brightness=0.0, contrast_range=(1.0, 1.0))
    offsets = set()
    for key in NAMES:
        for image, out in zip(crops[key], shifted[key]):
            matches = [i for i, c in enumerate(_padded_crops(image, 1))
                       if np.allclose(c, out, atol=1e-4)]
            assert matches
            offsets.add(matches[0])
    assert offsets == set(range(9))


def test_brightness_and_contrast_are_one_affine_map_per_frame():
    """out - mean = contrast * (in - mean) + brightness, the same contrast and
    brightness for a frame's three crops, within their ranges."""
    rng = np.random.default_rng(3)
    crops = {k: rng.uniform(60, 190, (32, 5, 5, 3)).astype(np.float32) for k in NAMES}
    out = arrays.augment_batch(crops, np.random.default_rng(4), max_shift=0)
    fitted = {}
    for key in NAMES:
        centered = crops[key] - crops[key].mean(axis=(1, 2), keepdims=True)
        moved = out[key] - crops[key].mean(axis=(1, 2), keepdims=True)
        x, y = centered.reshape(32, -1), moved.reshape(32, -1)
        contrast = (x * (y - y.mean(1, keepdims=True))).sum(1) / (x * x).sum(1)
        brightness = y.mean(1)
        np.testing.assert_allclose(y, contrast[:, None] * x + brightness[:, None],
                                   atol=1e-3)
        fitted[key] = (contrast, brightness)
    for key in NAMES[1:]:
        np.testing.assert_allclose(fitted[key], fitted[NAMES[0]], atol=1e-4)
    contrast, brightness = fitted[NAMES[0]]
    assert contrast.min() >= 0.8 and contrast.max() <= 1.2
    assert brightness.min() >= -20 and brightness.max() <= 20
    assert brightness.std() > 5  # U(-20, 20) has a standard deviation of 11.5.


def test_epochs_visit_every_example_once_in_an_order_of_seed_and_epoch(tmp_path):
    images, gaze, _ = _export(tmp_path, count=10)
    split = arrays.ArraySplit.load(str(tmp_path), "train")
    batches = arrays.EpochBatches(split, batch_size=4, seed=5, augment=False)
    assert len(batches) == 3

    def epoch(e, source=batches):
        parts = [source.batch(e, i) for i in range(len(source))]
        return np.concatenate([p[1] for p in parts]), parts

    labels, parts = epoch(0)
    assert sorted(map(tuple, labels)) == sorted(map(tuple, gaze))
    rows = [int(np.flatnonzero((gaze == row).all(1))[0]) for row in labels]
    np.testing.assert_array_equal(parts[0][0]["face"], images["face"][rows[:4]])
    again = arrays.EpochBatches(split, batch_size=4, seed=5, augment=False)
    np.testing.assert_array_equal(epoch(0, again)[0], labels)
    assert not np.array_equal(epoch(1)[0], labels)
    augmented = arrays.EpochBatches(split, batch_size=4, seed=5)
    first, second = augmented.batch(2, 1), augmented.batch(2, 1)
    np.testing.assert_array_equal(first[0]["face"], second[0]["face"])
    with pytest.raises(IndexError, match=r"\[0, 3\)"):
        batches.batch(0, 3)
    with pytest.raises(ValueError, match="batch_size must be an integer"):
        arrays.EpochBatches(split, batch_size=0, seed=0)


def test_importing_loads_neither_tensorflow_nor_keras():
    code = ("import sys, tat_keras.data.arrays; "
            "print([m for m in ('tensorflow', 'keras', 'jax') if m in sys.modules])")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True,
                            text=True, cwd=REPO)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"
