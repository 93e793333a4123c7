"""tf.data input pipeline: prepared `gaze_capture` splits to training batches.

`make_dataset` reads a split prepared by `recipes/prepare_gazecapture.py` and
yields `(inputs, gaze_cm)` batches, `inputs` a dict of `face`, `left_eye` and
`right_eye` float32 pixels in [0, 255] (normalization belongs to the model),
`gaze_cm` float32 (B, 2), the gaze target in cm from the camera (XCam, YCam).

The PNG crops are shuffled while still encoded (a small shuffle buffer),
then decoded and augmented in a parallel map, batched and prefetched.

Augmentation is light and photometric plus a small shift: one brightness
offset and one contrast factor per frame (the same for its three crops, as
they share the frame's lighting), and an independent shift of at most a few
pixels per crop (the detector's box jitter). Never a horizontal flip: it
would swap the eyes and mirror the x label.

Order: with `shuffle=False` the examples come in the stored order whatever
`deterministic` says, so predictions line up with `load_labels` and with the
metadata of `with_metadata=True` (the sequence ids of the paper's
robustness metric, Eq. 10-12: recording and dot).

Example:

>>> ds = make_dataset("data/tfds", "train", batch_size=32, shuffle=True,
...                   augment=True, seed=0)  # doctest: +SKIP
>>> inputs, gaze_cm = next(iter(ds))  # doctest: +SKIP
>>> inputs["face"].shape  # doctest: +SKIP
TensorShape([32, 64, 64, 3])
"""

import os

import numpy as np
import tensorflow as tf
import tensorflow_datasets as tfds

from tat_keras.data.gaze_capture import gaze_capture_dataset_builder

IMAGE_KEYS = ("face", "left_eye", "right_eye")
METADATA_KEYS = (
    "recording",
    "dot",
    "frame",
    "dot_time",
    "device_type",
    "orientation",
    "device",
)
IMAGE_SIZES = (64, 128)
_SPLIT_ALIASES = {"val": "validation"}


def _prepare_commands(data_dir, image_size):
    return (
        "Prepare it with:\n"
        "  python recipes/make_synthetic.py --output_dir=data/synthetic_quick "
        "--preset=quick\n"
        "  python recipes/prepare_gazecapture.py "
        f"--manual_dir=data/synthetic_quick --data_dir={data_dir} "
        f"--image_size={image_size}\n"
        "(or --manual_dir=<GazeCapture folder> for the real data set)."
    )


def load_builder(data_dir, image_size=64):
    """Returns the prepared `gaze_capture/size<image_size>` builder.

    Args:
      data_dir: str. the TFDS data directory given to
        `recipes/prepare_gazecapture.py --data_dir`.
      image_size: int. 64 or 128.

    Raises:
      FileNotFoundError: nothing is prepared there; the message names the
        commands that prepare it.
    """
    if image_size not in IMAGE_SIZES:
        raise ValueError(
            f"image_size must be one of {IMAGE_SIZES}. "
            f"Received: image_size={image_size}"
        )
    data_dir = os.fspath(data_dir) if data_dir is not None else None
    builder = None
    if data_dir and tf.io.gfile.isdir(data_dir):
        builder = gaze_capture_dataset_builder.GazeCapture(
            data_dir=data_dir, config=f"size{image_size}"
        )
    if builder is None or not builder.is_prepared():
        raise FileNotFoundError(
            f"No prepared gaze_capture/size{image_size} dataset in "
            f"data_dir={data_dir}. " + _prepare_commands(data_dir, image_size)
        )
    return builder


def _split_name(split):
    return _SPLIT_ALIASES.get(split, split)


def augment_crops(
    inputs, seed, *, max_shift=2, max_brightness=20.0, contrast_range=(0.8, 1.2)
):
    """Light photometric augmentation and small shifts of one frame's crops.

    One brightness offset and one contrast factor for the three crops, and a
    shift of up to `max_shift` pixels per crop (edges mirrored). No flip.

    Args:
      inputs: dict `face`, `left_eye`, `right_eye` of float32 (S, S, 3) in
        [0, 255].
      seed: int tensor (2,). seed of the stateless random ops.
      max_shift: int. largest shift in pixels, along each axis.
      max_brightness: float. largest brightness offset in pixel units.
      contrast_range: (low, high). contrast factor range, about each crop's
        mean.

    Returns:
      dict of the same keys, float32 in [0, 255].

    Example:

    >>> crops = {k: tf.fill([64, 64, 3], 100.0) for k in IMAGE_KEYS}
    >>> augment_crops(crops, tf.constant([1, 2]))["face"].shape
    TensorShape([64, 64, 3])
    """
    seeds = tf.random.experimental.stateless_split(seed, num=2 + len(IMAGE_KEYS))
    brightness = tf.random.stateless_uniform(
        [], seeds[0], -max_brightness, max_brightness
    )
    contrast = tf.random.stateless_uniform(
        [], seeds[1], contrast_range[0], contrast_range[1]
    )
    outputs = {}
    for key, crop_seed in zip(IMAGE_KEYS, tf.unstack(seeds[2:])):
        image = inputs[key]
        mean = tf.reduce_mean(image, axis=[0, 1], keepdims=True)
        image = (image - mean) * contrast + mean + brightness
        if max_shift > 0:
            padded = tf.pad(
                image,
                [[max_shift, max_shift], [max_shift, max_shift], [0, 0]],
                mode="SYMMETRIC",
            )
            image = tf.image.stateless_random_crop(
                padded, tf.shape(image), seed=crop_seed
            )
        outputs[key] = tf.clip_by_value(image, 0.0, 255.0)
    return outputs


