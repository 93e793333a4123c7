import keras
import numpy as np
import pytest
import tensorflow as tf

from tat_keras import adversarial
from tat_keras import models
from tat_keras import ordinal

INPUT_NAMES = models.INPUT_NAMES


# --- NumPy twins ------------------------------------------------------------


def numpy_center_mask(probs, num_center_bins):
    """Center bins c-k .. c+k-1 around c = count(p >= 0.5), by loops."""
    mask = np.zeros_like(probs)
    for i, row in enumerate(probs):
        if num_center_bins is None:
            mask[i] = 1.0
            continue
        c = int(np.sum(row >= 0.5))
        k = num_center_bins // 2
        for b in range(c - k, c + k):
            if 0 <= b < len(row):
                mask[i, b] = 1.0
    return mask


def numpy_bce_derivative(targets, probs):
    """d/dp of -(t log p + (1 - t) log(1 - p))."""
    return -targets / probs + (1.0 - targets) / (1.0 - probs)


def sigmoid(z):
    return 1.0 / (1.0 + np.exp(-z))


# --- A tiny linear model whose input gradient NumPy can derive -------------

TINY_SHAPE = (2, 2, 3)
TINY_BINS = {"x": 6, "y": 5}


def tiny_linear_model(seed=0):
    """Flattened pixels of all three inputs -> Dense + sigmoid per head."""
    inputs = {name: keras.Input(TINY_SHAPE, name=name) for name in INPUT_NAMES}
    flat = keras.layers.Concatenate()(
        [keras.layers.Flatten()(inputs[name]) for name in INPUT_NAMES]
    )
    outputs = {
        head: keras.layers.Dense(bins, activation="sigmoid", name=head)(flat)
        for head, bins in TINY_BINS.items()
    }
    model = keras.Model(inputs, outputs)
    rng = np.random.default_rng(seed)
    features = 3 * int(np.prod(TINY_SHAPE))
    for head, bins in TINY_BINS.items():
        kernel = rng.normal(0.0, 0.004, (features, bins)).astype("float32")
        bias = np.linspace(1.5, -1.5, bins).astype("float32")
        model.get_layer(head).set_weights([kernel, bias])
    return model


def tiny_batch(batch_size=8, seed=1):
    rng = np.random.default_rng(seed)
    inputs = {
        name: rng.uniform(0.0, 255.0, (batch_size,) + TINY_SHAPE).astype("float32")
        for name in INPUT_NAMES
    }
    targets = {
        head: (rng.uniform(size=(batch_size, bins)) < 0.5).astype("float32")
        for head, bins in TINY_BINS.items()
    }
    targets = {head: -np.sort(-t, axis=1) for head, t in targets.items()}  # ordinal
    return inputs, targets


def numpy_tiny_forward(model, inputs):
    flat = np.concatenate(
        [inputs[name].reshape(len(inputs[name]), -1) for name in INPUT_NAMES], axis=1
    ).astype(np.float64)
    probs, kernels = {}, {}
    for head in TINY_BINS:
        kernel, bias = model.get_layer(head).get_weights()
        probs[head] = sigmoid(flat @ kernel + bias)
        kernels[head] = kernel.astype(np.float64)
    return probs, kernels


def numpy_tiny_input_gradient(model, inputs, targets, num_center_bins):
    probs, kernels = numpy_tiny_forward(model, inputs)
    grad_flat = 0.0
    for head in TINY_BINS:
        mask = numpy_center_mask(probs[head], num_center_bins)
        # BCE through a sigmoid: dL/dz = p - t on the counted bins.
        grad_flat = grad_flat + (mask * (probs[head] - targets[head])) @ kernels[head].T
    size = int(np.prod(TINY_SHAPE))
    return {
        name: grad_flat[:, i * size:(i + 1) * size].reshape((-1,) + TINY_SHAPE)
        for i, name in enumerate(INPUT_NAMES)
    }


