"""tf.data input pipeline: prepared `gaze_capture` splits to training batches.

`make_dataset` reads a split prepared by `recipes/prepare_gazecapture.py` and
yields `(inputs, gaze_cm)` batches, `inputs` a dict of `face`, `left_eye` and
`right_eye` float32 pixels in [0, 255] (normalization belongs to the model),
`gaze_cm` float32 (B, 2), the gaze target in cm from the camera (XCam, YCam).

Three ways to feed training (`input_cache`), one augmentation distribution:

- `memory` (`decode_split` + `dataset_from_arrays`): every crop of a split
  is decoded once into NumPy `uint8` arrays; each epoch gathers batches of a
  permutation seeded by `(seed, epoch)` and augments whole batches
  (`augment_batch`). Order and augmentation are a function of the seed and
  the epoch alone, so a resumed run sees what the uninterrupted one saw.
  For every synthetic preset (a few hundred MB at most).
- `file`: crops decoded in parallel from the shards once into a
  `tf.data` cache file, then a shuffle buffer and batched augmentation; for
  data larger than memory (GazeCapture: about 55 GB of decoded crops).
- `none`: the PNG crops are shuffled while still encoded (a small shuffle
  buffer), then decoded and augmented per example (`augment_crops`) in a
  parallel map every epoch. The reference the other two are checked and
  timed against.

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

from tat_keras.crops import INPUT_NAMES
from tat_keras.data.gaze_capture import gaze_capture_dataset_builder

IMAGE_KEYS = INPUT_NAMES  # The crops of one frame, as the model names its inputs.
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
INPUT_CACHES = ("memory", "file", "none")
_SPLIT_ALIASES = {"val": "validation"}
# Seeds of batch augmentation: (seed, epoch * _EPOCH_STRIDE + batch index).
_EPOCH_STRIDE = 1 << 32


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


def augment_batch(
    inputs, seed, *, max_shift=2, max_brightness=20.0, contrast_range=(0.8, 1.2)
):
    """`augment_crops` on a whole batch at once: the same distribution.

    Per frame: one brightness offset and one contrast factor shared by its
    three crops; per crop: a shift of up to `max_shift` pixels along each
    axis (edges mirrored), every offset in `[-max_shift, max_shift]` equally
    likely. Vectorized over the batch (a gather per axis for the shifts).

    Args:
      inputs: dict `face`, `left_eye`, `right_eye` of float32 (B, S, S, 3)
        in [0, 255].
      seed: int tensor (2,). seed of the stateless random ops.
      max_shift: int. largest shift in pixels, along each axis.
      max_brightness: float. largest brightness offset in pixel units.
      contrast_range: (low, high). contrast factor range, about each crop's
        per-channel mean.

    Returns:
      dict of the same keys, float32 in [0, 255].

    Example:

    >>> crops = {k: tf.fill([4, 64, 64, 3], 100.0) for k in IMAGE_KEYS}
    >>> augment_batch(crops, tf.constant([1, 2]))["face"].shape
    TensorShape([4, 64, 64, 3])
    """
    batch = tf.shape(inputs[IMAGE_KEYS[0]])[0]
    seeds = tf.random.experimental.stateless_split(seed, num=2 + len(IMAGE_KEYS))
    brightness = tf.random.stateless_uniform(
        [batch, 1, 1, 1], seeds[0], -max_brightness, max_brightness
    )
    contrast = tf.random.stateless_uniform(
        [batch, 1, 1, 1], seeds[1], contrast_range[0], contrast_range[1]
    )
    outputs = {}
    for key, crop_seed in zip(IMAGE_KEYS, tf.unstack(seeds[2:])):
        image = inputs[key]
        mean = tf.reduce_mean(image, axis=[1, 2], keepdims=True)
        image = (image - mean) * contrast + mean + brightness
        if max_shift > 0:
            size = image.shape[1]
            padded = tf.pad(
                image,
                [[0, 0], [max_shift, max_shift], [max_shift, max_shift], [0, 0]],
                mode="SYMMETRIC",
            )
            # Top-left corner of each crop in the padded image: 0 .. 2m.
            corners = tf.random.stateless_uniform(
                [batch, 2], crop_seed, 0, 2 * max_shift + 1, dtype=tf.int32
            )
            span = tf.range(size)[None, :]
            rows = corners[:, :1] + span
            cols = corners[:, 1:] + span
            image = tf.gather(padded, rows, axis=1, batch_dims=1)
            image = tf.gather(image, cols, axis=2, batch_dims=1)
        outputs[key] = tf.clip_by_value(image, 0.0, 255.0)
    return outputs


class DecodedSplit:
    """A split decoded once: `uint8` crops, labels and metadata in memory.

    Attributes:
      images: dict `face`, `left_eye`, `right_eye` of uint8 (N, S, S, 3).
      gaze_cm: float32 (N, 2).
      metadata: dict of `METADATA_KEYS` arrays (N,).
    """

    def __init__(self, images, gaze_cm, metadata):
        self.images = images
        self.gaze_cm = gaze_cm
        self.metadata = metadata

    def __len__(self):
        return len(self.gaze_cm)

    @property
    def nbytes(self):
        return sum(v.nbytes for v in self.images.values())

    def batches(self, batch_size):
        """Float32 input dicts and labels of consecutive batches, NumPy."""
        for start in range(0, len(self), batch_size):
            stop = start + batch_size
            yield ({k: v[start:stop].astype(np.float32) for k, v in self.images.items()},
                   self.gaze_cm[start:stop],
                   {k: v[start:stop] for k, v in self.metadata.items()})


def _read(builder, split, *, shuffle_files=False, seed=0):
    read_config = tfds.ReadConfig(shuffle_seed=seed, try_autocache=False)
    return builder.as_dataset(
        split=_split_name(split),
        shuffle_files=shuffle_files,
        read_config=read_config,
        decoders={key: tfds.decode.SkipDecoding() for key in IMAGE_KEYS},
    )


def _decode_example(example, image_size):
    """uint8 crops, float32 label and the metadata of one stored example."""
    images = {}
    for key in IMAGE_KEYS:
        image = tf.io.decode_png(example[key], channels=3)
        image.set_shape([image_size, image_size, 3])
        images[key] = image
    metadata = {key: example[key] for key in METADATA_KEYS}
    return images, tf.cast(example["gaze_cm"], tf.float32), metadata


def decode_split(data_dir, split, *, image_size=64, max_examples=None):
    """Decodes a whole split once, in stored order (parallel PNG decoding).

    Args:
      data_dir: str. TFDS data directory.
      split: str. split name or TFDS slice.
      image_size: int. 64 or 128.
      max_examples: optional int. only the first examples.

    Returns:
      `DecodedSplit`, in the order of `load_labels` and of
      `make_dataset(..., shuffle=False)`.

    Example:

    >>> test = decode_split("data/tfds", "test")  # doctest: +SKIP
    >>> test.images["face"].dtype  # doctest: +SKIP
    dtype('uint8')
    """
    builder = load_builder(data_dir, image_size)
    ds = _read(builder, split)
    if max_examples is not None:
        ds = ds.take(max_examples)
    ds = ds.map(lambda e: _decode_example(e, image_size),
                num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
    parts = list(ds.batch(1024).prefetch(2).as_numpy_iterator())
    if not parts:
        empty = np.zeros((0, image_size, image_size, 3), np.uint8)
        return DecodedSplit({k: empty for k in IMAGE_KEYS},
                            np.zeros((0, 2), np.float32),
                            {k: np.zeros((0,), np.int64) for k in METADATA_KEYS})
    images = {k: np.concatenate([p[0][k] for p in parts]) for k in IMAGE_KEYS}
    gaze_cm = np.concatenate([p[1] for p in parts])
    metadata = {k: np.concatenate([p[2][k] for p in parts]) for k in METADATA_KEYS}
    return DecodedSplit(images, gaze_cm, metadata)


def _as_float_inputs(images):
    return {key: tf.cast(value, tf.float32) for key, value in images.items()}


def dataset_from_arrays(
    decoded,
    *,
    batch_size=64,
    shuffle=False,
    augment=False,
    seed=0,
    first_epoch=0,
    epochs=None,
    drop_remainder=False,
    max_shift=None,
):
    """Batches of `(inputs, gaze_cm)` from a `DecodedSplit` held in memory.

    Without `shuffle`, one pass in stored order (for evaluation). With it,
    the passes of epochs `first_epoch` .. `epochs - 1` one after the other
    (forever when `epochs` is None), epoch `e` in the order of a permutation
    seeded by `(seed, e)`, batch `b` of it augmented with the seed
    `(seed, e * 2**32 + b)`: train with `steps_per_epoch` and a run resumed
    at epoch `e` sees the batches an uninterrupted run saw there.

    Args:
      decoded: `DecodedSplit`.
      batch_size: int.
      shuffle: bool. a new permutation every epoch.
      augment: bool. `augment_batch` on every batch.
      seed: int. seeds the permutations and the augmentation.
      first_epoch: int. the epoch of the first pass (`shuffle` only).
      epochs: optional int. the epoch after the last pass (`shuffle` only).
      drop_remainder: bool. drop the last partial batch of each pass.
      max_shift: optional int. largest shift of the augmentation; default
        `image_size // 32` (at least 1), as in `make_dataset`.

    Returns:
      `tf.data.Dataset` of `(inputs, gaze_cm)`.

    Example:

    >>> ds = dataset_from_arrays(decode_split("data/tfds", "train"),  # doctest: +SKIP
    ...                          batch_size=32, shuffle=True, augment=True, seed=0)
    """
    count = len(decoded)
    if count == 0:
        raise ValueError("The decoded split holds no examples.")
    if batch_size < 1:
        raise ValueError(f"batch_size must be positive. Received: batch_size={batch_size}")
    image_size = decoded.images[IMAGE_KEYS[0]].shape[1]
    if max_shift is None:
        max_shift = max(1, image_size // 32)
    images = {key: tf.constant(value) for key, value in decoded.images.items()}
    labels = tf.constant(decoded.gaze_cm, tf.float32)
    seed = int(seed)

    if not shuffle:
        order = tf.data.Dataset.range(count).batch(batch_size, drop_remainder=drop_remainder)
        ds = order.map(lambda idx: (0, 0, idx))
    else:
        last = tf.int64.max if epochs is None else int(epochs)

        def epoch_batches(epoch):
            permutation = tf.random.experimental.stateless_shuffle(
                tf.range(count, dtype=tf.int64), seed=tf.stack([seed, epoch]))
            batches = tf.data.Dataset.from_tensor_slices(permutation).batch(
                batch_size, drop_remainder=drop_remainder)
            return batches.enumerate().map(lambda step, idx: (epoch, step, idx))

        ds = tf.data.Dataset.range(int(first_epoch), last).flat_map(epoch_batches)

    def gather(epoch, step, idx):
        inputs = _as_float_inputs({k: tf.gather(v, idx) for k, v in images.items()})
        if augment:
            inputs = augment_batch(
                inputs,
                tf.stack([tf.constant(seed, tf.int64),
                          tf.cast(epoch, tf.int64) * _EPOCH_STRIDE + step]),
                max_shift=max_shift,
            )
        return inputs, tf.gather(labels, idx)

    ds = ds.map(gather, num_parallel_calls=ARRAY_MAP_CALLS, deterministic=True)
    return ds.prefetch(ARRAY_PREFETCH).with_options(_without_autotune())


# The in-memory batches run without tf.data's autotuning: with it, deleting
# the iterator at the end of `fit` waited for the autotuning thread, 38.5 s
# after a 12-epoch TAT run (docs/training.md, "Whole runs"). A
# batch is one gather and `augment_batch`; parallel calls as many as the
# cores (at most 8) and two batches ready ahead keep the step fed.
ARRAY_MAP_CALLS = max(1, min(8, os.cpu_count() or 1))
ARRAY_PREFETCH = 2


def _without_autotune():
    options = tf.data.Options()
    options.autotune.enabled = False
    return options


def _file_cached_dataset(builder, split, *, image_size, batch_size, shuffle, augment,
                         seed, max_examples, drop_remainder, shuffle_buffer_size,
                         cache_dir, deterministic, repeat):
    """Decoded once into a cache file under `cache_dir`, augmented per batch."""
    if not cache_dir:
        raise ValueError("input_cache='file' needs a cache_dir. Received: cache_dir=None")
    tf.io.gfile.makedirs(cache_dir)
    name = f"{builder.builder_config.name}_{_split_name(split)}_{max_examples or 'all'}"
    name = "".join(c if c.isalnum() or c in "_-" else "_" for c in name)
    ds = _read(builder, split)
    if max_examples is not None:
        ds = ds.take(max_examples)
    ds = ds.map(lambda e: _decode_example(e, image_size)[:2],
                num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
    ds = ds.cache(os.path.join(cache_dir, name))
    if shuffle:
        ds = ds.shuffle(shuffle_buffer_size, seed=seed, reshuffle_each_iteration=True)
    if repeat:
        ds = ds.repeat()
    ds = ds.batch(batch_size, drop_remainder=drop_remainder)
    ds = tf.data.Dataset.zip(ds, tf.data.Dataset.counter())
    max_shift = max(1, image_size // 32)

    def prepare(example, index):
        images, gaze_cm = example
        inputs = _as_float_inputs(images)
        if augment:
            inputs = augment_batch(
                inputs, tf.stack([tf.constant(seed, tf.int64), index]),
                max_shift=max_shift)
        return inputs, gaze_cm

    ds = ds.map(prepare, num_parallel_calls=tf.data.AUTOTUNE,
                deterministic=deterministic or not shuffle)
    return ds.prefetch(tf.data.AUTOTUNE)


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
    input_cache="none",
    cache_dir=None,
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
      input_cache: str. `none` (decode every pass, augment per example),
        `file` (decode once into `cache_dir`, augment per batch) or
        `memory` (`decode_split` then `dataset_from_arrays`; one pass,
        or forever with `repeat`).
      cache_dir: str. folder of the `file` cache.

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
    if input_cache not in INPUT_CACHES:
        raise ValueError(f"input_cache must be one of {INPUT_CACHES}. "
                         f"Received: input_cache={input_cache!r}")
    builder = load_builder(data_dir, image_size)
    deterministic = deterministic or not shuffle
    if seed is None:
        seed = int(np.random.default_rng().integers(2**31 - 1))
    if input_cache != "none" and with_metadata:
        raise ValueError("with_metadata needs input_cache='none' (or decode_split). "
                         f"Received: input_cache={input_cache!r}")
    if input_cache == "memory":
        decoded = decode_split(data_dir, split, image_size=image_size,
                               max_examples=max_examples)
        ds = dataset_from_arrays(decoded, batch_size=batch_size, shuffle=shuffle,
                                 augment=augment, seed=seed,
                                 drop_remainder=drop_remainder,
                                 epochs=None if repeat else 1)
        return ds.repeat() if repeat and not shuffle else ds
    if input_cache == "file":
        return _file_cached_dataset(
            builder, split, image_size=image_size, batch_size=batch_size,
            shuffle=shuffle, augment=augment, seed=seed, max_examples=max_examples,
            drop_remainder=drop_remainder, shuffle_buffer_size=shuffle_buffer_size,
            cache_dir=cache_dir, deterministic=deterministic, repeat=repeat)
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
