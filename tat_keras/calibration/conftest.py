"""Fixtures of the calibration tests: a small GazeNet, dots, random heads."""

import keras
import numpy as np
import pytest

from tat_keras import calibration
from tat_keras import models
from tat_keras import ordinal


@pytest.fixture(scope="module")
def net():
    keras.utils.set_random_seed(0)
    return models.GazeNet(
        width_multiplier=0.125, x_bins=12, y_bins=10, x_low=-6.0, x_bin_size=1.0,
        y_low=-5.0, y_bin_size=1.0,
    )


@pytest.fixture
def dots_and_frames():
    """`make(num_dots, frames_per_dot=4, seed=0, spread=6.0)`: the true gaze
    of `num_dots` dots, `frames_per_dot` frames each."""

    def make(num_dots, frames_per_dot=4, seed=0, spread=6.0):
        rng = np.random.default_rng(seed)
        dots = rng.uniform(-spread, spread, (num_dots, 2))
        return np.repeat(dots, frames_per_dot, axis=0)

    return make


@pytest.fixture
def random_heads():
    """`make(seed=0, feature_size=16, scale=0.3)`: `OrdinalHeads` with random
    weights on 12 x 10 bins."""

    def make(seed=0, feature_size=16, scale=0.3):
        rng = np.random.default_rng(seed)
        bins = {"x": ordinal.OrdinalBins(-6.0, 1.0, 12),
                "y": ordinal.OrdinalBins(-5.0, 1.0, 10)}
        weights = {
            "x_kernel": rng.normal(0, scale, (feature_size, 12)),
            "x_bias": rng.normal(0, 0.5, 12),
            "y_kernel": rng.normal(0, scale, (feature_size, 10)),
            "y_bias": rng.normal(0, 0.5, 10),
        }
        return calibration.OrdinalHeads(weights, bins)

    return make
