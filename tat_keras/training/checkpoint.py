"""Checkpoints that let a killed run continue where it stopped.

After every epoch whose loss is finite, `RunCheckpoint` writes a new folder
`checkpoints/epoch_NNNN/` (student weights, optimizer variables, the states
of the trainer's random generators (mixup, DwO), the epoch,
the teacher index and the mini-generation record) and only then points
`checkpoints/latest.json` at it with an atomic rename; older folders are
removed afterwards. Teachers live beside them in `checkpoints/teachers/`, one
immutable file each. A kill at any moment (even `kill -9` while writing)
leaves `latest.json` naming a complete checkpoint.
"""

import json
import os
import shutil
import time

import keras
import numpy as np

from tat_keras.training import generations


def _write_json(path, data):
    temp = path + ".tmp"
    with open(temp, "w") as f:
        json.dump(data, f, indent=2, default=generations._jsonable)
    os.replace(temp, path)


class RunCheckpoint(keras.callbacks.Callback):
    """Saves everything a resumed run needs at the end of each epoch.

    Args:
        directory: str or None. The run's `checkpoints/` folder; None keeps
            the history and the NaN check but writes nothing (a worker other
            than the chief).
        trainer: `GazeTrainer`.
        bank: `TeacherBank`.
        record: `GenerationRecord`.
        history: list of per-epoch log dicts, saved too.
        seconds_before: float. Training time of earlier, interrupted attempts.
    """

    def __init__(self, directory, trainer, bank, record, history, seconds_before=0.0):
        super().__init__()
        self.directory = directory
        self.trainer = trainer
        self.bank = bank
        self.record = record
        self.history = history
        self.stopped_on_nan = False
        self.seconds_before = seconds_before
        self.started = time.time()

    def on_train_batch_end(self, batch, logs=None):
        loss = (logs or {}).get("loss")
        if loss is not None and not np.isfinite(loss):
            self.stopped_on_nan = True
            self.trainer.stop_training = True

    def on_epoch_end(self, epoch, logs=None):
        logs = {k: float(v) for k, v in (logs or {}).items()}
        if self.stopped_on_nan or not all(np.isfinite(v) for v in logs.values()):
            self.stopped_on_nan = True
            self.trainer.stop_training = True
            return
        self.history.append({"epoch": int(epoch), **logs})
        if self.directory is None:
            return
        save(self.directory, epoch, self.trainer, self.bank, self.record, self.history,
             train_seconds=self.seconds_before + time.time() - self.started)


def save(directory, epoch, trainer, bank, record, history, train_seconds=0.0):
    """Writes the checkpoint of a completed `epoch` (0-based)."""
    os.makedirs(directory, exist_ok=True)
    teacher_index = bank.save(os.path.join(directory, "teachers"))
    folder = os.path.join(directory, f"epoch_{epoch:04d}")
    if os.path.exists(folder):
        shutil.rmtree(folder)
    os.makedirs(folder)
    trainer.student.save_weights(os.path.join(folder, "student.weights.h5"))
    optimizer_values = [np.asarray(v) for v in trainer.optimizer.variables]
    with open(os.path.join(folder, "optimizer.npz"), "wb") as f:
        np.savez(f, *optimizer_values)
    with open(os.path.join(folder, "random_state.npz"), "wb") as f:
        np.savez(f, *[np.asarray(v) for v in random_state_variables(trainer)])
    _write_json(
        os.path.join(folder, "state.json"),
        {"epoch": int(epoch), "teachers": teacher_index,
         "record": record.to_json(), "history": history,
         "train_seconds": float(train_seconds)},
    )
    _write_json(os.path.join(directory, "latest.json"), {"folder": os.path.basename(folder)})
    for name in os.listdir(directory):
        if name.startswith("epoch_") and name != os.path.basename(folder):
            shutil.rmtree(os.path.join(directory, name), ignore_errors=True)


def random_state_variables(trainer):
    """The states of the trainer's seed generators (mixup draws, DwO picks),
    in a fixed order, so that a resumed run draws what the uninterrupted
    one would have."""
    return [v for v in trainer.variables
            if v.path.endswith("seed_generator_state")]


def latest(directory):
    """The state dict of the newest complete checkpoint, or None."""
    pointer = os.path.join(directory, "latest.json")
    if not os.path.exists(pointer):
        return None
    with open(pointer) as f:
        folder = os.path.join(directory, json.load(f)["folder"])
    with open(os.path.join(folder, "state.json")) as f:
        state = json.load(f)
    state["folder"] = folder
    return state


def restore(state, directory, trainer, bank):
    """Loads student, optimizer and teachers from a `latest()` state."""
    trainer.student.load_weights(os.path.join(state["folder"], "student.weights.h5"))
    optimizer = trainer.optimizer
    if not optimizer.built:
        optimizer.build(trainer.student.trainable_variables)
    with np.load(os.path.join(state["folder"], "optimizer.npz")) as arrays:
        values = [arrays[f"arr_{i}"] for i in range(len(arrays.files))]
    if len(values) != len(optimizer.variables):
        raise ValueError(
            f"The checkpoint in {state['folder']} holds {len(values)} optimizer "
            f"variables but this run's optimizer has {len(optimizer.variables)}; "
            "it was written by a different configuration. Start over with "
            "--overwrite or use another --model_dir."
        )
    for variable, value in zip(optimizer.variables, values):
        variable.assign(value)
    random_path = os.path.join(state["folder"], "random_state.npz")
    if os.path.exists(random_path):  # Checkpoints written before it had none.
        with np.load(random_path) as arrays:
            states = [arrays[f"arr_{i}"] for i in range(len(arrays.files))]
        for variable, value in zip(random_state_variables(trainer), states):
            variable.assign(value)
    bank.load(os.path.join(directory, "teachers"), state["teachers"])
