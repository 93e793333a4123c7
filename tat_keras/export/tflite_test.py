"""Tests of the TFLite export: serving graph, modes, metadata, MAC count."""

import json
import os

import keras
import numpy as np
import pytest
import tensorflow as tf

from tat_keras import models
from tat_keras.export import runner
from tat_keras.export import tflite


# Crop size of the shared export (`tiny_export` in conftest.py): the
# smallest the network takes, to keep conversion and calibration short.
TINY_SIZE = 32
# The int8 file's probabilities leave a LOGISTIC op whose int8 output has the
# fixed scale 1/256: rounding alone moves them by half a step. One step
# allows that rounding plus as much again carried from the quantized layers
# below; the measured largest difference on `pixels(16)` is 0.0024.
PROBABILITY_STEP = 1.0 / 256.0


def tiny_gaze_net(seed=0, image_size=64):
    """A width-0.125 GazeNet with non-trivial batch-norm statistics."""
    keras.utils.set_random_seed(seed)
    model = models.GazeNet(
        image_size=image_size, width_multiplier=0.125, x_bins=12, y_bins=10,
        x_low=-6.0, x_bin_size=1.0, y_low=-5.0, y_bin_size=1.0,
    )
    rng = np.random.default_rng(seed)
    for layer in model.layers:
        if isinstance(layer, keras.layers.BatchNormalization):
            gamma, beta, mean, var = layer.get_weights()
            layer.set_weights([
                gamma * rng.uniform(0.5, 1.5, gamma.shape), rng.normal(0, 0.1, beta.shape),
                rng.normal(0, 0.5, mean.shape), rng.uniform(0.5, 2.0, var.shape),
            ])
    return model


def pixels(batch, seed=1, size=TINY_SIZE):
    rng = np.random.default_rng(seed)
    return {n: rng.integers(0, 256, (batch, size, size, 3)).astype("float32")
            for n in models.INPUT_NAMES}


def calibration(num=8, size=TINY_SIZE):
    data = pixels(num, seed=2, size=size)
    dataset = tf.data.Dataset.from_tensor_slices(
        ({k: v[:, None] for k, v in data.items()}, np.zeros((num, 1, 2), "float32")))
    return tflite.representative_dataset_from(dataset, num)


def assert_matches(expected, outputs, bins, tolerance):
    """A file's outputs against the bin probabilities `expected` of the model
    it was converted from: probabilities within `tolerance`, and gaze_cm
    off by at most one bin per expected probability within `tolerance` of
    0.5 (the only bins that may flip)."""
    exact = []
    for axis, key in enumerate(("x", "y")):
        np.testing.assert_allclose(outputs[key], expected[key], atol=tolerance)
        np.testing.assert_allclose(  # gaze_cm decodes the file's own bins
            outputs["gaze_cm"][:, axis], bins[key].decode(outputs[key]), atol=1e-5)
        ambiguous = np.sum(np.abs(expected[key] - 0.5) <= tolerance, axis=-1)
        error = np.abs(outputs["gaze_cm"][:, axis] - bins[key].decode(expected[key]))
        assert np.all(error <= bins[key].bin_size * ambiguous + 1e-5), (error, ambiguous)
        exact.append(ambiguous == 0)
    # Some samples have no bin that close to 0.5, and their gaze_cm must
    # then be exactly the model's: the check is not empty.
    assert np.any(exact)


@pytest.fixture(scope="module")
def model(tiny_export):
    return tiny_export["model"]


@pytest.fixture(scope="module")
def exported(tiny_export):
    return tiny_export


@pytest.mark.parametrize("dtype", ["float32", "uint8"])
def test_serving_model_decodes_like_predict_cm(model, dtype):
    serving = tflite.serving_model(model, dtype)
    batch = {k: v[:1].astype(dtype) for k, v in pixels(1).items()}
    outputs = serving(batch)
    np.testing.assert_allclose(
        np.asarray(outputs["gaze_cm"]), model.predict_cm(pixels(1)), atol=1e-6)
    assert serving.inputs[0].dtype == dtype
    assert set(outputs) == {"gaze_cm", "x", "y", "final_feature"}


def test_float32_file_matches_keras_gaze_cm(model, exported):
    gaze_model = runner.TFLiteGazeModel(exported["float32"])
    assert gaze_model.input_dtypes["face"] == np.float32
    batch = pixels(4)
    np.testing.assert_allclose(gaze_model(batch), model.predict_cm(batch), atol=1e-3)
    outputs = gaze_model.run(batch)
    np.testing.assert_allclose(outputs["x"], model.predict(batch, verbose=0)["x"], atol=1e-4)


