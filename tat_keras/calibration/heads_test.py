"""Tests of the NumPy heads against the network and Keras's autodiff."""

import numpy as np
import tensorflow as tf

from tat_keras import calibration
from tat_keras import models
from tat_keras import ordinal


def test_head_loss_and_gradients_match_ordinal_loss_autodiff(net):
    rng = np.random.default_rng(8)
    heads = calibration.OrdinalHeads.from_model(net)
    features = rng.uniform(0, 1, (6, 128)).astype("float32")
    gaze = rng.uniform(-4, 4, (6, 2)).astype("float32")
    weight = np.array([1.0, 2.0, 0.5, 1.0, 0.0, 1.5])
    loss, gradients = heads.loss_and_gradients(features, gaze, weight)

    layers = {h: net.get_layer(h) for h in ("x", "y")}
    ordinal_loss = ordinal.OrdinalLoss(reduction=None)
    with tf.GradientTape() as tape:
        total = 0.0
        for axis, head in enumerate(("x", "y")):
            probs = layers[head](tf.constant(features))
            per_sample = ordinal_loss(net.bins[head].encode(gaze[:, axis]), probs)
            total += tf.reduce_sum(per_sample * weight) / weight.sum()
    variables = [v for h in ("x", "y") for v in (layers[h].kernel, layers[h].bias)]
    expected = tape.gradient(total, variables)
    np.testing.assert_allclose(loss, float(total), rtol=1e-5)
    names = ["x_kernel", "x_bias", "y_kernel", "y_bias"]
    for name, value in zip(names, expected):
        np.testing.assert_allclose(gradients[name], value.numpy(), rtol=1e-4, atol=1e-6)


def test_heads_predict_like_the_network(net):
    extractor = calibration.outputs_with_feature(net)
    rng = np.random.default_rng(9)
    batch = {n: rng.uniform(0, 255, (3, 64, 64, 3)).astype("float32") for n in models.INPUT_NAMES}
    outputs = extractor(batch)
    heads = calibration.OrdinalHeads.from_model(net)
    np.testing.assert_allclose(
        heads.predict_cm(np.asarray(outputs["final_feature"])), net.predict_cm(batch), atol=1e-6)


def test_head_step_is_a_plain_gradient_step(random_heads):
    heads = random_heads(seed=12)
    rng = np.random.default_rng(13)
    features, gaze = rng.uniform(0, 1, (5, 16)), rng.uniform(-3, 3, (5, 2))
    loss, gradients = heads.loss_and_gradients(features, gaze)
    loss_before, stepped = heads.train_step(features, gaze, 0.1)
    assert loss_before == loss
    for name in calibration.HEAD_WEIGHT_NAMES:
        np.testing.assert_allclose(stepped.weights[name], heads.weights[name] - 0.1 * gradients[name])
