"""Tests of the tf_keras / tfmot bridge for quantization-aware training."""

import numpy as np
import pytest
import tensorflow as tf

from tat_keras import models
from tat_keras import ordinal
from tat_keras.export import qat
from tat_keras.export import tflite
from tat_keras.export import tflite_test


@pytest.fixture(scope="module")
def model():
    return tflite_test.tiny_gaze_net(seed=3)


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


@pytest.mark.slow
def test_qat_exports_an_integer_model_with_uint8_inputs(model, tmp_path):
    data = tflite_test.pixels(4)
    gaze = np.zeros((4, 2), "float32")
    dataset = tf.data.Dataset.from_tensor_slices((data, gaze)).batch(2)
    path = str(tmp_path / "gaze_qat.tflite")
    tflite.export_tflite(model, path, "qat", qat_dataset=dataset, qat_steps=2)
    from ai_edge_litert.interpreter import Interpreter

    interpreter = Interpreter(model_path=path)
    signature = interpreter.get_signature_runner()
    for detail in signature.get_input_details().values():
        assert detail["dtype"] == np.uint8
    assert np.int8 in {d["dtype"] for d in interpreter.get_tensor_details()}
    outputs = signature(**{k: v[:1].astype("uint8") for k, v in data.items()})
    assert outputs["gaze_cm"].shape == (1, 2) and outputs["gaze_cm"].dtype == np.float32
    counts = outputs["gaze_cm"][0] - np.array([model.x_low, model.y_low]) - 0.5
    np.testing.assert_allclose(counts, np.round(counts), atol=1e-5)
    assert tflite.read_metadata(path)["mode"] == "qat"
