"""Tests of the geometric oracles of the synthetic twin."""

import dataclasses

import numpy as np

from tat_keras.data import synthetic
from tat_keras.data.synthetic import oracles

_CONFIG = synthetic.SyntheticConfig(
    num_train_subjects=6, num_val_subjects=0, num_test_subjects=3,
    dots_per_recording=6, frames_per_dot=2, stare_dots_per_recording=1,
    stare_frames_per_dot=3)


def test_screen_hit_scales_with_distance_along_the_eye_ray():
    rng = np.random.default_rng(0)
    for _ in range(20):
        eye = np.array([rng.normal(0, 4), rng.normal(-6, 4), rng.uniform(20, 45)])
        label = rng.normal(0, 6, 2)
        direction = np.array([label[0], label[1], 0.0]) - eye
        np.testing.assert_allclose(oracles.screen_hit(eye, direction), label,
                                   atol=1e-12)
        # Same ray, other distance: the hit scales by the distance ratio.
        scale = rng.uniform(0.6, 1.5)
        np.testing.assert_allclose(oracles.screen_hit(eye * scale, direction),
                                   scale * label, atol=1e-12)


def test_oracles_against_a_numpy_rederivation():
    errors = oracles.oracle_errors(_CONFIG)
    train = oracles.kept_frames(_CONFIG, "train")
    test = oracles.kept_frames(_CONFIG, "test")
    assert errors["frames"] == len(test) > 0
    means = {}
    for pair in {p for p, *_ in train}:
        means[pair] = np.mean([e for p, e, *_ in train if p == pair], axis=0)
    overall = np.mean([e for _, e, *_ in train], axis=0)
    direction_errors, distance_errors, look_errors = [], [], []
    for pair, eye, label, look_at in test:
        guess = means.get(pair, overall)
        # Eyes at the guess, looking along the true direction (x, y, z).
        t = -guess[2] / (0.0 - eye[2])
        hit = guess[:2] + t * (label - eye[:2])
        direction_errors.append(np.hypot(*(hit - label)))
        distance_errors.append(np.hypot(*label) * abs(guess[2] / eye[2] - 1.0))
        look_errors.append(np.hypot(*(look_at[:2] - label)))
    np.testing.assert_allclose(errors["direction_pair_mean_eye"],
                               np.mean(direction_errors), rtol=1e-12)
    np.testing.assert_allclose(errors["camera_ray_pair_mean_distance"],
                               np.mean(distance_errors), rtol=1e-12)
    np.testing.assert_allclose(errors["eye_target_vs_label"], np.mean(look_errors),
                               rtol=1e-12)


def test_without_geometric_nuisances_the_eyes_look_at_the_dot():
    clean = dataclasses.replace(_CONFIG, nuisances="sensor_noise_only")
    assert oracles.oracle_errors(clean)["eye_target_vs_label"] == 0.0
    assert oracles.oracle_errors(_CONFIG)["eye_target_vs_label"] >= 0.0


def test_one_distance_for_all_makes_the_distance_oracle_exact():
    # Every subject at 30 cm: knowing the eye's ray is then enough, up to the
    # small head motion along the line of sight.
    fixed = dataclasses.replace(_CONFIG, distance_range_cm=(30.0, 30.0))
    errors = oracles.oracle_errors(fixed)
    assert 0.0 < errors["camera_ray_pair_mean_distance"] < 0.1
    assert errors["direction_pair_mean_eye"] > 0.5  # the lean still misleads
    still = oracles.oracle_errors(dataclasses.replace(fixed, nuisances="sensor_noise_only"))
    assert still["camera_ray_pair_mean_distance"] < 1e-9