def numpy_pgd(model, inputs, targets, epsilon, step_size, steps, num_center_bins):
    adversarial_inputs = {name: value.astype(np.float64) for name, value in inputs.items()}
    for _ in range(steps):
        grads = numpy_tiny_input_gradient(
            model, adversarial_inputs, targets, num_center_bins
        )
        for name in INPUT_NAMES:
            x = adversarial_inputs[name] + step_size * np.sign(grads[name])
            x = np.clip(x, inputs[name] - epsilon, inputs[name] + epsilon)
            adversarial_inputs[name] = np.clip(x, 0.0, 255.0)
    return adversarial_inputs


# --- A tiny GazeNet ---------------------------------------------------------

GAZE_BINS = 10


@pytest.fixture(scope="module")
def gaze_net():
    keras.utils.set_random_seed(3)
    model = models.GazeNet(
        image_size=32, width_multiplier=0.125, x_bins=GAZE_BINS, y_bins=GAZE_BINS
    )
    # Give batch norm non-default moving statistics.
    rng = np.random.default_rng(0)
    warm = {n: rng.uniform(0, 255, (16, 32, 32, 3)).astype("float32") for n in INPUT_NAMES}
    for layer in model.layers:
        if isinstance(layer, keras.layers.BatchNormalization):
            layer.momentum = 0.0
    model(warm, training=True)
    for layer in model.layers:
        if isinstance(layer, keras.layers.BatchNormalization):
            layer.momentum = 0.99
    return model


def gaze_batch(batch_size=16, seed=5, low=0.0, high=255.0):
    rng = np.random.default_rng(seed)
    inputs = {
        name: rng.uniform(low, high, (batch_size, 32, 32, 3)).astype("float32")
        for name in INPUT_NAMES
    }
    bins = ordinal.OrdinalBins(0.0, 1.0, GAZE_BINS)
    targets = {
        head: bins.encode(rng.uniform(0.0, GAZE_BINS + 1.0, batch_size))
        for head in ("x", "y")
    }
    return inputs, targets


# --- Center-bin loss and its gradient ---------------------------------------


@pytest.mark.parametrize("num_center_bins", [None, 2, 4, 32])
def test_center_bin_loss_gradient_matches_numpy(num_center_bins):
    rng = np.random.default_rng(7)
    probs = {
        head: np.clip(-np.sort(-rng.uniform(size=(5, 12)), axis=1), 0.02, 0.98)
        for head in ("x", "y")
    }
    targets = {head: (rng.uniform(size=(5, 12)) < 0.5).astype("float32") for head in probs}
    probs_tensors = {head: tf.constant(p, tf.float32) for head, p in probs.items()}
    with tf.GradientTape() as tape:
        tape.watch(list(probs_tensors.values()))
        loss = adversarial.center_bin_loss(targets, probs_tensors, num_center_bins)
    grads = tape.gradient(loss, probs_tensors)

    expected_loss = 0.0
    for head in probs:
        p = probs[head].astype(np.float32).astype(np.float64)
        mask = numpy_center_mask(p, num_center_bins)
        bce = -(targets[head] * np.log(p) + (1 - targets[head]) * np.log(1 - p))
        expected_loss += np.sum(mask * bce)
        expected_grad = mask * numpy_bce_derivative(targets[head], p)
        np.testing.assert_allclose(grads[head].numpy(), expected_grad, rtol=1e-4, atol=1e-5)
        outside = mask == 0
        assert np.all(grads[head].numpy()[outside] == 0.0)
    np.testing.assert_allclose(float(loss), expected_loss, rtol=1e-5)


@pytest.mark.parametrize("num_center_bins", [None, 2, 4])
def test_input_gradient_matches_numpy_on_tiny_model(num_center_bins):
    model = tiny_linear_model()
    inputs, targets = tiny_batch()
    grads = adversarial.input_gradient(
        model, inputs, targets, num_center_bins=num_center_bins
    )
    expected = numpy_tiny_input_gradient(model, inputs, targets, num_center_bins)
    for name in INPUT_NAMES:
        np.testing.assert_allclose(grads[name].numpy(), expected[name], rtol=1e-3, atol=1e-6)


