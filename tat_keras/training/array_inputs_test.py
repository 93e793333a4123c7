import keras
import numpy as np

from tat_keras.data import arrays
from tat_keras.training import array_inputs


class _Recording(arrays.EpochBatches):
    """EpochBatches that remember which `(epoch, index)` were requested."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.requested = []

    def batch(self, epoch, index):
        self.requested.append((epoch, index))
        return super().batch(epoch, index)


def _tiny_model(size):
    inputs = {k: keras.Input((size, size, 3), name=k) for k in arrays.INPUT_NAMES}
    flat = keras.layers.Concatenate()(
        [keras.layers.Flatten()(inputs[k]) for k in arrays.INPUT_NAMES])
    model = keras.Model(inputs, keras.layers.Dense(2)(flat))
    model.compile(optimizer="sgd", loss="mse")
    return model


def test_fit_serves_each_epoch_its_own_batches(tmp_path):
    rng = np.random.default_rng(0)
    images = {k: rng.integers(0, 256, (6, 4, 4, 3), dtype=np.uint8)
              for k in arrays.INPUT_NAMES}
    arrays.write_split(str(tmp_path), "train", images,
                       rng.normal(size=(6, 2)).astype(np.float32), {})
    arrays.write_info(str(tmp_path), image_size=4)
    split = arrays.ArraySplit.load(str(tmp_path), "train")
    batches = _Recording(split, batch_size=4, seed=0)
    dataset = array_inputs.ArrayDataset(batches, first_epoch=2, workers=2)
    # A run resumed at epoch 2: epochs 2 and 3, two batches each (and what
    # Keras reads of epoch 2 to build the model and its input signature).
    _tiny_model(4).fit(dataset, epochs=4, initial_epoch=2, verbose=0,
                       callbacks=[dataset.callback()])
    assert sorted(set(batches.requested)) == [(2, 0), (2, 1), (3, 0), (3, 1)]
    assert dataset.epoch == 3
