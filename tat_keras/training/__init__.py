"""Training: the Eq. 9 train step, teachers, mini-generations, checkpoints.

`TrainConfig` (`config`) holds every setting of a run and `train`
(`experiment`) runs one. The pieces a run is made of come from `builders`:
`GazeTrainer` (`trainer`), `RegressionTrainer` and `GazeRegressor`
(`regression`), `TeacherBank` (`teachers`), `MiniGenerations` and
`GenerationRecord` (`generations`), `RunCheckpoint` (`checkpoint`),
`apply_rebirth` (`rebirth`), `RebirthAdam` (`optimizers`),
`RestartingCosineDecay` (`schedules`); `distributed` trains on several
devices or machines; `jax_step` is `GazeTrainer`'s step on Keras's JAX
backend and `array_inputs` feeds `fit` from exported arrays. Importing the package loads no Keras; the modules
import on first use.

Example:

>>> from tat_keras.training import TrainConfig
>>> TrainConfig(scheme="standard").resolved().teacher
'none'
"""

from tat_keras import submodules
from tat_keras.training.config import TrainConfig  # noqa: F401  (no Keras)

__getattr__ = submodules.on_first_use(__name__)


def train(config, model_dir, **kwargs):
    """Trains, evaluates and saves one run: `experiment.train`, which see.

    Loads TensorFlow when called, not when imported.
    """
    from tat_keras.training import experiment

    return experiment.train(config, model_dir, **kwargs)
