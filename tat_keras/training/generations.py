"""The mini-generation loop of TAT (Algorithm 1) as a Keras callback.

Training is one `fit` over all epochs; the callback splits them into `K`
mini-generations (`L + 1` epochs in the first, `L` after). At the start of
every epoch it draws the teacher; at the end of a mini-generation it adds
the student to the teacher list, drops weak teachers, and prunes and
re-initializes filters (`rebirth.apply_rebirth`). The learning-rate schedule
restarts by itself (`schedules.RestartingCosineDecay`).

What happens is written to a `GenerationRecord`, which the checkpoint saves,
so a resumed run continues with the same teachers and the same record.
"""

import json

import keras
import numpy as np

from tat_keras.training import rebirth
from tat_keras.training import schedules


class GenerationRecord:
    """What a run did, per mini-generation (saved as `generations.json`).

    Each entry of `generations`: `generation`, `epochs` (global indices),
    `teachers` (per epoch, the generations of the teachers drawn),
    `train_error_cm` and `val_error_cm` (at its last epoch),
    `teacher_list` (generations kept after dropping weak ones), `dropped`,
    and `rebirth` (per layer: pruned count and norm ranges, Fig. 3).
    """

    def __init__(self, generations=None):
        self.generations = list(generations or [])

    def entry(self, generation):
        while len(self.generations) <= generation:
            self.generations.append(
                {"generation": len(self.generations), "epochs": [], "teachers": []}
            )
        return self.generations[generation]

    def to_json(self):
        return {"generations": self.generations}

    @classmethod
    def from_json(cls, data):
        return cls(data.get("generations", []))

    def save(self, path):
        with open(path, "w") as f:
            json.dump(self.to_json(), f, indent=2, default=_jsonable)


def _jsonable(value):
    if isinstance(value, (np.integer,)):
        return int(value)
    if isinstance(value, (np.floating,)):
        return float(value)
    if isinstance(value, np.ndarray):
        return value.tolist()
    raise TypeError(f"not JSON serializable: {type(value)}")


class MiniGenerations(keras.callbacks.Callback):
    """Runs TAT's mini-generations inside one `fit` (Algorithm 1).

    Args:
        trainer: `GazeTrainer`. Its `student` is pruned; its teachers set.
        bank: `TeacherBank`. The teacher list (policy and threshold).
        epochs: list of int. Epochs per mini-generation
            (`config.generation_epochs`).
        record: `GenerationRecord`. Filled in as training goes.
        pruning_method: str. See `rebirth.apply_rebirth`.
        prune_ratio: float. Fraction `p` of filters pruned per rebirth.
        max_layer_ratio: float. Per-layer cap `p_max`.
        reinit_method: str. `aoi`, `orthogonal` or `uniform`.
        seed: int. Seed of the re-initializations.
        writer: `tf.summary` writer or None. TensorBoard output of the record.
    """

    def __init__(self, trainer, bank, epochs, record, *, pruning_method="csp",
                 prune_ratio=0.2, max_layer_ratio=0.5, reinit_method="aoi", seed=0,
                 writer=None):
        super().__init__()
        if pruning_method not in rebirth.PRUNING_METHODS:
            raise ValueError(
                f"pruning_method must be one of {rebirth.PRUNING_METHODS}. "
                f"Received: {pruning_method!r}"
            )
        self.trainer = trainer
        self.bank = bank
        self.epochs = list(epochs)
        self.record = record
        self.pruning_method = pruning_method
        self.prune_ratio = prune_ratio
        self.max_layer_ratio = max_layer_ratio
        self.reinit_method = reinit_method
        self.seed = seed
        self.writer = writer

    def on_epoch_begin(self, epoch, logs=None):
        generation, _ = schedules.generation_of_epoch(epoch, self.epochs)
        indices = self.bank.draw(epoch)
        self.trainer.set_teachers([self.bank.weights(i) for i in indices])
        entry = self.record.entry(generation)
        entry["epochs"].append(int(epoch))
        entry["teachers"].append(self.bank.describe(indices))

    def on_epoch_end(self, epoch, logs=None):
        logs = logs or {}
        generation, within = schedules.generation_of_epoch(epoch, self.epochs)
        if within != self.epochs[generation] - 1:
            return
        entry = self.record.entry(generation)
        entry["train_error_cm"] = _as_float(logs.get("error_cm"))
        entry["val_error_cm"] = _as_float(logs.get("val_error_cm"))
        if generation == len(self.epochs) - 1:
            return  # The last mini-generation's model is the result.
        student = self.trainer.student
        val_error = entry["val_error_cm"]
        self.bank.add(
            student.get_weights(),
            val_error if val_error is not None else np.inf,
            generation,
        )
        entry["dropped"] = self.bank.drop_weak()
        entry["teacher_list"] = self.bank.describe(range(len(self.bank)))
        entry["rebirth"] = rebirth.apply_rebirth(
            student,
            pruning_method=self.pruning_method,
            ratio=self.prune_ratio,
            max_layer_ratio=self.max_layer_ratio,
            reinit_method=self.reinit_method,
            seed=self.seed * 1000 + generation,
            optimizer=getattr(self.trainer, "optimizer", None),
        )
        self._summarize(generation, entry)

    def _summarize(self, generation, entry):
        if self.writer is None:
            return
        import tensorflow as tf  # TensorBoard output only.

        with self.writer.as_default(step=generation):
            tf.summary.scalar("generation/teachers", len(self.bank))
            pruned = sum(v.get("pruned", 0) for v in entry["rebirth"].values())
            tf.summary.scalar("generation/pruned_filters", pruned)
            for name, info in entry["rebirth"].items():
                for key in ("pruned", "pruned_norm_min", "pruned_norm_max",
                            "new_norm_min", "new_norm_max"):
                    if info.get(key) is not None:
                        tf.summary.scalar(f"rebirth/{name}/{key}", info[key])
        self.writer.flush()


def _as_float(value):
    return None if value is None else float(value)


class GenerationErrors(keras.callbacks.Callback):
    """Writes `evaluate_fn(student)` into the record after each mini-generation.

    Place it before `MiniGenerations` in the callback list, so that it sees
    the mini-generation's model before its rebirth.

    Args:
        student: the network evaluated.
        epochs: list of int. Epochs per mini-generation.
        record: `GenerationRecord`.
        evaluate_fn: callable `model -> float`.
        key: str. Entry key written, e.g. `test_error_cm`.

    Example:

    >>> record = GenerationRecord()
    >>> callback = GenerationErrors(None, [2, 1], record, lambda model: 1.5)
    >>> for epoch in range(3):
    ...     callback.on_epoch_end(epoch)
    >>> [g["test_error_cm"] for g in record.generations]
    [1.5, 1.5]
    """

    def __init__(self, student, epochs, record, evaluate_fn, *, key="test_error_cm"):
        super().__init__()
        if not callable(evaluate_fn):
            raise TypeError(f"evaluate_fn must be callable. Received: {evaluate_fn!r}")
        self.student = student
        self.epochs = list(epochs)
        self.record = record
        self.evaluate_fn = evaluate_fn
        self.key = key

    def on_epoch_end(self, epoch, logs=None):
        generation, within = schedules.generation_of_epoch(epoch, self.epochs)
        if within == self.epochs[generation] - 1:
            self.record.entry(generation)[self.key] = float(self.evaluate_fn(self.student))
