"""Tests of the per-user calibrators against NumPy re-derivations."""

import json

import numpy as np
import pytest

from tat_keras import calibration
from tat_keras import models


# Affine ---------------------------------------------------------------------


@pytest.mark.parametrize("matrix, offset", [
    ([[1.2, 0.1], [-0.05, 0.9]], [0.7, -1.3]),
    ([[0.8, -0.3], [0.2, 1.1]], [-2.0, 0.4]),
])
def test_affine_fit_recovers_a_known_distortion_exactly(matrix, offset, dots_and_frames):
    true = dots_and_frames(5, seed=1)
    # The network's predictions: the truth seen through the inverse map.
    matrix, offset = np.array(matrix), np.array(offset)
    predicted = (true - offset) @ np.linalg.inv(matrix).T
    affine = calibration.AffineCalibrator(alpha=0.0).fit({"gaze_cm": predicted}, true)
    np.testing.assert_allclose(affine.matrix, matrix, atol=1e-10)
    np.testing.assert_allclose(affine.offset, offset, atol=1e-10)
    np.testing.assert_allclose(affine.predict({"gaze_cm": predicted}), true, atol=1e-10)


@pytest.mark.parametrize("alpha", [0.1, 1.0, 10.0])
def test_regularized_affine_matches_augmented_least_squares(alpha, dots_and_frames):
    rng = np.random.default_rng(2)
    true = dots_and_frames(3, seed=3)
    predicted = true + rng.normal(0, 1.0, true.shape)
    n = len(true)
    # mean |A p + c - t|^2 + alpha |A - I|^2 as one least-squares problem in
    # the unknowns (A^T, c): extra rows sqrt(n alpha) [I, 0] -> sqrt(n alpha) I.
    design = np.concatenate([
        np.concatenate([predicted, np.ones((n, 1))], axis=1),
        np.sqrt(n * alpha) * np.concatenate([np.eye(2), np.zeros((2, 1))], axis=1),
    ])
    target = np.concatenate([true, np.sqrt(n * alpha) * np.eye(2)])
    solution = np.linalg.lstsq(design, target, rcond=None)[0]
    affine = calibration.AffineCalibrator(alpha=alpha).fit({"gaze_cm": predicted}, true)
    np.testing.assert_allclose(affine.matrix, solution[:2].T, atol=1e-10)
    np.testing.assert_allclose(affine.offset, solution[2], atol=1e-10)


def test_affine_with_one_dot_is_a_pure_offset():
    true = np.tile([[1.0, -2.0]], (6, 1))
    predicted = np.tile([[0.5, 0.5]], (6, 1))
    affine = calibration.AffineCalibrator(alpha=1.0).fit({"gaze_cm": predicted}, true)
    np.testing.assert_allclose(affine.matrix, np.eye(2))
    np.testing.assert_allclose(affine.predict({"gaze_cm": [[3.0, 3.0]]}), [[3.5, 0.5]])


# Ridge ----------------------------------------------------------------------


@pytest.mark.parametrize("alpha", [0.01, 1.0, 100.0])
def test_ridge_matches_numpy_closed_form(alpha, dots_and_frames):
    rng = np.random.default_rng(4)
    n, d = 40, 8
    features = rng.normal(1.0, 2.0, (n, d))
    predicted = rng.normal(0, 3, (n, 2))
    true = dots_and_frames(10, seed=5)
    samples = {"final_feature": features, "gaze_cm": predicted}
    ridge = calibration.RidgeCalibrator(alpha=alpha).fit(samples, true)
    # Penalized least squares with an unpenalized intercept column:
    # |F W + 1 b - R|^2 + n lambda |W|^2, lambda = alpha mean|f|^2 / d.
    penalty = alpha * np.mean(np.sum(features**2, axis=1)) / d
    design = np.concatenate([
        np.concatenate([features, np.ones((n, 1))], axis=1),
        np.concatenate([np.sqrt(n * penalty) * np.eye(d), np.zeros((d, 1))], axis=1),
    ])
    target = np.concatenate([true - predicted, np.zeros((d, 2))])
    solution = np.linalg.lstsq(design, target, rcond=None)[0]
    np.testing.assert_allclose(ridge.kernel, solution[:d], atol=1e-9)
    np.testing.assert_allclose(ridge.bias, solution[d], atol=1e-9)
    np.testing.assert_allclose(
        ridge.predict(samples), predicted + features @ solution[:d] + solution[d], atol=1e-9)