def test_input_gradient_ignores_targets_outside_center_bins():
    model = tiny_linear_model()
    inputs, targets = tiny_batch()
    probs, _ = numpy_tiny_forward(model, inputs)
    flipped = {}
    for head in TINY_BINS:
        outside = numpy_center_mask(probs[head], 2) == 0
        assert outside.any()
        flipped[head] = np.where(outside, 1.0 - targets[head], targets[head]).astype("float32")
    a = adversarial.input_gradient(model, inputs, targets, num_center_bins=2)
    b = adversarial.input_gradient(model, inputs, flipped, num_center_bins=2)
    for name in INPUT_NAMES:
        np.testing.assert_allclose(a[name].numpy(), b[name].numpy(), rtol=1e-5, atol=1e-7)


# --- PGD -------------------------------------------------------------------


@pytest.mark.parametrize("num_center_bins,steps", [(None, 1), (2, 3), (4, 2)])
def test_pgd_matches_numpy_on_tiny_model(num_center_bins, steps):
    model = tiny_linear_model()
    inputs, targets = tiny_batch()
    result = adversarial.pgd_perturb(
        model, inputs, targets, epsilon=2.5, step_size=1.0, steps=steps,
        num_center_bins=num_center_bins,
    )
    expected = numpy_pgd(model, inputs, targets, 2.5, 1.0, steps, num_center_bins)
    for name in INPUT_NAMES:
        np.testing.assert_allclose(result[name].numpy(), expected[name], atol=1e-4)


def test_pgd_stays_in_epsilon_ball_and_pixel_range(gaze_net):
    near_black, targets = gaze_batch(batch_size=4, seed=1, low=0.0, high=1.0)
    near_white, _ = gaze_batch(batch_size=4, seed=2, low=254.0, high=255.0)
    inputs = {n: np.concatenate([near_black[n], near_white[n]]) for n in INPUT_NAMES}
    targets = {h: np.concatenate([t, t]) for h, t in targets.items()}
    epsilon = 3.0
    result = adversarial.pgd_perturb(
        gaze_net, inputs, targets, epsilon=epsilon, step_size=1.0, steps=4,
        num_center_bins=8,
    )
    for name in INPUT_NAMES:
        x, x_adv = inputs[name], result[name].numpy()
        assert x_adv.shape == x.shape and x_adv.dtype == np.float32
        assert np.max(np.abs(x_adv - x)) <= epsilon + 1e-4
        assert x_adv.min() >= 0.0 and x_adv.max() <= 255.0
        assert np.any(x_adv == 0.0) and np.any(x_adv == 255.0)  # clipping was active
        assert np.any(np.abs(x_adv - x) > 2.0)  # and the attack moved pixels


def test_pgd_with_zero_steps_returns_the_inputs(gaze_net):
    inputs, targets = gaze_batch(batch_size=2)
    result = adversarial.pgd_perturb(
        gaze_net, inputs, targets, epsilon=3.0, step_size=1.0, steps=0,
        num_center_bins=8,
    )
    assert set(result) == set(inputs)
    for name in INPUT_NAMES:
        np.testing.assert_array_equal(np.asarray(result[name]), inputs[name])


@pytest.mark.parametrize("num_center_bins", [4, None])
def test_pgd_does_not_lower_the_loss(gaze_net, num_center_bins):
    inputs, targets = gaze_batch(batch_size=16, seed=11)

    def per_sample_loss(batch):
        outputs = gaze_net(batch, training=False)
        loss = ordinal.OrdinalLoss(num_center_bins, reduction=None)
        return sum(loss(targets[h], outputs[h]).numpy() for h in ("x", "y"))

    before = per_sample_loss(inputs)
    result = adversarial.pgd_perturb(
        gaze_net, inputs, targets, epsilon=0.5, step_size=0.5, steps=1,
        num_center_bins=num_center_bins,
    )
    after = per_sample_loss(result)
    assert np.mean(after) > np.mean(before)
    assert np.mean(after >= before) >= 0.9


def test_pgd_leaves_batch_norm_statistics_alone(gaze_net):
    inputs, targets = gaze_batch(batch_size=4)
    before = [w.numpy().copy() for w in gaze_net.non_trainable_weights]
    trainable_before = [w.numpy().copy() for w in gaze_net.trainable_weights]
    assert before, "GazeNet should have batch-norm moving statistics"
    adversarial.pgd_perturb(
        gaze_net, inputs, targets, epsilon=3.0, step_size=1.0, steps=2,
        num_center_bins=8,
    )
    for old, new in zip(before, gaze_net.non_trainable_weights):
        np.testing.assert_array_equal(old, new.numpy())
    for old, new in zip(trainable_before, gaze_net.trainable_weights):
        np.testing.assert_array_equal(old, new.numpy())


