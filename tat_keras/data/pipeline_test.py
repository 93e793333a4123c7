"""Tests of the tf.data pipeline on a tiny prepared `gaze_capture`."""

import os

import numpy as np
import pytest
import tensorflow as tf
import tensorflow_datasets as tfds

from tat_keras.data.gaze_capture import layout
from tat_keras.data import pipeline
from tat_keras.data.gaze_capture import gaze_capture_dataset_builder

FACE = [200.0, 100.0, 240.0, 240.0]
EYE = [40.0, 60.0, 60.0, 60.0]


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    """Two train recordings (5 frames each, two dots), one val, one test."""
    root = tmp_path_factory.mktemp("gaze_capture")
    rng = np.random.default_rng(0)
    for number, split in ((1, "train"), (2, "train"), (3, "val"), (4, "test")):
        frames = [rng.integers(0, 255, (480, 640, 3), dtype=np.uint8) for _ in range(5)]
        layout.write_recording(
            str(root / "raw" / f"{number:05d}"),
            frames,
            face_boxes=[FACE] * 5,
            left_eye_boxes=[EYE] * 5,
            right_eye_boxes=[EYE] * 5,
            face_grid=[[8, 5, 10, 10]] * 5,
            gaze_cm=np.stack([np.arange(5) + 10 * number, -np.arange(5.0)], -1),
            dot_num=[0, 0, 0, 1, 1],
            split=split,
            device="iPad Air" if number == 2 else "iPhone 6",
        )
    builder = gaze_capture_dataset_builder.GazeCapture(
        data_dir=str(root / "tfds"), num_workers=1
    )
    builder.download_and_prepare(
        download_config=tfds.download.DownloadConfig(manual_dir=str(root / "raw"))
    )
    return str(root / "tfds")


def test_batches_have_contract_shapes_and_dtypes(data_dir):
    ds = pipeline.make_dataset(
        data_dir, "train", batch_size=4, shuffle=True, augment=True, seed=1
    )
    inputs, gaze_cm = next(iter(ds))
    assert set(inputs) == {"face", "left_eye", "right_eye"}
    for image in inputs.values():
        assert image.shape == (4, 64, 64, 3) and image.dtype == tf.float32
        assert 0.0 <= float(tf.reduce_min(image))
        assert float(tf.reduce_max(image)) <= 255.0
    assert gaze_cm.shape == (4, 2) and gaze_cm.dtype == tf.float32
    sizes = [int(g.shape[0]) for _, g in ds]
    assert sizes == [4, 4, 2]


def test_unshuffled_order_matches_load_labels(data_dir):
    labels = pipeline.load_labels(data_dir, "train")
    assert labels.shape == (10, 2) and labels.dtype == np.float32
    streamed = np.concatenate(
        [g.numpy() for _, g in pipeline.make_dataset(data_dir, "train", batch_size=3)]
    )
    np.testing.assert_array_equal(streamed, labels)
    np.testing.assert_array_equal(
        np.sort(labels[:, 0]), np.r_[10:15, 20:25].astype(np.float32)
    )


def test_metadata_holds_sequence_ids(data_dir):
    ds = pipeline.make_dataset(data_dir, "val", batch_size=8, with_metadata=True)
    inputs, gaze_cm, metadata = next(iter(ds))
    assert set(metadata) == set(pipeline.METADATA_KEYS)
    assert metadata["recording"].numpy().tolist() == [3] * 5
    assert sorted(metadata["dot"].numpy().tolist()) == [0, 0, 0, 1, 1]
    order = np.argsort(metadata["frame"].numpy())
    np.testing.assert_array_equal(gaze_cm.numpy()[order, 0], 30 + np.arange(5))
    assert metadata["device_type"].numpy().tolist() == [0] * 5
    train = pipeline.make_dataset(data_dir, "train", batch_size=10, with_metadata=True)
    _, _, metadata = next(iter(train))
    tablets = metadata["recording"].numpy()[metadata["device_type"].numpy() == 1]
    assert set(tablets.tolist()) == {2}


