"""Test set-up shared by the whole repository.

The environment variables must be set before TensorFlow or Keras is
imported, so they sit at the top of the root `conftest.py`.
"""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("KERAS_BACKEND", "tensorflow")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402


@pytest.fixture
def rng():
    """A NumPy generator with a fixed seed, fresh for every test."""
    return np.random.default_rng(0)


@pytest.fixture
def fixed_seed():
    """Seeds Python, NumPy and the backend so weights start the same."""
    keras.utils.set_random_seed(1234)
    return 1234