def test_strong_ridge_falls_back_on_the_mean_offset(dots_and_frames):
    rng = np.random.default_rng(6)
    samples = {"final_feature": rng.normal(size=(12, 5)), "gaze_cm": rng.normal(size=(12, 2))}
    true = dots_and_frames(3, seed=7)
    ridge = calibration.RidgeCalibrator(alpha=1e12).fit(samples, true)
    offset = np.mean(true - samples["gaze_cm"], axis=0)
    np.testing.assert_allclose(ridge.predict(samples), samples["gaze_cm"] + offset, atol=1e-6)


# Head fine-tuning -----------------------------------------------------------


def test_head_fine_tuning_lowers_the_loss_and_the_error(dots_and_frames, random_heads):
    heads = random_heads()
    rng = np.random.default_rng(10)
    features = rng.uniform(0, 1, (24, 16))
    true = dots_and_frames(6, seed=11, spread=4.0)
    tuning = calibration.HeadFineTuning(heads, steps=300, learning_rate=0.5)
    tuning.fit({"final_feature": features}, true)
    assert tuning.losses[-1] < 0.5 * tuning.losses[0]
    assert np.all(np.diff(tuning.losses) <= 1e-9)
    before = np.linalg.norm(heads.predict_cm(features) - true, axis=1).mean()
    after = np.linalg.norm(tuning.predict({"final_feature": features}) - true, axis=1).mean()
    assert after < 0.5 * before


# Bad input ------------------------------------------------------------------


def test_fewer_points_than_the_method_needs_are_refused(dots_and_frames):
    true = dots_and_frames(2)
    samples = {"final_feature": np.ones((len(true), 4)), "gaze_cm": true + 1.0}
    with pytest.raises(ValueError, match="ridge calibration needs at least 3 points .* hold 2"):
        calibration.RidgeCalibrator().fit(samples, true)
    with pytest.raises(ValueError, match="affine calibration needs at least 3 points"):
        calibration.AffineCalibrator(alpha=0.0).fit(samples, true)


@pytest.mark.parametrize("where", ["final_feature", "gaze_cm", "truth"])
def test_non_finite_values_are_refused(where, dots_and_frames):
    true = dots_and_frames(3)
    samples = {"final_feature": np.ones((len(true), 4)), "gaze_cm": true + 1.0}
    if where == "truth":
        true = true.copy()
        true[2, 1] = np.inf
        match = "gaze_cm holds 1 non-finite"
    else:
        samples[where] = samples[where].copy()
        samples[where][0, 0] = np.nan
        match = rf"samples\['{where}'\] holds 1 non-finite"
    with pytest.raises(ValueError, match=match):
        calibration.RidgeCalibrator().fit(samples, true)


def test_points_from_more_than_one_subject_are_refused(dots_and_frames):
    true = dots_and_frames(3)
    subjects = np.array([4] * 6 + [17] * 6)
    with pytest.raises(ValueError, match=r"come from 2 subjects \(4, 17\).*fit one per subject"):
        calibration.AffineCalibrator().fit({"gaze_cm": true}, true, subjects=subjects)


def test_mismatched_and_missing_samples_are_refused(dots_and_frames):
    true = dots_and_frames(3)
    with pytest.raises(ValueError, match="missing \\['final_feature'\\]"):
        calibration.RidgeCalibrator().fit({"gaze_cm": true}, true)
    with pytest.raises(ValueError, match="same number of samples"):
        calibration.AffineCalibrator().fit({"gaze_cm": true[:-1]}, true)
    with pytest.raises(ValueError, match="not fitted"):
        calibration.AffineCalibrator().predict({"gaze_cm": true})


