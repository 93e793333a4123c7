"""Tests of the run checkpoint: what is saved comes back exactly."""

import json
import os

import keras
import numpy as np
import pytest

from tat_keras import models
from tat_keras.training import checkpoint
from tat_keras.training import generations
from tat_keras.training import teachers
from tat_keras.training import trainer as trainer_lib

BATCH = {n: np.random.default_rng(0).uniform(0, 255, (4, 64, 64, 3)).astype("float32")
         for n in models.INPUT_NAMES}
GAZE = np.array([[1.0, -2.0], [0.5, 3.0], [-1.0, 0.0], [2.0, 1.0]], "float32")


def _trainer(seed=0):
    keras.utils.set_random_seed(seed)
    student = models.GazeNet(width_multiplier=0.125, x_bins=4, y_bins=4,
                             x_low=-3.0, x_bin_size=1.5, y_low=-3.0, y_bin_size=1.5)
    trainer = trainer_lib.GazeTrainer(student, lambda_hard=0.2, lambda_mix=0.4,
                                      seed=seed)
    trainer.compile(optimizer=keras.optimizers.Adam(1e-2), jit_compile=False)
    return trainer


@pytest.fixture(scope="module")
def trained():
    """A trainer after two eager steps (moments, step count, mixup state set)."""
    trainer = _trainer()
    for _ in range(2):
        trainer.train_step((BATCH, GAZE))
    return trainer


def test_save_then_restore_gives_back_weights_optimizer_and_random_state(
        trained, tmp_path):
    bank = teachers.TeacherBank("random", seed=1)
    bank.add(trained.student.get_weights(), 1.25, 0)
    record = generations.GenerationRecord([{"generation": 0, "epochs": [0]}])
    directory = str(tmp_path / "checkpoints")
    checkpoint.save(directory, 0, trained, bank, record, [{"epoch": 0, "loss": 1.0}],
                    train_seconds=12.5)

    fresh = _trainer(seed=5)
    fresh.optimizer.build(fresh.student.trainable_variables)
    restored_bank = teachers.TeacherBank("random", seed=1)
    state = checkpoint.latest(directory)
    assert state["epoch"] == 0 and state["train_seconds"] == 12.5
    assert state["history"] == [{"epoch": 0, "loss": 1.0}]
    assert generations.GenerationRecord.from_json(state["record"]).generations == (
        record.generations)
    checkpoint.restore(state, directory, fresh, restored_bank)
    for got, want in zip(fresh.student.get_weights(), trained.student.get_weights()):
        np.testing.assert_array_equal(got, want)
    for got, want in zip(fresh.optimizer.variables, trained.optimizer.variables):
        np.testing.assert_array_equal(np.asarray(got), np.asarray(want))
    random_states = checkpoint.random_state_variables(fresh)
    assert len(random_states) == 2  # Mixup's and the adversary's generators.
    for got, want in zip(random_states, checkpoint.random_state_variables(trained)):
        np.testing.assert_array_equal(np.asarray(got), np.asarray(want))
    assert restored_bank.describe(range(len(restored_bank))) == [0]
    np.testing.assert_array_equal(restored_bank.weights(0)[0], bank.weights(0)[0])
    # The next step of the restored trainer is the original's next step
    # (same weights, moments and mixup draw).
    for metric in trained.metrics + fresh.metrics:
        metric.reset_state()
    trained_logs = trained.train_step((BATCH, GAZE))
    fresh_logs = fresh.train_step((BATCH, GAZE))
    for key in ("mix_loss", "hard_loss"):
        assert float(fresh_logs[key]) == pytest.approx(float(trained_logs[key]),
                                                       rel=1e-5), key


def test_checkpoint_of_another_configuration_is_refused(trained, tmp_path):
    directory = str(tmp_path / "checkpoints")
    checkpoint.save(directory, 3, trained, teachers.TeacherBank("none"),
                    generations.GenerationRecord(), [])
    other = _trainer()
    other.compile(optimizer=keras.optimizers.SGD(1e-2), jit_compile=False)
    other.optimizer.build(other.student.trainable_variables)
    with pytest.raises(ValueError, match="different configuration"):
        checkpoint.restore(checkpoint.latest(directory), directory, other,
                           teachers.TeacherBank("none"))


def test_latest_is_none_without_a_pointer_and_old_folders_go(trained, tmp_path):
    directory = str(tmp_path / "checkpoints")
    assert checkpoint.latest(directory) is None
    bank, record = teachers.TeacherBank("none"), generations.GenerationRecord()
    for epoch in range(3):
        checkpoint.save(directory, epoch, trained, bank, record, [])
    assert sorted(n for n in os.listdir(directory) if n.startswith("epoch_")) == [
        "epoch_0002"]
    with open(os.path.join(directory, "latest.json")) as f:
        assert json.load(f) == {"folder": "epoch_0002"}


class _Stub:
    stop_training = False


def test_run_checkpoint_stops_on_nan_and_saves_nothing(tmp_path):
    stub = _Stub()
    saver = checkpoint.RunCheckpoint(str(tmp_path / "c"), stub, None, None, [])
    saver.on_train_batch_end(0, {"loss": float("nan")})
    assert saver.stopped_on_nan and stub.stop_training
    saver.on_epoch_end(0, {"loss": 1.0})
    assert not os.path.exists(tmp_path / "c")
