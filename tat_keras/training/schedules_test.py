import math

import numpy as np
import pytest

from tat_keras.training import schedules
from tat_keras.training.config import generation_epochs


def _reference(step, lr, cycles, warmup, alpha):
    start = 0
    for index, length in enumerate(cycles):
        if step < start + length or index == len(cycles) - 1:
            break
        start += length
    position = step - start
    w = warmup if index == 0 else 0
    if position < w:
        return lr * (position + 1) / w
    progress = min(max((position - w) / max(length - w, 1), 0.0), 1.0)
    return lr * (alpha + (1 - alpha) * 0.5 * (1 + math.cos(math.pi * progress)))


@pytest.mark.parametrize(
    "cycles, warmup, alpha",
    [([10], 0, 0.0), ([10], 3, 0.01), ([8, 5, 5], 2, 0.0), ([4, 4, 4, 4], 1, 0.1)],
)
def test_matches_reference(cycles, warmup, alpha):
    schedule = schedules.RestartingCosineDecay(0.01, cycles, warmup, alpha)
    for step in range(sum(cycles) + 3):
        np.testing.assert_allclose(
            float(schedule(step)), _reference(step, 0.01, cycles, warmup, alpha),
            rtol=1e-5, atol=1e-9)


def test_restarts_at_each_cycle():
    schedule = schedules.RestartingCosineDecay(1.0, [5, 5, 5], 0, 0.0)
    assert float(schedule(5)) == pytest.approx(1.0)
    assert float(schedule(10)) == pytest.approx(1.0)
    assert float(schedule(9)) < 0.2


def test_generation_epochs_and_lookup():
    epochs = generation_epochs(5, 7, 1)
    assert epochs == [8, 7, 7, 7, 7]
    assert schedules.generation_of_epoch(0, epochs) == (0, 0)
    assert schedules.generation_of_epoch(7, epochs) == (0, 7)
    assert schedules.generation_of_epoch(8, epochs) == (1, 0)
    assert schedules.generation_of_epoch(35, epochs) == (4, 6)
    with pytest.raises(ValueError, match="past the last"):
        schedules.generation_of_epoch(36, epochs)


@pytest.mark.parametrize(
    "args, match",
    [((0.0, [5]), "learning_rate"), ((1.0, []), "cycle_steps"),
     ((1.0, [5], 5), "warmup_steps")],
)
def test_invalid_arguments(args, match):
    with pytest.raises(ValueError, match=match):
        schedules.RestartingCosineDecay(*args)


def test_config_round_trip():
    schedule = schedules.RestartingCosineDecay(0.5, [3, 4], 1, 0.2)
    clone = schedules.RestartingCosineDecay.from_config(schedule.get_config())
    assert clone.get_config() == schedule.get_config()
