"""`fit`'s inputs from exported NumPy arrays (no TensorFlow, no tf.data).

`ArrayDataset` is a `keras.utils.PyDataset` over `arrays.EpochBatches`:
batch `b` of epoch `e` is a function of `(seed, e, b)`, made by worker
threads. `fit` does not tell a dataset which epoch it serves, so the
`EpochCallback` that `ArrayDataset.callback()` returns sets it at the start
of every epoch, before any of its batches is requested; a run resumed at
epoch `e` therefore sees what the uninterrupted one saw.

Example:

>>> import tempfile
>>> import numpy as np
>>> from tat_keras.data import arrays
>>> folder = tempfile.mkdtemp()
>>> images = {k: np.zeros((5, 8, 8, 3), np.uint8) for k in arrays.INPUT_NAMES}
>>> arrays.write_split(folder, "train", images, np.zeros((5, 2), np.float32), {})
>>> arrays.write_info(folder, image_size=8)
>>> split = arrays.ArraySplit.load(folder, "train")
>>> dataset = ArrayDataset(arrays.EpochBatches(split, batch_size=2, seed=0))
>>> len(dataset), dataset[2][0]["face"].shape
(3, (1, 8, 8, 3))
"""

import keras


class ArrayDataset(keras.utils.PyDataset):
    """Batches of `arrays.EpochBatches` for `Model.fit`.

    Args:
        batches: `arrays.EpochBatches`.
        first_epoch: int. The epoch served until the callback sets another.
        workers: int. Threads making batches ahead of the step (NumPy
            releases the GIL while it copies and augments).
        max_queue_size: int. Batches made ahead, at most.
    """

    def __init__(self, batches, *, first_epoch=0, workers=1, max_queue_size=10):
        super().__init__(workers=workers, use_multiprocessing=False,
                         max_queue_size=max_queue_size)
        self.batches = batches
        self.epoch = int(first_epoch)

    def __len__(self):
        return len(self.batches)

    def __getitem__(self, index):
        return self.batches.batch(self.epoch, index)

    def callback(self):
        """The callback that tells this dataset which epoch `fit` runs."""
        return EpochCallback(self)


class EpochCallback(keras.callbacks.Callback):
    """Sets `dataset.epoch` at the start of each epoch of `fit`."""

    def __init__(self, dataset):
        super().__init__()
        self.dataset = dataset

    def on_epoch_begin(self, epoch, logs=None):
        self.dataset.epoch = int(epoch)