def test_constructor_arguments_are_validated(random_heads):
    with pytest.raises(ValueError, match="alpha must be a finite number >= 0. Received: alpha=-1"):
        calibration.AffineCalibrator(alpha=-1)
    with pytest.raises(ValueError, match="alpha must be a positive number"):
        calibration.RidgeCalibrator(alpha=0.0)
    with pytest.raises(ValueError, match="steps must be a positive integer. Received: steps=0"):
        calibration.HeadFineTuning(random_heads(), steps=0)
    with pytest.raises(ValueError, match="heads must be an OrdinalHeads"):
        calibration.HeadFineTuning({"x_kernel": 0})


# Saving and fingerprints ------------------------------------------------------


def fitted(method, net, dots_and_frames):
    rng = np.random.default_rng(14)
    true = dots_and_frames(4, seed=15)
    samples = {"final_feature": rng.uniform(0, 1, (len(true), 128)), "gaze_cm": true + 0.5}
    calibrator = calibration.make_calibrator(method, net)
    if method == "heads":
        calibrator = calibration.HeadFineTuning(
            calibration.OrdinalHeads.from_model(net), steps=5, learning_rate=0.1,
            model_fingerprint=calibration.model_fingerprint(net))
    return calibrator.fit(samples, true), samples


@pytest.mark.parametrize("method, suffix", [("affine", ".json"), ("ridge", ".json"), ("heads", ".npz")])
def test_save_load_round_trip(net, tmp_path, method, suffix, dots_and_frames):
    calibrator, samples = fitted(method, net, dots_and_frames)
    path = calibrator.save(tmp_path / f"calibrator{suffix}")
    loaded = calibration.load(path, net)
    assert type(loaded) is type(calibrator)
    assert loaded.num_points == 4 and loaded.get_config() == calibrator.get_config()
    np.testing.assert_allclose(loaded.predict(samples), calibrator.predict(samples))


@pytest.mark.parametrize("method, suffix", [("affine", ".json"), ("heads", ".npz")])
def test_calibrator_refuses_another_model(net, tmp_path, method, suffix, dots_and_frames):
    calibrator, _ = fitted(method, net, dots_and_frames)
    path = calibrator.save(tmp_path / f"calibrator{suffix}")
    other = models.GazeNet.from_config(net.get_config())
    other.set_weights(net.get_weights())
    assert calibration.model_fingerprint(other) == calibration.model_fingerprint(net)
    kernel, bias = other.get_layer("x").get_weights()
    other.get_layer("x").set_weights([kernel, bias + 1e-3])
    with pytest.raises(ValueError, match="fitted on another model .*calibrate again"):
        calibration.load(path, other)


def test_save_needs_a_fingerprint(tmp_path):
    affine = calibration.AffineCalibrator().fit({"gaze_cm": np.zeros((2, 2))}, np.ones((2, 2)))
    with pytest.raises(ValueError, match="model_fingerprint is not set"):
        affine.save(tmp_path / "a.json")


def test_saved_json_is_readable(net, tmp_path, dots_and_frames):
    calibrator, _ = fitted("affine", net, dots_and_frames)
    with open(calibrator.save(tmp_path / "affine.json")) as f:
        data = json.load(f)
    assert data["method"] == "affine" and data["format"] == calibration.FORMAT
    assert np.asarray(data["state"]["matrix"]).shape == (2, 2)


def test_method_for_number_of_points():
    assert calibration.method_for(1) == "affine"
    assert calibration.method_for(calibration.RIDGE_FROM_POINTS - 1) == "affine"
    assert calibration.method_for(calibration.RIDGE_FROM_POINTS) == "ridge"
    with pytest.raises(ValueError, match="num_points must be a positive integer"):
        calibration.method_for(0)
