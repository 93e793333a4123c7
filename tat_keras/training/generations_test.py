"""Tests of the mini-generation callback (Algorithm 1) and its record."""

import json

import numpy as np
import pytest

from tat_keras import models
from tat_keras.training import generations
from tat_keras.training import teachers


class _Trainer:
    """What the callback uses of `GazeTrainer`: the student, set_teachers."""

    def __init__(self):
        self.student = models.GazeNet(width_multiplier=0.125, x_bins=4, y_bins=4)
        self.teacher_calls = []

    def set_teachers(self, weight_lists):
        self.teacher_calls.append(len(weight_lists))


@pytest.fixture(scope="module")
def run():
    """Epochs [2, 1, 1] of a `best`-policy run with pruning; val errors given."""
    trainer = _Trainer()
    bank = teachers.TeacherBank("best", threshold=1.05)
    record = generations.GenerationRecord()
    callback = generations.MiniGenerations(trainer, bank, [2, 1, 1], record,
                                           pruning_method="csp", prune_ratio=0.2)
    val_errors = {1: 2.0, 2: 1.5, 3: 1.4}
    before = [np.array(w) for w in trainer.student.get_weights()]
    for epoch in range(4):
        callback.on_epoch_begin(epoch)
        callback.on_epoch_end(epoch, {"error_cm": 3.0 - epoch,
                                      "val_error_cm": val_errors.get(epoch, 9.0)})
    return trainer, bank, record, before


def test_record_lists_epochs_teachers_and_errors(run):
    trainer, bank, record, _ = run
    entries = record.generations
    assert [g["epochs"] for g in entries] == [[0, 1], [2], [3]]
    # No teacher in the first mini-generation; then the best one so far.
    assert [g["teachers"] for g in entries] == [[[], []], [[0]], [[1]]]
    assert trainer.teacher_calls == [0, 0, 1, 1]
    assert [g["val_error_cm"] for g in entries] == [2.0, 1.5, 1.4]
    assert [g["train_error_cm"] for g in entries] == [2.0, 1.0, 0.0]
    # Generation 0 (2.0 > 1.05 x 1.5) is dropped when generation 1 joins.
    assert entries[0]["teacher_list"] == [0] and entries[0]["dropped"] == []
    assert entries[1]["teacher_list"] == [1] and entries[1]["dropped"] == [0]
    assert "teacher_list" not in entries[2]  # The last model is the result.
    assert bank.describe(range(len(bank))) == [1]


def test_rebirth_after_every_generation_but_the_last(run):
    trainer, _, record, before = run
    entries = record.generations
    filters = sum(trainer.student.get_layer(n).kernel.shape[-1]
                  for n in trainer.student.conv_layer_names)
    for entry in entries[:2]:
        assert sum(r["pruned"] for r in entry["rebirth"].values()) == int(0.2 * filters)
    assert "rebirth" not in entries[2]
    changed = [not np.array_equal(a, b) for a, b in
               zip(before, trainer.student.get_weights())]
    assert any(changed)


def test_record_round_trips_through_json(run, tmp_path):
    _, _, record, _ = run
    path = str(tmp_path / "generations.json")
    record.save(path)
    with open(path) as f:
        loaded = generations.GenerationRecord.from_json(json.load(f))
    assert json.dumps(loaded.to_json(), sort_keys=True, default=float) == json.dumps(
        json.loads(json.dumps(record.to_json(), default=generations._jsonable)),
        sort_keys=True)


def test_unknown_pruning_method_is_refused():
    with pytest.raises(ValueError, match="pruning_method must be one of .* Received: 'l1'"):
        generations.MiniGenerations(None, None, [1], None, pruning_method="l1")


def test_generation_errors_see_each_model_before_its_rebirth():
    trainer = _Trainer()
    record = generations.GenerationRecord()
    seen = []

    def evaluate(model):  # The weights the error is measured on.
        seen.append([np.array(w) for w in model.get_weights()])
        return float(len(seen))

    callbacks = [
        generations.GenerationErrors(trainer.student, [2, 1], record, evaluate),
        generations.MiniGenerations(trainer, teachers.TeacherBank("last"), [2, 1], record,
                                    pruning_method="csp", prune_ratio=0.2),
    ]
    start = [np.array(w) for w in trainer.student.get_weights()]
    for epoch in range(3):
        for callback in callbacks:
            callback.on_epoch_begin(epoch)
        for callback in callbacks:
            callback.on_epoch_end(epoch, {"error_cm": 1.0, "val_error_cm": 1.0})
    assert [g["test_error_cm"] for g in record.generations] == [1.0, 2.0]
    # The first figure is the first mini-generation's model as it was trained
    # (here: untouched), the second the model after its rebirth.
    assert all(np.array_equal(a, b) for a, b in zip(seen[0], start))
    assert not all(np.array_equal(a, b) for a, b in zip(seen[1], start))


def test_generation_errors_need_a_callable():
    with pytest.raises(TypeError, match="evaluate_fn must be callable"):
        generations.GenerationErrors(None, [1], generations.GenerationRecord(), 1.0)
