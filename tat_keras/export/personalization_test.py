"""Tests of the on-device personalization model under LiteRT."""

import json

import numpy as np
import pytest

from tat_keras import calibration
from tat_keras import ordinal
from tat_keras.export import personalization

BATCH = 16
FEATURES = 128


def heads_of(seed=0, scale=0.2):
    rng = np.random.default_rng(seed)
    bins = {"x": ordinal.OrdinalBins(-6.0, 1.0, 12), "y": ordinal.OrdinalBins(-5.0, 1.0, 10)}
    weights = {
        "x_kernel": rng.normal(0, scale, (FEATURES, 12)), "x_bias": rng.normal(0, 0.5, 12),
        "y_kernel": rng.normal(0, scale, (FEATURES, 10)), "y_bias": rng.normal(0, 0.5, 10),
    }
    # float32 values, as the file stores them.
    return calibration.OrdinalHeads(
        {k: v.astype(np.float32) for k, v in weights.items()}, bins)


@pytest.fixture(scope="module")
def heads():
    return heads_of()


@pytest.fixture(scope="module")
def content(heads):
    return personalization.convert(heads, batch_size=BATCH)


@pytest.fixture
def runner(content, heads):
    model = personalization.PersonalizationModel(content)
    model.set_weights(heads.weights)
    return model


def batch(n, seed=1):
    rng = np.random.default_rng(seed)
    features = rng.uniform(0, 1, (n, FEATURES)).astype(np.float32)
    gaze = rng.uniform(-4, 4, (n, 2)).astype(np.float32)
    return features, gaze


def test_builtin_ops_only(content):
    from ai_edge_litert.interpreter import Interpreter

    interpreter = Interpreter(model_content=content)
    ops = {op["op_name"] for op in interpreter._get_ops_details()}
    assert not [op for op in ops if op.startswith("Flex")], ops
    assert set(interpreter.get_signature_list()) == set(personalization.SIGNATURES)


def test_file_starts_from_the_heads(content, heads):
    weights = personalization.PersonalizationModel(content).get_weights()
    for name in calibration.HEAD_WEIGHT_NAMES:
        np.testing.assert_array_equal(weights[name], heads.weights[name])


def test_infer_decodes_like_numpy(runner, heads):
    features, _ = batch(7)
    np.testing.assert_allclose(runner.infer(features), heads.predict_cm(features), atol=1e-6)


@pytest.mark.parametrize("n", [BATCH, 5])
def test_train_signature_matches_a_numpy_step(runner, heads, n):
    features, gaze = batch(n, seed=2)
    loss = runner.train_step(features, gaze, learning_rate=0.05)
    expected_loss, stepped = heads.train_step(features, gaze, 0.05)
    np.testing.assert_allclose(loss, expected_loss, rtol=1e-5)
    weights = runner.get_weights()
    for name in calibration.HEAD_WEIGHT_NAMES:
        np.testing.assert_allclose(weights[name], stepped.weights[name], rtol=1e-5, atol=1e-6)
        # The step moved the weights well beyond that tolerance.
        assert np.abs(stepped.weights[name] - heads.weights[name]).max() > 1e-3


def test_train_signature_lowers_the_loss(runner):
    features, gaze = batch(10, seed=3)
    losses = runner.fit(features, gaze, steps=30, learning_rate=0.05)
    assert np.all(np.diff(losses) < 0)
    assert losses[-1] < 0.7 * losses[0]


def test_sample_weight_leaves_padded_rows_out(runner, heads):
    features, gaze = batch(6, seed=4)
    weight = np.array([1.0, 0.0, 2.0, 1.0, 0.0, 1.0])
    loss = runner.train_step(features, gaze, 0.1, sample_weight=weight)
    expected_loss, stepped = heads.train_step(features, gaze, 0.1, sample_weight=weight)
    np.testing.assert_allclose(loss, expected_loss, rtol=1e-5)
    np.testing.assert_allclose(runner.get_weights()["y_kernel"], stepped.weights["y_kernel"], atol=1e-6)


def test_set_weights_restores_a_state(runner, heads):
    other = heads_of(seed=5)
    assert runner.set_weights(other.weights) == sum(v.size for v in other.weights.values())
    features, _ = batch(4)
    np.testing.assert_allclose(runner.infer(features), other.predict_cm(features), atol=1e-6)
    runner.set_weights(heads.weights)
    np.testing.assert_allclose(runner.infer(features), heads.predict_cm(features), atol=1e-6)


def test_too_large_a_batch_is_refused(runner):
    features, gaze = batch(BATCH + 1)
    with pytest.raises(ValueError, match=f"takes 1 to {BATCH} samples. Received: {BATCH + 1}"):
        runner.train_step(features, gaze, 0.1)


def test_tflite_fine_tuning_matches_numpy_fine_tuning(runner, heads, tmp_path):
    features, gaze = batch(12, seed=6)
    gaze = np.repeat(gaze[:3], 4, axis=0)  # three dots, four frames each
    samples = {"final_feature": features}
    numpy_tuning = calibration.HeadFineTuning(heads, steps=20, learning_rate=0.05,
                                              model_fingerprint="sha256:test")
    device_tuning = personalization.TFLiteHeadFineTuning(
        runner, heads, steps=20, learning_rate=0.05, model_fingerprint="sha256:test")
    numpy_tuning.fit(samples, gaze)
    device_tuning.fit(samples, gaze)
    np.testing.assert_allclose(device_tuning.losses, numpy_tuning.losses, rtol=1e-4)
    np.testing.assert_allclose(device_tuning.predict(samples), numpy_tuning.predict(samples))
    # Saved from the device, read back as the NumPy calibrator.
    path = device_tuning.save(tmp_path / "heads.npz")
    loaded = calibration.load(path, "sha256:test")
    assert isinstance(loaded, calibration.HeadFineTuning)
    np.testing.assert_allclose(loaded.predict(samples), device_tuning.predict(samples))


def test_export_writes_file_and_metadata(tmp_path):
    from tat_keras import models

    net = models.GazeNet(width_multiplier=0.125, x_bins=8, y_bins=8)
    path = str(tmp_path / "heads.tflite")
    metadata = personalization.export_personalization(net, path, batch_size=8)
    with open(path + ".json") as f:
        written = json.load(f)
    assert written["model_fingerprint"] == calibration.model_fingerprint(net)
    assert written["batch_size"] == 8 and metadata["feature_size"] == 128
    runner = personalization.PersonalizationModel(path)
    features = np.random.default_rng(7).uniform(0, 1, (3, 128)).astype(np.float32)
    heads = calibration.OrdinalHeads.from_model(net)
    np.testing.assert_allclose(runner.infer(features), heads.predict_cm(features), atol=1e-6)
