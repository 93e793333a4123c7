"""Prepared splits as NumPy arrays: training batches without TensorFlow.

`recipes/export_arrays.py` decodes the splits of a prepared `gaze_capture`
set once (with TensorFlow, where the set was prepared) and writes them as
`.npy` files. On a machine with NumPy and Keras but no TensorFlow (Keras's
JAX backend on a GPU), `ArraySplit.load` maps them back into memory and
`EpochBatches` cuts them into training batches the way
`pipeline.dataset_from_arrays` does: epoch `e` in the order of a permutation
seeded by `(seed, e)`, every batch augmented with the distribution of
`pipeline.augment_batch` (one brightness offset and one contrast factor per
frame, a shift of up to `max_shift` pixels per crop, edges mirrored), drawn
from NumPy's generator seeded by `(seed, e, batch)`. The draws are NumPy's,
not TensorFlow's: the same distribution, not the same numbers.

Layout of an exported folder (`write_split`, `write_info`):

    arrays.json                  {"image_size": 64, "splits": {"train": N, ...}, ...}
    train/face.npy               uint8 (N, S, S, 3); also left_eye.npy, right_eye.npy
    train/gaze_cm.npy            float32 (N, 2)
    train/metadata/<key>.npy     (N,) per metadata key (recording, dot, ...)
    validation/ ...  test/ ...

NumPy only: importing this module loads neither TensorFlow nor Keras.

Example:

>>> import tempfile
>>> folder = tempfile.mkdtemp()
>>> images = {k: np.zeros((3, 8, 8, 3), np.uint8) for k in INPUT_NAMES}
>>> write_split(folder, "train", images, np.zeros((3, 2), np.float32),
...             {"recording": np.arange(3)})
>>> write_info(folder, image_size=8)
>>> batches = EpochBatches(ArraySplit.load(folder, "train"), batch_size=2, seed=0)
>>> inputs, gaze_cm = batches.batch(epoch=0, index=1)
>>> len(batches), inputs["face"].shape, inputs["face"].dtype
(2, (1, 8, 8, 3), dtype('float32'))
"""

import json
import os

import numpy as np

from tat_keras.crops import INPUT_NAMES

INFO_FILE = "arrays.json"
SPLITS = ("train", "validation", "test")


def is_array_folder(path):
    """Whether `path` holds exported arrays (an `arrays.json`)."""
    return os.path.isfile(os.path.join(path, INFO_FILE))


def write_split(directory, split, images, gaze_cm, metadata):
    """Writes one split's crops, labels and metadata as `.npy` files.

    Args:
        directory: str. The exported folder.
        split: str. `train`, `validation` or `test`.
        images: dict `face`, `left_eye`, `right_eye` of uint8 `(N, S, S, 3)`.
        gaze_cm: float array `(N, 2)`.
        metadata: dict of `(N,)` arrays.
    """
    if split not in SPLITS:
        raise ValueError(f"split must be one of {SPLITS}. Received: split={split!r}")
    count = len(gaze_cm)
    lengths = {key: len(value) for key, value in {**images, **metadata}.items()}
    if set(images) != set(INPUT_NAMES) or any(n != count for n in lengths.values()):
        raise ValueError(
            f"images must hold {INPUT_NAMES} and every array {count} rows, as "
            f"gaze_cm. Received: images {sorted(images)}, rows {lengths}")
    folder = os.path.join(directory, split)
    os.makedirs(os.path.join(folder, "metadata"), exist_ok=True)
    for key, value in images.items():
        np.save(os.path.join(folder, f"{key}.npy"), np.asarray(value, np.uint8))
    np.save(os.path.join(folder, "gaze_cm.npy"), np.asarray(gaze_cm, np.float32))
    for key, value in metadata.items():
        value = np.asarray(value)
        if value.dtype == object:  # Text (TFDS gives bytes): fixed-width, no pickle.
            value = np.array([v.decode() if isinstance(v, bytes) else str(v)
                              for v in value], dtype=str)
        np.save(os.path.join(folder, "metadata", f"{key}.npy"), value)