def test_same_seed_gives_same_batches(data_dir):
    def first_batch(seed):
        ds = pipeline.make_dataset(
            data_dir,
            "train",
            batch_size=10,
            shuffle=True,
            augment=True,
            seed=seed,
            deterministic=True,
        )
        inputs, gaze_cm = next(iter(ds))
        return inputs["face"].numpy(), gaze_cm.numpy()

    face_a, gaze_a = first_batch(7)
    face_b, gaze_b = first_batch(7)
    face_c, _ = first_batch(8)
    np.testing.assert_array_equal(face_a, face_b)
    np.testing.assert_array_equal(gaze_a, gaze_b)
    assert not np.array_equal(face_a, face_c)


def test_augmentation_never_flips():
    # Left half dark, right half bright: a flip would swap them; the brightness
    # and contrast change and a 2 pixel shift keep the left half darker.
    ramp = np.zeros((64, 64, 3), np.float32)
    ramp[:, 32:] = 200.0
    crops = {k: tf.constant(ramp) for k in pipeline.IMAGE_KEYS}
    for seed in range(20):
        out = pipeline.augment_crops(crops, tf.constant([seed, 3]))
        for image in out.values():
            image = image.numpy()
            assert image[:, :28].mean() + 100 < image[:, 36:].mean()


def test_augmentation_is_light(data_dir):
    plain = pipeline.make_dataset(data_dir, "test", batch_size=5)
    (x, y), = list(plain.take(1))
    np.testing.assert_array_equal(
        y.numpy(),
        next(iter(pipeline.make_dataset(data_dir, "test", batch_size=5, augment=True,
                                        seed=3)))[1].numpy())  # Labels unchanged.
    for augment in (pipeline.augment_crops, pipeline.augment_batch):
        for seed in range(5):
            if augment is pipeline.augment_crops:
                out = augment({k: v[0] for k, v in x.items()}, tf.constant([seed, 1]),
                              max_shift=0)
                images = {k: (x[k][0].numpy(), out[k].numpy()) for k in out}
            else:
                out = augment(x, tf.constant([seed, 1]), max_shift=0)
                images = {k: (x[k].numpy(), out[k].numpy()) for k in out}
            for before, after in images.values():
                # Without the shift, each pixel moves by the brightness offset
                # (<= 20) plus 20% of its distance to the crop's channel mean.
                mean = before.mean(axis=(-3, -2), keepdims=True)
                bound = 20.0 + 0.2 * np.abs(before - mean) + 1e-3
                assert np.all(np.abs(after - before) <= bound)


# The batched augmentation draws what the per-example one draws -----------

_SIZE, _SHIFT = 64, 2


def _probe():
    """Crops whose augmentation can be read back: channel 0 rises along x,
    channel 1 along y, channel 2 is flat (values 100..163, never clipped)."""
    ramp = np.arange(_SIZE, dtype=np.float32) + 100.0
    image = np.stack([np.tile(ramp, (_SIZE, 1)), np.tile(ramp[:, None], (1, _SIZE)),
                      np.full((_SIZE, _SIZE), 128.0, np.float32)], axis=-1)
    return image