def test_pgd_traces_into_tf_function_with_unknown_batch_size():
    model = tiny_linear_model()
    spec = (
        {n: tf.TensorSpec((None,) + TINY_SHAPE, tf.float32) for n in INPUT_NAMES},
        {h: tf.TensorSpec((None, b), tf.float32) for h, b in TINY_BINS.items()},
    )

    @tf.function(input_signature=spec)
    def attack(inputs, targets):
        return adversarial.pgd_perturb(
            model, inputs, targets, epsilon=2.0, step_size=1.0, steps=2,
            num_center_bins=4,
        )

    for batch_size in (3, 8):
        inputs, targets = tiny_batch(batch_size=batch_size, seed=batch_size)
        compiled = attack(inputs, targets)
        eager = adversarial.pgd_perturb(
            model, inputs, targets, epsilon=2.0, step_size=1.0, steps=2,
            num_center_bins=4,
        )
        for name in INPUT_NAMES:
            np.testing.assert_allclose(compiled[name].numpy(), eager[name].numpy(), atol=1e-5)


@pytest.mark.parametrize(
    "kwargs,match",
    [
        ({"epsilon": -1.0}, "epsilon"),
        ({"epsilon": float("nan")}, "epsilon"),
        ({"step_size": 0.0}, "step_size"),
        ({"steps": -1}, "steps"),
        ({"steps": 1.5}, "steps"),
        ({"steps": True}, "steps"),
        ({"num_center_bins": 3}, "num_center_bins"),
        ({"num_center_bins": 0}, "num_center_bins"),
    ],
)
def test_pgd_rejects_bad_arguments(kwargs, match):
    model = tiny_linear_model()
    inputs, targets = tiny_batch(batch_size=2)
    arguments = dict(epsilon=3.0, step_size=1.0, steps=1, num_center_bins=8)
    arguments.update(kwargs)
    with pytest.raises(ValueError, match=match):
        adversarial.pgd_perturb(model, inputs, targets, **arguments)


def test_pgd_rejects_bad_batches():
    model = tiny_linear_model()
    inputs, targets = tiny_batch(batch_size=2)
    arguments = dict(epsilon=3.0, step_size=1.0, steps=1, num_center_bins=8)
    with pytest.raises(ValueError, match="targets must be a dict"):
        adversarial.pgd_perturb(model, inputs, {"x": targets["x"]}, **arguments)
    with pytest.raises(ValueError, match="inputs must be a non-empty dict"):
        adversarial.pgd_perturb(model, inputs["face"], targets, **arguments)


# --- Org.%: the share of original samples -------------------------------------


@pytest.mark.parametrize("batch_size", [1, 7, 10, 64])
@pytest.mark.parametrize("fraction", [0.0, 0.5, 0.8, 0.9, 1.0])
def test_original_share_is_exact(batch_size, fraction):
    rng = np.random.default_rng(batch_size)
    clean = {"face": rng.uniform(0, 255, (batch_size, 3, 3, 3)).astype("float32"),
             "left_eye": rng.uniform(0, 255, (batch_size, 4)).astype("float32")}
    noisy = {n: v + 1000.0 for n, v in clean.items()}
    mixed, is_original = adversarial.mix_adversarial(
        clean, noisy, fraction, keras.random.SeedGenerator(batch_size)
    )
    is_original = is_original.numpy()
    assert is_original.shape == (batch_size,)
    assert int(is_original.sum()) == round(fraction * batch_size)
    for name in clean:
        np.testing.assert_array_equal(mixed[name].numpy()[is_original], clean[name][is_original])
        np.testing.assert_array_equal(mixed[name].numpy()[~is_original], noisy[name][~is_original])