def write_info(directory, *, image_size, source=None):
    """Writes `arrays.json`: the crop size and the examples of each split.

    Args:
        directory: str. The exported folder, its splits written.
        image_size: int. Crop size.
        source: dict or None. Where the arrays come from (recorded as is).
    """
    splits = {split: int(np.load(os.path.join(directory, split, "gaze_cm.npy"),
                                 mmap_mode="r").shape[0])
              for split in SPLITS if os.path.isdir(os.path.join(directory, split))}
    with open(os.path.join(directory, INFO_FILE), "w") as f:
        json.dump({"image_size": int(image_size), "splits": splits,
                   "source": source or {}}, f, indent=2)


def read_info(directory):
    """The contents of `arrays.json` (see `write_info`)."""
    if not is_array_folder(directory):
        raise FileNotFoundError(
            f"{directory} holds no {INFO_FILE}: export the prepared set first, e.g. "
            "python recipes/export_arrays.py --data_dir=DATA/tfds "
            f"--output_dir={directory}")
    with open(os.path.join(directory, INFO_FILE)) as f:
        return json.load(f)


class ArraySplit:
    """One exported split: crops, labels and metadata, memory-mapped.

    Takes the place of `pipeline.DecodedSplit` (the same attributes and
    `batches`), so `evaluation.predict_split(..., decoded=split)` evaluates
    on it.

    Attributes:
        images: dict `face`, `left_eye`, `right_eye` of uint8 `(N, S, S, 3)`.
        gaze_cm: float32 `(N, 2)`.
        metadata: dict of `(N,)` arrays.
    """

    def __init__(self, images, gaze_cm, metadata):
        self.images = images
        self.gaze_cm = gaze_cm
        self.metadata = metadata

    @classmethod
    def load(cls, directory, split, *, max_examples=None, mmap=True):
        """Reads a split of an exported folder.

        Args:
            directory: str. The exported folder.
            split: str. `train`, `validation` or `test` (`val` too).
            max_examples: int or None. Only the first examples.
            mmap: bool. Map the files instead of reading them (the pages
                are read as batches need them).
        """
        split = {"val": "validation"}.get(split, split)
        info = read_info(directory)
        if split not in info["splits"]:
            raise ValueError(f"{directory} holds the splits {sorted(info['splits'])}; "
                             f"no {split!r}. Export it with recipes/export_arrays.py.")
        folder = os.path.join(directory, split)
        mode = "r" if mmap else None
        rows = slice(None, max_examples)
        images = {key: np.load(os.path.join(folder, f"{key}.npy"), mmap_mode=mode)[rows]
                  for key in INPUT_NAMES}
        gaze_cm = np.load(os.path.join(folder, "gaze_cm.npy"))[rows]
        metadata = {name[:-len(".npy")]: np.load(os.path.join(folder, "metadata", name))[rows]
                    for name in sorted(os.listdir(os.path.join(folder, "metadata")))}
        return cls(images, gaze_cm, metadata)

    def __len__(self):
        return len(self.gaze_cm)

    def batches(self, batch_size):
        """`(float32 inputs, gaze_cm, metadata)` of consecutive batches."""
        for start in range(0, len(self), batch_size):
            rows = slice(start, start + batch_size)
            inputs = {key: np.asarray(value[rows], np.float32)
                      for key, value in self.images.items()}
            yield inputs, self.gaze_cm[rows], {k: v[rows] for k, v in self.metadata.items()}


