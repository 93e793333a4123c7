"""Fast checks of `distributed` on one device.

The runs over two logical CPU devices and two loopback workers are in
`tests/test_distributed.py` (they need processes of their own).
"""

import keras
import numpy as np
import pytest
import tensorflow as tf

from tat_keras import models
from tat_keras.training import checkpoint
from tat_keras.training import distributed
from tat_keras.training import trainer as trainer_lib


def test_placement_of_one_process_is_the_chief():
    placement = distributed.Placement.of(tf.distribute.get_strategy())
    gpu = bool(tf.config.list_physical_devices("GPU"))
    assert placement == distributed.Placement(accelerator=gpu)
    assert placement.is_chief and not placement.multi_worker
    assert placement.output_dir("runs/x") == "runs/x"


def test_other_workers_write_under_workers_index():
    placement = distributed.Placement("worker", 1, False, num_workers=2, num_replicas=2)
    assert placement.multi_worker
    assert placement.output_dir("runs/x") == "runs/x/workers/1"


def test_steps_per_epoch_drop_the_partial_batch_on_several_replicas():
    assert distributed.steps_per_epoch(33, 8, distributed.Placement()) == 5
    assert distributed.steps_per_epoch(33, 8, distributed.Placement(num_replicas=2)) == 4
    with pytest.raises(ValueError, match="has 5 examples for batch_size=8"):
        distributed.steps_per_epoch(5, 8, distributed.Placement(num_replicas=2))


def test_make_strategy_refuses_unknown_names_and_a_missing_tf_config(monkeypatch):
    with pytest.raises(ValueError, match="strategy must be one of.*'tpu'"):
        distributed.make_strategy("tpu")
    monkeypatch.delenv("TF_CONFIG", raising=False)
    with pytest.raises(ValueError, match="TF_CONFIG environment variable, which is not set"):
        distributed.make_strategy("multi_worker")
    monkeypatch.setenv("TF_CONFIG", "{cluster")
    with pytest.raises(ValueError, match="TF_CONFIG is not valid JSON"):
        distributed.make_strategy("multi_worker")
    assert distributed.make_strategy("default") is tf.distribute.get_strategy()


def test_split_cpu_validates_its_count():
    with pytest.raises(ValueError, match="count must be an integer >= 1. Received: count=0"):
        distributed.split_cpu(0)


def test_synchronized_batch_norm_matches_numpy_on_one_replica():
    model = models.GazeNet(image_size=32, width_multiplier=0.125, x_bins=6, y_bins=6)
    count = distributed.synchronize_batch_norm(model)
    norms = [layer for layer in model._flatten_layers(include_self=False)
             if isinstance(layer, keras.layers.BatchNormalization)]
    assert count == len(norms) > 0 and all(layer.synchronized for layer in norms)
    layer = norms[0]
    x = np.random.default_rng(0).normal(2.0, 3.0, (5, 4, 4, layer.gamma.shape[0]))
    x = x.astype("float32")
    mean, var = x.mean(axis=(0, 1, 2)), x.var(axis=(0, 1, 2))
    expected = ((x - mean) / np.sqrt(var + layer.epsilon) * np.asarray(layer.gamma)
                + np.asarray(layer.beta))
    np.testing.assert_allclose(np.asarray(layer(x, training=True)), expected,
                               rtol=1e-4, atol=1e-4)
    assert distributed.synchronize_batch_norm(model, False) == count
    assert not any(layer.synchronized for layer in norms)


def _trainer(seed=0):
    keras.utils.set_random_seed(seed)
    student = models.GazeNet(image_size=32, width_multiplier=0.125, x_bins=6, y_bins=6,
                             x_low=-3.0, x_bin_size=1.0, y_low=-3.0, y_bin_size=1.0)
    # DwO on several replicas: tests/test_distributed.py.
    trainer = trainer_lib.GazeTrainer(
        student, lambda_hard=0.2, lambda_mix=0.4, lambda_teacher=0.6, seed=seed)
    trainer.compile(optimizer=keras.optimizers.Adam(0.01))
    return trainer


def _batches():
    rng = np.random.default_rng(1)
    inputs = {name: rng.uniform(0, 255, (8, 32, 32, 3)).astype("float32")
              for name in models.INPUT_NAMES}
    gaze = rng.uniform(-2.5, 2.5, (8, 2)).astype("float32")
    return tf.data.Dataset.from_tensor_slices((inputs, gaze)).shuffle(
        8, seed=0).batch(4)


class _SetTeacher(keras.callbacks.Callback):
    """Sets the student's own initial weights as teacher from epoch 1."""

    def __init__(self, trainer, weights):
        super().__init__()
        self.trainer, self.weights = trainer, weights

    def on_epoch_begin(self, epoch, logs=None):
        self.trainer.set_teachers([self.weights] if epoch else [])


@pytest.mark.slow  # Four traced steps (about half a minute); .ci/run runs it.
def test_loop_and_fit_run_the_same_steps():
    """The multi-replica loop on one device repeats `fit` step for step, on
    the same reshuffled batches."""
    histories, weights = [], []
    for run in ("fit", "loop"):
        trainer = _trainer()
        history = []
        callbacks = [_SetTeacher(trainer, trainer.student.get_weights()),
                     checkpoint.RunCheckpoint(None, trainer, None, None, history)]
        if run == "fit":
            trainer.fit(_batches(), validation_data=_batches(), epochs=2,
                        callbacks=callbacks, verbose=0)
        else:
            distributed.fit_in_loop(trainer, _batches(), _batches(), batch_size=4,
                                    epochs=2, initial_epoch=0, steps_per_epoch=2,
                                    callbacks=callbacks, verbose=0)
        histories.append(history)
        weights.append(trainer.student.get_weights())
    for fitted, looped in zip(*histories):
        for key in ("loss", "hard_loss", "mix_loss", "teacher_loss", "error_cm",
                    "val_loss", "val_error_cm"):
            assert looped[key] == pytest.approx(fitted[key], rel=1e-5), key
    assert histories[0][1]["teacher_loss"] > 0
    for a, b in zip(*weights):
        np.testing.assert_allclose(b, a, rtol=1e-5, atol=1e-6)