def _read_back(images):
    """Brightness, contrast and (dy, dx) of augmented probes (B, S, S, 3)."""
    mean_ramp = 100.0 + (_SIZE - 1) / 2.0
    brightness = images[:, _SIZE // 2, _SIZE // 2, 2] - 128.0
    contrast = images[:, 32, 33, 0] - images[:, 32, 32, 0]
    # Interior pixel (32, 32) shows the source pixel (32 + d, 32 + d).
    dx = (images[:, 32, 32, 0] - mean_ramp - brightness) / contrast + mean_ramp - 132.0
    dy = (images[:, 32, 32, 1] - mean_ramp - brightness) / contrast + mean_ramp - 132.0
    return brightness, contrast, np.round(dy).astype(int), np.round(dx).astype(int)


def _ks_statistic(a, b):
    grid = np.sort(np.concatenate([a, b]))
    cdf_a = np.searchsorted(np.sort(a), grid, side="right") / len(a)
    cdf_b = np.searchsorted(np.sort(b), grid, side="right") / len(b)
    return np.max(np.abs(cdf_a - cdf_b))


@pytest.fixture(scope="module")
def augmentation_draws():
    """Parameters read back from 2000 frames augmented each way."""
    count = 2000
    probe = tf.constant(_probe())
    crops = {k: probe for k in pipeline.IMAGE_KEYS}
    per_example = tf.data.Dataset.range(count).map(
        lambda i: pipeline.augment_crops(crops, tf.stack([tf.constant(11, tf.int64), i]),
                                         max_shift=_SHIFT)).batch(500)
    old = {k: np.concatenate([b[k] for b in per_example.as_numpy_iterator()])
           for k in pipeline.IMAGE_KEYS}
    batch = {k: tf.tile(probe[None], [250, 1, 1, 1]) for k in pipeline.IMAGE_KEYS}
    new = {k: [] for k in pipeline.IMAGE_KEYS}
    for step in range(count // 250):
        out = pipeline.augment_batch(batch, tf.constant([5, step], tf.int64),
                                     max_shift=_SHIFT)
        for k in new:
            new[k].append(out[k].numpy())
    new = {k: np.concatenate(v) for k, v in new.items()}
    return ({k: _read_back(v) for k, v in old.items()},
            {k: _read_back(v) for k, v in new.items()})


def test_batched_augmentation_keeps_the_per_example_distribution(augmentation_draws):
    old, new = augmentation_draws
    count = len(old["face"][0])
    # Two-sample Kolmogorov-Smirnov at the 0.1% level: D < 1.95 sqrt(2 / n).
    critical = 1.95 * np.sqrt(2.0 / count)
    for index, name in ((0, "brightness"), (1, "contrast")):
        assert _ks_statistic(old["face"][index], new["face"][index]) < critical, name
    # Both are uniform on their ranges: mean within 4 standard errors.
    for draws in (old, new):
        brightness, contrast = draws["face"][0], draws["face"][1]
        assert brightness.min() >= -20.0 and brightness.max() <= 20.0
        assert contrast.min() >= 0.8 - 1e-4 and contrast.max() <= 1.2 + 1e-4
        assert abs(brightness.mean()) < 4 * (40 / np.sqrt(12)) / np.sqrt(count)
        assert abs(contrast.mean() - 1.0) < 4 * (0.4 / np.sqrt(12)) / np.sqrt(count)
    # Shifts: the five offsets per axis and crop, equally likely in both
    # (chi-square homogeneity, 4 degrees of freedom, 0.1% level: 18.47).
    for key in pipeline.IMAGE_KEYS:
        for index in (2, 3):
            counts = np.array([[np.sum(d[key][index] == v) for v in range(-2, 3)]
                               for d in (old, new)], float)
            assert counts.sum() == 2 * count, (key, counts)
            expected = counts.sum(1, keepdims=True) * counts.sum(0) / counts.sum()
            assert np.sum((counts - expected) ** 2 / expected) < 18.47, (key, counts)


def test_batched_augmentation_shares_lighting_not_shifts(augmentation_draws):
    _, new = augmentation_draws
    face, left, right = (new[k] for k in pipeline.IMAGE_KEYS)
    for index in (0, 1):  # One brightness and one contrast per frame.
        np.testing.assert_allclose(face[index], left[index], atol=1e-3)
        np.testing.assert_allclose(face[index], right[index], atol=1e-3)
    # Shifts drawn per crop: the eyes' shifts agree with the face's only by
    # chance (1 in 5 per axis).
    agreement = np.mean(face[3] == left[3])
    assert 0.15 < agreement < 0.25


# Decoded once, in memory ------------------------------------------------


def test_decode_split_matches_the_stored_order(data_dir):
    decoded = pipeline.decode_split(data_dir, "train")
    np.testing.assert_array_equal(decoded.gaze_cm, pipeline.load_labels(data_dir, "train"))
    streamed = next(iter(pipeline.make_dataset(data_dir, "train", batch_size=10,
                                               with_metadata=True)))
    for key in pipeline.IMAGE_KEYS:
        assert decoded.images[key].dtype == np.uint8
        np.testing.assert_array_equal(decoded.images[key], streamed[0][key].numpy())
    for key in pipeline.METADATA_KEYS:
        np.testing.assert_array_equal(decoded.metadata[key], streamed[2][key].numpy())
    assert len(pipeline.decode_split(data_dir, "train", max_examples=3)) == 3


def _epochs(ds, steps, epochs):
    batches = [b[1].numpy()[:, 0] for b in ds.take(steps * epochs)]
    return [np.concatenate(batches[e * steps:(e + 1) * steps]) for e in range(epochs)]


def test_memory_batches_depend_on_seed_and_epoch_only(data_dir):
    decoded = pipeline.decode_split(data_dir, "train")
    labels = np.sort(decoded.gaze_cm[:, 0])

    def make(first_epoch, seed=2):
        return pipeline.dataset_from_arrays(decoded, batch_size=4, shuffle=True,
                                            augment=True, seed=seed,
                                            first_epoch=first_epoch, epochs=3)

    full = _epochs(make(0), 3, 3)
    for epoch in full:  # Every epoch is a permutation of the split.
        np.testing.assert_array_equal(np.sort(epoch), labels)
    assert not np.array_equal(full[0], full[1])
    resumed = _epochs(make(1), 3, 2)
    np.testing.assert_array_equal(resumed[0], full[1])
    np.testing.assert_array_equal(resumed[1], full[2])
    # The augmented pixels of a resumed epoch are those of the full run too.
    full_faces = [b[0]["face"].numpy() for b in make(0).skip(3).take(3)]
    resumed_faces = [b[0]["face"].numpy() for b in make(1).take(3)]
    for a, b in zip(full_faces, resumed_faces):
        np.testing.assert_array_equal(a, b)
    assert not np.array_equal(_epochs(make(0, seed=3), 3, 1)[0], full[0])
    # Fixed parallelism, no autotuning thread to wait for when fit ends.
    assert make(0).options().autotune.enabled is False


def test_memory_evaluation_batches_are_the_stored_order(data_dir):
    decoded = pipeline.decode_split(data_dir, "test")
    batches = list(pipeline.dataset_from_arrays(decoded, batch_size=2))
    assert [int(b[1].shape[0]) for b in batches] == [2, 2, 1]
    np.testing.assert_array_equal(np.concatenate([b[1].numpy() for b in batches]),
                                  decoded.gaze_cm)
    np.testing.assert_array_equal(batches[0][0]["face"].numpy(),
                                  decoded.images["face"][:2].astype(np.float32))


def test_file_cache_decodes_once_and_reshuffles(data_dir, tmp_path):
    ds = pipeline.make_dataset(data_dir, "train", batch_size=4, shuffle=True,
                               augment=True, seed=1, input_cache="file",
                               cache_dir=str(tmp_path / "cache"))
    first = np.concatenate([g.numpy()[:, 0] for _, g in ds])
    second = np.concatenate([g.numpy()[:, 0] for _, g in ds])
    labels = np.sort(pipeline.load_labels(data_dir, "train")[:, 0])
    np.testing.assert_array_equal(np.sort(first), labels)
    np.testing.assert_array_equal(np.sort(second), labels)
    assert any(name.startswith("size64_train") for name in os.listdir(tmp_path / "cache"))
    with pytest.raises(ValueError, match="needs a cache_dir"):
        pipeline.make_dataset(data_dir, "train", input_cache="file")
    with pytest.raises(ValueError, match="input_cache must be one of"):
        pipeline.make_dataset(data_dir, "train", input_cache="disk")


def test_missing_data_dir_names_the_commands(tmp_path):
    for data_dir in (tmp_path / "nowhere", tmp_path):
        with pytest.raises(FileNotFoundError, match="make_synthetic.py"):
            pipeline.make_dataset(str(data_dir), "train")
        with pytest.raises(FileNotFoundError, match="prepare_gazecapture.py"):
            pipeline.load_labels(str(data_dir), "train")


def test_rejects_unknown_image_size(data_dir):
    with pytest.raises(ValueError, match="image_size=100"):
        pipeline.make_dataset(data_dir, "train", image_size=100)
