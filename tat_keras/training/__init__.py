"""Training: the Eq. 9 train step, teachers, mini-generations, checkpoints.

Public names load on first use (importing the package loads no Keras):
`TrainConfig` and `train` (one run), the `builders` of its pieces,
`GazeTrainer`, `RegressionTrainer`, `GazeRegressor`, `TeacherBank`,
`MiniGenerations`, `GenerationRecord`, `RunCheckpoint`, `apply_rebirth`,
`RebirthAdam` and `RestartingCosineDecay`.

Example:

>>> from tat_keras.training import TrainConfig
>>> TrainConfig(scheme="standard").resolved().teacher
'none'
"""

import importlib

_NAMES = {
    "TrainConfig": "tat_keras.training.config",
    "train": "tat_keras.training.experiment",
    "evaluate_model": "tat_keras.training.experiment",
    "RunCheckpoint": "tat_keras.training.checkpoint",
    "GenerationRecord": "tat_keras.training.generations",
    "MiniGenerations": "tat_keras.training.generations",
    "apply_rebirth": "tat_keras.training.rebirth",
    "RebirthAdam": "tat_keras.training.optimizers",
    "RestartingCosineDecay": "tat_keras.training.schedules",
    "TeacherBank": "tat_keras.training.teachers",
    "GazeTrainer": "tat_keras.training.trainer",
    "GazeRegressor": "tat_keras.training.regression",
    "RegressionTrainer": "tat_keras.training.regression",
}
_MODULES = ("builders", "checkpoint", "config", "experiment", "generations",
            "optimizers", "rebirth", "regression", "schedules", "teachers", "trainer")


def __getattr__(name):
    if name in _NAMES:
        return getattr(importlib.import_module(_NAMES[name]), name)
    if name in _MODULES:
        return importlib.import_module(f"tat_keras.training.{name}")
    raise AttributeError(f"module 'tat_keras.training' has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | set(_NAMES) | set(_MODULES))