def make_dataset(
    data_dir,
    split,
    *,
    image_size=64,
    batch_size=64,
    shuffle=False,
    augment=False,
    seed=None,
    deterministic=False,
    with_metadata=False,
    repeat=False,
    max_examples=None,
    drop_remainder=False,
    shuffle_buffer_size=4096,
):
    """Batches of `(inputs, gaze_cm)` from a prepared `gaze_capture` split.

    Args:
      data_dir: str. TFDS data directory (`prepare_gazecapture.py --data_dir`).
      split: str. `train`, `validation` (or `val`), `test`, or a TFDS slice
        such as `train[:10%]`.
      image_size: int. 64 or 128, the prepared config.
      batch_size: int.
      shuffle: bool. shuffle the files and the examples.
      augment: bool. brightness, contrast and per-crop shifts (`augment_crops`).
      seed: optional int. seeds the file order, the shuffle and the
        augmentation; with `deterministic=True` two runs give the same batches.
      deterministic: bool. keep the element order fixed in the parallel
        stages (slower); `shuffle=False` always keeps the stored order.
      with_metadata: bool. also yield a dict of `METADATA_KEYS` tensors
        (`recording`, `dot`, `frame`, `dot_time`, `device_type` 0 phone /
        1 tablet, `orientation`, `device`).
      repeat: bool. repeat forever (each pass reshuffled).
      max_examples: optional int. keep only the first examples read.
      drop_remainder: bool. drop the last partial batch.
      shuffle_buffer_size: int. examples held by the shuffle buffer.

    Returns:
      `tf.data.Dataset` of `(inputs, gaze_cm)` or `(inputs, gaze_cm, metadata)`.

    Example:

    >>> ds = make_dataset("data/tfds", "test", with_metadata=True)  # doctest: +SKIP
    >>> inputs, gaze_cm, metadata = next(iter(ds))  # doctest: +SKIP
    """
    if batch_size < 1:
        raise ValueError(
            f"batch_size must be positive. Received: " f"batch_size={batch_size}"
        )
    builder = load_builder(data_dir, image_size)
    deterministic = deterministic or not shuffle
    if seed is None:
        seed = int(np.random.default_rng().integers(2**31 - 1))
    read_config = tfds.ReadConfig(shuffle_seed=seed, try_autocache=False)
    ds = builder.as_dataset(
        split=_split_name(split),
        # A fixed file order keeps `max_examples` the same subset every epoch.
        shuffle_files=shuffle and max_examples is None,
        read_config=read_config,
        decoders={key: tfds.decode.SkipDecoding() for key in IMAGE_KEYS},
    )
    options = tf.data.Options()
    options.deterministic = deterministic
    ds = ds.with_options(options)
    if max_examples is not None:
        ds = ds.take(max_examples)
    if shuffle:
        ds = ds.shuffle(shuffle_buffer_size, seed=seed, reshuffle_each_iteration=True)
    if repeat:
        ds = ds.repeat()
    # Per-example augmentation seeds: (seed, running index).
    ds = tf.data.Dataset.zip(ds, tf.data.Dataset.counter())
    max_shift = max(1, image_size // 32)

    def prepare(example, index):
        inputs = {}
        for key in IMAGE_KEYS:
            image = tf.io.decode_png(example[key], channels=3)
            image.set_shape([image_size, image_size, 3])
            inputs[key] = tf.cast(image, tf.float32)
        if augment:
            inputs = augment_crops(
                inputs,
                tf.stack([tf.constant(seed, tf.int64), index]),
                max_shift=max_shift,
            )
        gaze_cm = tf.cast(example["gaze_cm"], tf.float32)
        if not with_metadata:
            return inputs, gaze_cm
        return inputs, gaze_cm, {key: example[key] for key in METADATA_KEYS}

    ds = ds.map(
        prepare, num_parallel_calls=tf.data.AUTOTUNE, deterministic=deterministic
    )
    ds = ds.batch(
        batch_size,
        drop_remainder=drop_remainder,
        num_parallel_calls=tf.data.AUTOTUNE,
        deterministic=deterministic,
    )
    return ds.prefetch(tf.data.AUTOTUNE)


def load_labels(data_dir, split, *, image_size=64):
    """All `gaze_cm` labels of a split, in stored order, without the images.

    The order is that of `make_dataset(..., shuffle=False)`.

    Args:
      data_dir: str. TFDS data directory.
      split: str. split name or TFDS slice.
      image_size: int. 64 or 128.

    Returns:
      np.ndarray (N, 2) float32.

    Example:

    >>> labels = load_labels("data/tfds", "test")  # doctest: +SKIP
    """
    builder = load_builder(data_dir, image_size)
    ds = builder.as_dataset(
        split=_split_name(split),
        shuffle_files=False,
        decoders=tfds.decode.PartialDecoding({"gaze_cm": True}),
    )
    batches = [
        batch["gaze_cm"]
        for batch in ds.batch(8192).prefetch(tf.data.AUTOTUNE).as_numpy_iterator()
    ]
    if not batches:
        return np.zeros((0, 2), np.float32)
    return np.concatenate(batches).astype(np.float32)
