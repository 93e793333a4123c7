"""Tests of the eye-blind predictors against NumPy re-derivations."""

import numpy as np
import pytest

from tat_keras import baselines


def _labels(rng, n):
    return {
        "gaze_cm": rng.normal(size=(n, 2)) * 5.0,
        "device": rng.choice(np.array([b"iPhone 6", b"iPhone 8", b"iPad Air 2"]), n),
        "orientation": rng.integers(1, 5, n),
    }


def test_device_orientation_prior_matches_per_pair_means():
    rng = np.random.default_rng(0)
    train, held_out = _labels(rng, 200), _labels(rng, 50)
    held_out["device"][0] = b"Unseen phone"
    prediction = baselines.device_orientation_prior(train, held_out)
    for i in range(50):
        chosen = ((train["device"] == held_out["device"][i])
                  & (train["orientation"] == held_out["orientation"][i]))
        expected = (train["gaze_cm"][chosen].mean(axis=0) if chosen.any()
                    else train["gaze_cm"].mean(axis=0))
        np.testing.assert_allclose(prediction[i], expected)
    np.testing.assert_allclose(prediction[0], train["gaze_cm"].mean(axis=0))


def test_training_mean_repeats_the_mean():
    rng = np.random.default_rng(1)
    train, held_out = _labels(rng, 30), _labels(rng, 7)
    prediction = baselines.training_mean(train, held_out)
    assert prediction.shape == (7, 2)
    np.testing.assert_allclose(prediction, np.tile(train["gaze_cm"].mean(0), (7, 1)))


def test_prior_needs_training_frames():
    empty = {"gaze_cm": np.zeros((0, 2)), "device": np.array([]),
             "orientation": np.array([])}
    with pytest.raises(ValueError, match="training labels are empty"):
        baselines.device_orientation_prior(empty, empty)