@pytest.mark.parametrize("mode", ["float32", "int8"])
def test_file_outputs_the_final_feature(model, exported, mode):
    feature_model = keras.Model(model.inputs, model.get_layer("final_feature").output)
    batch = pixels(3)
    expected = np.asarray(feature_model.predict(batch, verbose=0))
    outputs = runner.TFLiteGazeModel(exported[mode]).run(batch)
    assert outputs["final_feature"].shape == (3, 128)
    # int8: the feature goes through the int8 network, so it is close, not equal.
    tolerance = 1e-4 if mode == "float32" else 0.1 * np.abs(expected).max()
    np.testing.assert_allclose(outputs["final_feature"], expected, atol=tolerance)
    assert "final_feature" in tflite.read_metadata(exported[mode])["outputs"]


def test_int8_file_takes_raw_uint8_pixels_and_decodes_in_float(model, exported):
    from ai_edge_litert.interpreter import Interpreter

    interpreter = Interpreter(model_path=exported["int8"])
    signature = interpreter.get_signature_runner()
    for name, detail in signature.get_input_details().items():
        assert detail["dtype"] == np.uint8, name
        assert tuple(detail["shape"]) == (1, TINY_SIZE, TINY_SIZE, 3)
        assert detail["quantization"] == (0.0, 0)  # raw pixels, no scale
    gaze = signature.get_output_details()["gaze_cm"]
    assert gaze["dtype"] == np.float32 and tuple(gaze["shape"]) == (1, 2)
    # The network is quantized...
    tensor_types = {d["dtype"] for d in interpreter.get_tensor_details()}
    assert np.int8 in tensor_types
    # ...but gaze_cm is exactly on the grid low + bin_size * (count + 0.5).
    predicted = runner.TFLiteGazeModel(exported["int8"])(pixels(3))
    for axis, low in ((0, model.x_low), (1, model.y_low)):
        counts = predicted[:, axis] - low - 0.5
        np.testing.assert_allclose(counts, np.round(counts), atol=1e-5)


def test_int8_file_matches_keras_within_the_quantization_step(model, exported):
    batch = pixels(16)
    outputs = runner.TFLiteGazeModel(exported["int8"]).run(batch)
    assert_matches(model.predict(batch, verbose=0), outputs, model.bins, PROBABILITY_STEP)


@pytest.mark.parametrize("mode", ["float32", "int8"])
def test_metadata_in_file_and_beside_it(model, exported, mode):
    stored = tflite.read_metadata(exported[mode])
    with open(exported[mode] + ".json") as f:
        sidecar = json.load(f)
    for metadata in (stored, sidecar):
        assert metadata["mode"] == mode
        assert metadata["image_size"] == TINY_SIZE
        assert metadata["x"] == {"low": -6.0, "bin_size": 1.0, "num_bins": 12}
        assert metadata["y"] == {"low": -5.0, "bin_size": 1.0, "num_bins": 10}
        assert metadata["inputs"]["face"]["dtype"] == tflite.input_dtype_of(mode)
    assert sidecar["file_bytes"] == os.path.getsize(exported[mode])


def test_metadata_round_trip_keeps_the_model_runnable(exported):
    with open(exported["float32"], "rb") as f:
        content = f.read()
    updated = tflite.add_metadata(content, {"mode": "float32", "note": "again"})
    assert tflite.read_metadata(updated) == {"mode": "float32", "note": "again"}
    from ai_edge_litert.interpreter import Interpreter

    signature = Interpreter(model_content=updated).get_signature_runner()
    outputs = signature(**{k: v[:1] for k, v in pixels(1).items()})
    assert outputs["gaze_cm"].shape == (1, 2)


def test_count_macs_matches_layer_by_layer_formula():
    model = models.GazeNet(width_multiplier=0.125, x_bins=7, y_bins=9)
    expected = 0
    for branch_calls, prefix in ((1, "face"), (2, "eye")):
        size, channels = 64, 3
        for stage_index, stage in enumerate(models.CASIA_STAGES):
            for conv_name, filters in stage:
                filters = models.scaled_filters(filters, 0.125)
                expected += branch_calls * size * size * 9 * channels * filters
                channels = filters
            if stage_index < 4:
                size //= 2
        expected += branch_calls * channels * 128
    expected += 384 * 128 + 128 * 7 + 128 * 9
    assert tflite.count_macs(model) == expected


def test_convert_rejects_unknown_mode(tmp_path):
    with pytest.raises(ValueError, match="mode must be one of float32"):
        tflite.convert(str(tmp_path), "int4")


def test_int8_needs_calibration_data(tmp_path):
    with pytest.raises(ValueError, match="needs calibration data"):
        tflite.convert(str(tmp_path), "int8")


def test_qat_export_needs_training_data(model, tmp_path):
    with pytest.raises(ValueError, match="pass qat_dataset"):
        tflite.export_tflite(model, str(tmp_path / "q.tflite"), "qat")
