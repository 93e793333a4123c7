"""Learning-rate schedule that restarts with every mini-generation."""

import keras
import numpy as np
from keras import ops


def generation_of_epoch(epoch, epochs):
    """`(generation index, epoch within it)` of a 0-based global `epoch`."""
    ends = np.cumsum(epochs)
    generation = int(np.searchsorted(ends, epoch, side="right"))
    if generation >= len(epochs):
        raise ValueError(f"epoch {epoch} is past the last of {int(ends[-1])} epochs")
    start = 0 if generation == 0 else int(ends[generation - 1])
    return generation, epoch - start


@keras.saving.register_keras_serializable(package="tat_keras")
class RestartingCosineDecay(keras.optimizers.schedules.LearningRateSchedule):
    """Cosine decay that restarts at each mini-generation, after a warm-up.

    The learning rate rises linearly during the first `warmup_steps` and then
    follows a cosine from `learning_rate` to `alpha * learning_rate` over the
    rest of each cycle. With one cycle this is the standard scheme's schedule.
    The step count is the optimizer's, so a resumed run continues exactly.

    Args:
        learning_rate: float. Peak learning rate.
        cycle_steps: list of int. Steps of each cycle (mini-generation).
        warmup_steps: int. Linear warm-up at the start of the first cycle.
        alpha: float. Floor of the cosine, as a fraction of the peak.

    Example:

    >>> schedule = RestartingCosineDecay(1.0, [4, 2], warmup_steps=2, alpha=0.0)
    >>> [round(float(schedule(s)), 2) for s in range(6)]
    [0.5, 1.0, 1.0, 0.5, 1.0, 0.5]
    """

    def __init__(self, learning_rate, cycle_steps, warmup_steps=0, alpha=0.01):
        if learning_rate <= 0:
            raise ValueError(f"learning_rate must be positive. Received: {learning_rate}")
        cycle_steps = [int(s) for s in cycle_steps]
        if not cycle_steps or min(cycle_steps) < 1:
            raise ValueError(
                f"cycle_steps must be positive step counts. Received: {cycle_steps}"
            )
        if not 0 <= warmup_steps < cycle_steps[0]:
            raise ValueError(
                "warmup_steps must be shorter than the first cycle. Received: "
                f"warmup_steps={warmup_steps}, cycle_steps={cycle_steps}"
            )
        self.learning_rate = float(learning_rate)
        self.cycle_steps = cycle_steps
        self.warmup_steps = int(warmup_steps)
        self.alpha = float(alpha)

    def __call__(self, step):
        step = ops.cast(step, "float32")
        ends = np.cumsum(self.cycle_steps).astype("float32")
        starts = np.concatenate([[0.0], ends[:-1]]).astype("float32")
        lengths = np.asarray(self.cycle_steps, "float32")
        # Index of the current cycle; steps past the end stay in the last one.
        cycle = ops.minimum(
            ops.sum(ops.cast(step >= ends, "int32")), len(self.cycle_steps) - 1
        )
        start = ops.take(ops.convert_to_tensor(starts), cycle)
        length = ops.take(ops.convert_to_tensor(lengths), cycle)
        warmup = ops.where(cycle == 0, float(self.warmup_steps), 0.0)
        position = step - start
        progress = ops.clip((position - warmup) / ops.maximum(length - warmup, 1.0), 0.0, 1.0)
        cosine = self.alpha + (1 - self.alpha) * 0.5 * (1 + ops.cos(np.pi * progress))
        ramp = (position + 1.0) / ops.maximum(warmup, 1.0)
        factor = ops.where(position < warmup, ramp, cosine)
        return self.learning_rate * factor

    def get_config(self):
        return {
            "learning_rate": self.learning_rate,
            "cycle_steps": self.cycle_steps,
            "warmup_steps": self.warmup_steps,
            "alpha": self.alpha,
        }
