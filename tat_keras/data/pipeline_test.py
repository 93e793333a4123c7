"""Tests of the tf.data pipeline on a tiny prepared `gaze_capture`."""

import numpy as np
import pytest
import tensorflow as tf
import tensorflow_datasets as tfds

from tat_keras.data import gazecapture_io
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
        gazecapture_io.write_recording(
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
    augmented = pipeline.make_dataset(
        data_dir, "test", batch_size=5, augment=True, seed=3
    )
    (x, y), (xa, ya) = next(iter(plain)), next(iter(augmented))
    np.testing.assert_array_equal(y.numpy(), ya.numpy())  # Labels unchanged.
    difference = np.abs(x["face"].numpy() - xa["face"].numpy()).mean()
    assert 0.0 < difference < 80.0


def test_missing_data_dir_names_the_commands(tmp_path):
    for data_dir in (tmp_path / "nowhere", tmp_path):
        with pytest.raises(FileNotFoundError, match="make_synthetic.py"):
            pipeline.make_dataset(str(data_dir), "train")
        with pytest.raises(FileNotFoundError, match="prepare_gazecapture.py"):
            pipeline.load_labels(str(data_dir), "train")


def test_rejects_unknown_image_size(data_dir):
    with pytest.raises(ValueError, match="image_size=100"):
        pipeline.make_dataset(data_dir, "train", image_size=100)
