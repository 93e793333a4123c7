"""Tests of the tf_keras / tfmot bridge for quantization-aware training."""

import numpy as np
import pytest
import tensorflow as tf

from tat_keras import models
from tat_keras import ordinal
from tat_keras.export import qat
from tat_keras.export import runner
from tat_keras.export import tflite
from tat_keras.export import tflite_test


@pytest.fixture(scope="module")
def model():
    model = tflite_test.tiny_gaze_net(seed=3, image_size=tflite_test.TINY_SIZE)
    # Head biases falling across the bins, as in a trained ordinal head:
    # most probabilities sit away from 0.5, so decoding is not a coin toss.
    for head in ("x", "y"):
        layer = model.get_layer(head)
        layer.bias.assign(np.linspace(3.0, -3.0, layer.units).astype("float32"))
    return model


def test_twin_matches_keras_model_before_fine_tuning(model):
    twin = qat.build_tf_keras_twin(model)
    assert qat.max_probability_difference(model, twin, tflite_test.pixels(4)) < 1e-5


def test_twin_has_three_unshared_branches_loaded_from_the_eye_branch(model):
    twin = qat.build_tf_keras_twin(model)
    names = {layer.name for layer in twin.layers}
    assert {"left_eye_conv11", "right_eye_conv11", "face_conv11"} <= names
    assert "rescaling" not in names
    eye = model.get_layer("eye_conv52").get_weights()[0]
    for side in ("left_eye", "right_eye"):
        np.testing.assert_array_equal(twin.get_layer(f"{side}_conv52").get_weights()[0], eye)


@pytest.mark.parametrize("soft", [False, True])
def test_ordinal_loss_matches_keras_ordinal_loss(soft):
    rng = np.random.default_rng(0)
    y_pred = rng.uniform(0.01, 0.99, (3, 6)).astype("float32")
    y_true = rng.uniform(size=(3, 6)).astype("float32")
    if not soft:
        y_true = (y_true > 0.5).astype("float32")
    expected = -(y_true * np.log(y_pred) + (1 - y_true) * np.log(1 - y_pred)).sum(-1)
    np.testing.assert_allclose(qat.ordinal_loss(y_true, y_pred).numpy(), expected, rtol=1e-5)
    np.testing.assert_allclose(
        float(ordinal.OrdinalLoss()(y_true, y_pred)), expected.mean(), rtol=1e-5)


def test_training_dataset_encodes_ordinal_targets(model):
    data = tflite_test.pixels(2)
    gaze = np.array([[0.2, -1.3], [3.0, 2.0]], "float32")
    dataset = tf.data.Dataset.from_tensors((data, gaze))
    features, targets = next(iter(qat.training_dataset(dataset, model)))
    np.testing.assert_allclose(features["face"].numpy(), data["face"] / 127.5 - 1, atol=1e-6)
    np.testing.assert_array_equal(targets["x"].numpy(), model.bins["x"].encode(gaze[:, 0]))


def test_rejects_negative_steps(model):
    with pytest.raises(ValueError, match="steps must be a non-negative integer"):
        qat.quantization_aware_finetune(model, None, steps=-1)


def test_serving_graph_decodes_with_the_model_bins(model, tmp_path):
    """The SavedModel of the (unquantized) twin gives the Keras model's
    probabilities and its gaze_cm from uint8 pixels."""
    twin = qat.build_tf_keras_twin(model)
    saved = tf.saved_model.load(qat.export_saved_model(twin, model, str(tmp_path / "saved")))
    batch = tflite_test.pixels(1)
    outputs = saved.signatures["serving_default"](
        **{k: tf.constant(v.astype("uint8")) for k, v in batch.items()})
    np.testing.assert_allclose(outputs["x"].numpy(), model.predict(batch, verbose=0)["x"],
                               atol=1e-5)
    np.testing.assert_allclose(outputs["gaze_cm"].numpy(), model.predict_cm(batch), atol=1e-5)


@pytest.mark.slow
def test_qat_file_matches_the_quantization_aware_model(model, tmp_path):
    data = tflite_test.pixels(16)
    gaze = np.zeros((16, 2), "float32")
    dataset = tf.data.Dataset.from_tensor_slices((data, gaze)).batch(4)
    quantized = qat.quantization_aware_finetune(model, dataset, steps=2)
    saved = qat.export_saved_model(quantized, model, str(tmp_path / "saved"))
    path = tflite.write_tflite(tflite.convert(saved, "qat"), tflite.metadata_of(model, "qat"),
                               str(tmp_path / "gaze_qat.tflite"))
    from ai_edge_litert.interpreter import Interpreter

    interpreter = Interpreter(model_path=path)
    for detail in interpreter.get_signature_runner().get_input_details().values():
        assert detail["dtype"] == np.uint8
    assert np.int8 in {d["dtype"] for d in interpreter.get_tensor_details()}
    # The file runs the fake-quantized network in int8 with the learned
    # ranges. The fake-quantized model rounds each activation to the same
    # grid but computes in float between the rounding points, while the
    # int8 kernels requantize with fixed-point multipliers and the converter
    # folds batch norm into the convolutions: each moves a value by about
    # one step of its tensor. Four steps of the int8 probabilities (1/256)
    # cover that; the measured largest difference on these 16 samples is
    # 0.0125 (3.2 steps), and 56% of the decodings have no bin that close
    # to 0.5, so their gaze_cm must be exact.
    outputs = runner.TFLiteGazeModel(path).run(data)
    expected = quantized.predict(
        {n: qat.normalize_pixels(data[n]).numpy() for n in models.INPUT_NAMES}, verbose=0)
    tflite_test.assert_matches(expected, outputs, model.bins,
                               4 * tflite_test.PROBABILITY_STEP)
    assert tflite.read_metadata(path)["mode"] == "qat"