def test_original_samples_are_drawn_anew_per_batch_in_a_compiled_step():
    seed_generator = keras.random.SeedGenerator(0)

    @tf.function(input_signature=[tf.TensorSpec([None, 2], tf.float32)])
    def step(batch):
        _, is_original = adversarial.mix_adversarial(
            {"face": batch}, {"face": batch + 1.0}, 0.5, seed_generator
        )
        return is_original

    masks = [step(np.zeros((64, 2), "float32")).numpy() for _ in range(3)]
    assert all(int(m.sum()) == 32 for m in masks)
    assert not np.array_equal(masks[0], masks[1])
    assert int(step(np.zeros((9, 2), "float32")).numpy().sum()) == round(0.5 * 9)


def test_mix_rejects_bad_arguments():
    clean = {"face": np.zeros((4, 2), "float32")}
    with pytest.raises(ValueError, match="original_fraction"):
        adversarial.mix_adversarial(clean, clean, 1.5)
    with pytest.raises(ValueError, match="same keys"):
        adversarial.mix_adversarial(clean, {"eye": clean["face"]}, 0.5)


def test_dwo_batch_equals_full_batch_attack_then_mix():
    model = tiny_linear_model()
    inputs, targets = tiny_batch(batch_size=10)
    settings = dict(epsilon=3.0, step_size=1.0, steps=2, num_center_bins=4)
    mixed, is_original = adversarial.dwo_batch(
        model, inputs, targets, original_fraction=0.7, seed=42, **settings
    )
    full = adversarial.pgd_perturb(model, inputs, targets, **settings)
    expected, expected_original = adversarial.mix_adversarial(inputs, full, 0.7, seed=42)
    np.testing.assert_array_equal(is_original.numpy(), expected_original.numpy())
    assert int(is_original.numpy().sum()) == 7
    for name in INPUT_NAMES:
        np.testing.assert_allclose(mixed[name].numpy(), expected[name].numpy(), atol=1e-5)


@pytest.mark.parametrize("fraction", [0.9, 1.0])
def test_dwo_batch_in_a_compiled_step(gaze_net, fraction):
    seed_generator = keras.random.SeedGenerator(1)
    spec = (
        {n: tf.TensorSpec((None, 32, 32, 3), tf.float32) for n in INPUT_NAMES},
        {h: tf.TensorSpec((None, GAZE_BINS), tf.float32) for h in ("x", "y")},
    )

    @tf.function(input_signature=spec)
    def step(inputs, targets):
        return adversarial.dwo_batch(
            gaze_net, inputs, targets, epsilon=3.0, step_size=1.0, steps=1,
            num_center_bins=8, original_fraction=fraction, seed=seed_generator,
        )

    inputs, targets = gaze_batch(batch_size=10)
    mixed, is_original = step(inputs, targets)
    is_original = is_original.numpy()
    assert int(is_original.sum()) == round(fraction * 10)
    for name in INPUT_NAMES:
        x_adv = mixed[name].numpy()
        np.testing.assert_array_equal(x_adv[is_original], inputs[name][is_original])
        assert np.max(np.abs(x_adv - inputs[name])) <= 3.0 + 1e-4
        if fraction < 1.0:
            moved = x_adv[~is_original] != inputs[name][~is_original]
            assert np.all(np.any(moved, axis=(1, 2, 3)))


def test_dwo_batch_with_nothing_to_replace(gaze_net):
    # round(0.9 * 1) = 1: the sample stays original and the network is not
    # run on an empty batch (batch norm would fail on it).
    batch_size = 1
    spec = (
        {n: tf.TensorSpec((None, 32, 32, 3), tf.float32) for n in INPUT_NAMES},
        {h: tf.TensorSpec((None, GAZE_BINS), tf.float32) for h in ("x", "y")},
    )
    settings = dict(epsilon=3.0, step_size=1.0, steps=1, num_center_bins=8,
                    original_fraction=0.9, seed=0)
    compiled = tf.function(
        lambda i, t: adversarial.dwo_batch(gaze_net, i, t, **settings),
        input_signature=spec,
    )
    inputs, targets = gaze_batch(batch_size=batch_size)
    for step in (compiled, lambda i, t: adversarial.dwo_batch(gaze_net, i, t, **settings)):
        mixed, is_original = step(inputs, targets)
        assert np.all(is_original.numpy())
        for name in INPUT_NAMES:
            np.testing.assert_array_equal(mixed[name].numpy(), inputs[name])