def augment_batch(inputs, rng, *, max_shift=2, max_brightness=20.0,
                  contrast_range=(0.8, 1.2)):
    """`pipeline.augment_batch`'s augmentation in NumPy.

    Per frame: one brightness offset `U(-max_brightness, max_brightness)`
    and one contrast factor `U(contrast_range)` shared by its three crops,
    applied about each crop's per-channel mean; per crop: a shift of up to
    `max_shift` pixels along each axis, edges mirrored; the result clipped
    to [0, 255].

    Args:
        inputs: dict of float32 `(B, S, S, 3)` in [0, 255].
        rng: `np.random.Generator`.
        max_shift: int. Largest shift in pixels.
        max_brightness: float. Largest brightness offset in pixel units.
        contrast_range: (low, high). Contrast factor range.

    Returns:
        dict of float32 `(B, S, S, 3)`.

    Example:

    >>> crops = {k: np.full((2, 8, 8, 3), 100.0, np.float32) for k in INPUT_NAMES}
    >>> out = augment_batch(crops, np.random.default_rng(0), max_brightness=0.0)
    >>> float(out["face"].min()), float(out["face"].max())
    (100.0, 100.0)
    """
    batch = len(next(iter(inputs.values())))
    brightness = rng.uniform(-max_brightness, max_brightness, (batch, 1, 1, 1))
    contrast = rng.uniform(contrast_range[0], contrast_range[1], (batch, 1, 1, 1))
    outputs = {}
    for key in INPUT_NAMES:
        image = inputs[key]
        mean = image.mean(axis=(1, 2), keepdims=True)
        image = (image - mean) * contrast + mean + brightness
        if max_shift > 0:
            size = image.shape[1]
            padded = np.pad(image, ((0, 0), (max_shift, max_shift),
                                    (max_shift, max_shift), (0, 0)), mode="symmetric")
            # Top-left corner of each crop in the padded image: 0 .. 2m.
            corners = rng.integers(0, 2 * max_shift + 1, (batch, 2))
            rows = corners[:, :1] + np.arange(size)
            cols = corners[:, 1:] + np.arange(size)
            image = padded[np.arange(batch)[:, None, None], rows[:, :, None],
                           cols[:, None, :]]
        outputs[key] = np.clip(image, 0.0, 255.0).astype(np.float32)
    return outputs


class EpochBatches:
    """Training batches of an `ArraySplit`, a function of `(seed, epoch, index)`.

    Epoch `e` visits the examples in the order of a permutation drawn from
    `np.random.default_rng((seed, e))`; its batch `b` is augmented with
    `np.random.default_rng((seed, e, b))` (`augment_batch`). Any batch can
    be made in any order (by parallel workers, or by a run resumed at
    epoch `e`) and comes out the same.

    Args:
        split: `ArraySplit`.
        batch_size: int >= 1.
        seed: int >= 0.
        augment: bool. `augment_batch` on every batch.
        max_shift: int or None. Largest shift; default `image_size // 32`
            (at least 1), as in `pipeline.make_dataset`.
        shuffle: bool. Without it, every epoch in stored order.
    """

    def __init__(self, split, *, batch_size, seed, augment=True, max_shift=None,
                 shuffle=True):
        if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
            raise ValueError(
                f"batch_size must be an integer >= 1. Received: batch_size={batch_size!r}")
        if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
            raise ValueError(f"seed must be an integer >= 0. Received: seed={seed!r}")
        if not len(split):
            raise ValueError("The split holds no examples.")
        self.split = split
        self.batch_size = batch_size
        self.seed = seed
        self.augment = augment
        size = split.images[INPUT_NAMES[0]].shape[1]
        self.max_shift = max(1, size // 32) if max_shift is None else int(max_shift)
        self.shuffle = shuffle
        self._orders = {}

    def __len__(self):
        return -(-len(self.split) // self.batch_size)

    def order(self, epoch):
        """The example indices of `epoch`, in the order they are visited."""
        if not self.shuffle:
            return np.arange(len(self.split))
        if epoch not in self._orders:
            self._orders = {epoch: np.random.default_rng((self.seed, epoch)).permutation(
                len(self.split))}
        return self._orders[epoch]

    def batch(self, epoch, index):
        """`(inputs, gaze_cm)` of batch `index` of `epoch`: float32 pixels."""
        if not 0 <= index < len(self):
            raise IndexError(f"index must be in [0, {len(self)}). Received: {index}")
        rows = np.sort(self.order(epoch)[index * self.batch_size:
                                         (index + 1) * self.batch_size])
        inputs = {key: np.asarray(value[rows], np.float32)
                  for key, value in self.split.images.items()}
        if self.augment:
            rng = np.random.default_rng((self.seed, epoch, index))
            inputs = augment_batch(inputs, rng, max_shift=self.max_shift)
        return inputs, np.asarray(self.split.gaze_cm[rows], np.float32)
