"""Tests of the three-branch gaze network: names, structure, size, saving."""

import keras
import numpy as np
import pytest
from keras.src import testing

import tat_keras  # noqa: F401  (registers the Keras objects for loading)
from tat_keras import models
from tat_keras import ordinal

# CASIA-WebFace convolutions (Yi et al. 2014), filters at width 1.0, in the
# order conv11, conv12, conv21, ..., conv52.
CASIA_FILTERS = [32, 64, 64, 128, 96, 192, 128, 256, 160, 320]
CASIA_SUFFIXES = ["11", "12", "21", "22", "31", "32", "41", "42", "51", "52"]


def expected_branch_params(width):
    """Weights of one branch: 3x3 convs (no bias), BN (4 per channel), fc."""
    total = 0
    in_channels = 3
    for filters in CASIA_FILTERS:
        out_channels = max(4, int(filters * width))
        total += 3 * 3 * in_channels * out_channels  # kernel, no bias
        total += 4 * out_channels  # gamma, beta, moving mean, moving variance
        in_channels = out_channels
    total += in_channels * 128 + 128  # branch fc after global average pooling
    return total


def expected_params(width, x_bins, y_bins, share):
    branches = 2 if share else 3
    total = branches * expected_branch_params(width)
    total += 3 * 128 * 128 + 128  # final feature (384 -> 128)
    total += 128 * x_bins + x_bins + 128 * y_bins + y_bins  # ordinal heads
    return total


def make_batch(rng, batch=2, size=32):
    return {
        name: rng.uniform(0.0, 255.0, size=(batch, size, size, 3)).astype(np.float32)
        for name in models.INPUT_NAMES
    }


def consumers_of(model):
    """Maps each layer name to the set of layer names that read its output."""
    consumers = {layer.name: set() for layer in model.layers}
    for layer in model.layers:
        for node in layer._inbound_nodes:
            for tensor in node.input_tensors:
                producer = tensor._keras_history.operation
                consumers.setdefault(producer.name, set()).add(layer.name)
    return consumers


@pytest.fixture(scope="module")
def small_shared():
    keras.utils.set_random_seed(7)
    return models.GazeNet(image_size=32, width_multiplier=0.125, x_bins=9, y_bins=11)


@pytest.fixture(scope="module")
def small_unshared():
    keras.utils.set_random_seed(7)
    return models.GazeNet(
        image_size=32, width_multiplier=0.125, x_bins=9, y_bins=11, share_eye_weights=False
    )


@pytest.mark.parametrize(
    "share, branches", [(True, ("face", "eye")), (False, ("face", "left_eye", "right_eye"))]
)
def test_conv_layer_names(share, branches, small_shared, small_unshared):
    model = small_shared if share else small_unshared
    expected = {f"{b}_conv{s}" for b in branches for s in CASIA_SUFFIXES}
    assert set(model.conv_layer_names) == expected
    assert len(model.conv_layer_names) == len(expected)
    for b in branches:
        assert model.get_layer(f"{b}_fc").units == 128
    names = {layer.name for layer in model.layers}
    assert {"concat", "final_feature", "x", "y"} <= names
    if share:
        assert not any(n.startswith(("left_eye_", "right_eye_")) for n in names)
    else:
        assert not any(n.startswith("eye_") for n in names)


@pytest.mark.parametrize("share", [True, False])
def test_every_conv_has_no_bias_and_feeds_batch_norm_then_relu(
    share, small_shared, small_unshared
):
    model = small_shared if share else small_unshared
    consumers = consumers_of(model)
    for conv_name in model.conv_layer_names:
        conv = model.get_layer(conv_name)
        assert conv.use_bias is False
        assert conv.bias is None
        assert conv.kernel_size == (3, 3)
        (bn_name,) = consumers[conv_name]
        bn = model.get_layer(bn_name)
        assert isinstance(bn, keras.layers.BatchNormalization)
        assert bn.epsilon == pytest.approx(1e-3)
        assert bn is model.batch_norm_of(conv_name)
        (relu_name,) = consumers[bn_name]
        assert isinstance(model.get_layer(relu_name), keras.layers.ReLU)


def test_final_feature_and_heads(small_shared):
    final = small_shared.get_layer("final_feature")
    assert final.units == 128
    assert final.activation is keras.activations.relu
    assert small_shared.get_layer("concat") is not None
    for head, units in (("x", 9), ("y", 11)):
        layer = small_shared.get_layer(head)
        assert layer.units == units
        assert layer.activation is keras.activations.sigmoid


def test_parameter_count_at_full_width():
    model = models.GazeNet()
    expected = expected_params(1.0, 133, 133, share=True)
    assert model.count_params() == expected
    assert 3.6e6 < expected < 3.7e6  # "about 3.68M"


@pytest.mark.parametrize("width", [0.125, 0.25])
@pytest.mark.parametrize("share", [True, False])
def test_parameter_count_at_small_widths(width, share):
    model = models.GazeNet(
        image_size=32, width_multiplier=width, x_bins=9, y_bins=11, share_eye_weights=share
    )
    assert model.count_params() == expected_params(width, 9, 11, share)


def test_shared_and_unshared_differ_by_one_eye_branch(small_shared, small_unshared):
    difference = small_unshared.count_params() - small_shared.count_params()
    assert difference == expected_branch_params(0.125)
    eye = sum(
        int(np.prod(w.shape))
        for layer in small_unshared.layers
        if layer.name.startswith("left_eye_")
        for w in layer.weights
    )
    assert difference == eye


def test_shared_eye_branch_is_called_on_both_eyes(small_shared):
    assert len(small_shared.get_layer("eye_conv11")._inbound_nodes) == 2
    assert len(small_shared.get_layer("face_conv11")._inbound_nodes) == 1


def test_output_shapes_dtypes_and_ranges(small_shared, rng):
    outputs = small_shared(make_batch(rng, batch=3), training=False)
    assert set(outputs) == {"x", "y"}
    assert tuple(outputs["x"].shape) == (3, 9)
    assert tuple(outputs["y"].shape) == (3, 11)
    for value in outputs.values():
        assert value.dtype == "float32"
        value = keras.ops.convert_to_numpy(value)
        assert np.all((value >= 0.0) & (value <= 1.0))
    cm = small_shared.predict_cm(make_batch(rng, batch=3))
    assert cm.shape == (3, 2)
    bins = small_shared.bins
    assert bins["x"] == ordinal.OrdinalBins(-20.0, 0.3, 9)
    assert bins["y"] == ordinal.OrdinalBins(-25.0, 0.3, 11)
    assert np.all((cm[:, 0] > bins["x"].low) & (cm[:, 0] < bins["x"].high))
    assert np.all((cm[:, 1] > bins["y"].low) & (cm[:, 1] < bins["y"].high))


def test_decode_matches_the_bins(small_shared, rng):
    probs = {
        "x": rng.uniform(size=(5, 9)).astype(np.float32),
        "y": rng.uniform(size=(5, 11)).astype(np.float32),
    }
    decoded = small_shared.decode(probs)
    np.testing.assert_allclose(decoded[:, 0], small_shared.bins["x"].decode(probs["x"]))
    np.testing.assert_allclose(decoded[:, 1], small_shared.bins["y"].decode(probs["y"]))
    tensors = {k: keras.ops.convert_to_tensor(v) for k, v in probs.items()}
    np.testing.assert_allclose(keras.ops.convert_to_numpy(small_shared.decode(tensors)), decoded)


def test_pixels_are_normalized_inside_the_model():
    model = models.GazeNet(image_size=32, width_multiplier=0.125, x_bins=3, y_bins=3)
    rescaling = model.get_layer("rescaling")
    pixels = np.array([0.0, 127.5, 255.0], np.float32)
    np.testing.assert_allclose(keras.ops.convert_to_numpy(rescaling(pixels)), [-1.0, 0.0, 1.0])


@pytest.mark.parametrize("share", [True, False])
def test_keras_save_and_load_round_trip(share, tmp_path, rng):
    keras.utils.set_random_seed(3)
    model = models.GazeNet(
        image_size=32,
        width_multiplier=0.125,
        x_bins=9,
        y_bins=11,
        share_eye_weights=share,
        x_low=-7.5,
        x_bin_size=0.5,
        y_low=-12.0,
        y_bin_size=0.25,
    )
    path = tmp_path / "gaze_net.keras"
    model.save(path)
    loaded = keras.models.load_model(path)  # no custom_objects
    assert isinstance(loaded, models.GazeNet)
    assert loaded.get_config() == model.get_config()
    assert loaded.bins == model.bins
    assert loaded.bins["x"] == ordinal.OrdinalBins(-7.5, 0.5, 9)
    batch = make_batch(rng, batch=4)
    # Direct calls: `predict` would trace a graph per model, which is slow.
    expected = {k: keras.ops.convert_to_numpy(v) for k, v in model(batch).items()}
    got = {k: keras.ops.convert_to_numpy(v) for k, v in loaded(batch).items()}
    for key in ("x", "y"):
        np.testing.assert_array_equal(got[key], expected[key])
    np.testing.assert_array_equal(loaded.decode(got), model.decode(expected))


def test_config_round_trip(small_unshared):
    config = small_unshared.get_config()
    again = models.GazeNet.from_config(config)
    assert again.get_config() == config
    assert again.count_params() == small_unshared.count_params()


def test_one_training_step_matches_numpy(fixed_seed, rng):
    """One SGD step with the ordinal loss on both heads, re-derived in NumPy:
    the loss of Eq. 2 from the step's probabilities, and the head biases
    moved by -lr * mean over the batch of (p - t), the gradient of the
    per-sample sum of sigmoid cross-entropies with respect to the logits."""
    model = models.GazeNet(image_size=32, width_multiplier=0.125, x_bins=12, y_bins=12)
    batch = make_batch(rng, batch=8)
    gaze = np.stack(
        [rng.uniform(-19.0, -17.0, size=8), rng.uniform(-24.0, -22.0, size=8)], axis=1
    )
    targets = {
        "x": model.bins["x"].encode(gaze[:, 0]),
        "y": model.bins["y"].encode(gaze[:, 1]),
    }
    learning_rate = 0.5
    model.compile(
        optimizer=keras.optimizers.SGD(learning_rate),
        loss={"x": ordinal.OrdinalLoss(), "y": ordinal.OrdinalLoss()},
        run_eagerly=True,  # a graph trace costs more than the step itself
    )
    # The step runs batch norm in training mode, on the batch's statistics.
    probs = {k: keras.ops.convert_to_numpy(v).astype(np.float64)
             for k, v in model(batch, training=True).items()}
    biases = {k: np.array(model.get_layer(k).bias) for k in ("x", "y")}
    logs = model.train_on_batch(batch, targets, return_dict=True)
    expected = {}
    for key in ("x", "y"):
        p, t = probs[key], targets[key]
        expected[key] = np.mean(np.sum(-(t * np.log(p) + (1 - t) * np.log(1 - p)), -1))
        np.testing.assert_allclose(
            np.array(model.get_layer(key).bias),
            biases[key] - learning_rate * np.mean(p - t, axis=0), atol=1e-6)
    assert logs["loss"] == pytest.approx(expected["x"] + expected["y"], rel=1e-5)
    assert logs["x_loss"] == pytest.approx(expected["x"], rel=1e-5)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"image_size": 16}, "image_size"),
        ({"image_size": 64.5}, "image_size"),
        ({"width_multiplier": 0.0}, "width_multiplier"),
        ({"width_multiplier": -1.0}, "width_multiplier"),
        ({"width_multiplier": float("nan")}, "width_multiplier"),
        ({"x_bins": 0}, "num_bins"),
        ({"y_bins": -3}, "num_bins"),
        ({"x_bin_size": 0.0}, "bin_size"),
        ({"y_low": float("nan")}, "low"),
        # Wrong types say what they received instead of a bare TypeError.
        ({"image_size": None}, "image_size must be an integer. Received: image_size=None"),
        ({"image_size": "64"}, "image_size must be an integer. Received: image_size='64'"),
        ({"width_multiplier": "0.5"}, "Received: width_multiplier='0.5'"),
        ({"batch_norm_momentum": None}, "Received: batch_norm_momentum=None"),
        ({"share_eye_weights": "yes"}, "Received: share_eye_weights='yes'"),
        ({"x_bins": "133"}, "Received: num_bins='133'"),
        ({"x_bin_size": None}, "Received: bin_size=None"),
        ({"y_low": "low"}, "Received: low='low'"),
        ({"dtype": "float8"}, "Received: dtype='float8'"),
    ],
)
def test_invalid_arguments_raise(kwargs, match):
    with pytest.raises(ValueError, match=match):
        models.GazeNet(**kwargs)


def test_mixed_precision_computes_in_float16_with_float32_heads(rng):
    model = models.GazeNet(
        image_size=32, width_multiplier=0.125, x_bins=9, y_bins=11,
        dtype="mixed_float16",
    )
    assert model.dtype_policy.name == "mixed_float16"
    for layer in model.layers:
        if isinstance(layer, keras.layers.InputLayer):
            continue
        expected = "float32" if layer.name in ("x", "y") else "float16"
        assert layer.compute_dtype == expected, layer.name
        assert layer.variable_dtype == "float32", layer.name
    assert all(w.dtype == "float32" for w in model.weights)
    feature = keras.Model(model.inputs, model.get_layer("final_feature").output)
    batch = make_batch(rng, batch=2)
    assert feature(batch).dtype == "float16"
    outputs = model(batch)
    assert {keras.backend.standardize_dtype(v.dtype) for v in outputs.values()} == {"float32"}
    # Same weights in float32: float16 activations move the probabilities
    # by a few float16 steps at most.
    reference = models.GazeNet(image_size=32, width_multiplier=0.125, x_bins=9, y_bins=11)
    reference.set_weights(model.get_weights())
    expected = reference(batch)
    for key in ("x", "y"):
        np.testing.assert_allclose(
            keras.ops.convert_to_numpy(outputs[key]),
            keras.ops.convert_to_numpy(expected[key]), atol=1e-2)


def test_mixed_precision_survives_config_and_compiles_with_loss_scaling():
    model = models.GazeNet(
        image_size=32, width_multiplier=0.125, x_bins=4, y_bins=4,
        dtype="mixed_float16",
    )
    again = models.GazeNet.from_config(model.get_config())
    assert again.dtype_policy.name == "mixed_float16"
    assert again.get_layer("eye_conv11").compute_dtype == "float16"
    again.compile(optimizer="sgd", loss=ordinal.OrdinalLoss())
    assert isinstance(again.optimizer, keras.optimizers.LossScaleOptimizer)


def test_trainable_false_survives_config_round_trip():
    model = models.GazeNet(
        image_size=32, width_multiplier=0.125, x_bins=4, y_bins=4, trainable=False)
    assert not model.trainable and model.trainable_weights == []
    again = models.GazeNet.from_config(model.get_config())
    assert again.trainable is False
    assert again.trainable_weights == []


class GazeNetLayerTest(testing.TestCase):
    """Keras's own layer checks: serialization, build, symbolic and eager
    calls, and a `mixed_float16` call whose outputs match the symbolic
    output spec with float32 weights."""

    def test_run_layer_test(self):
        rng = np.random.default_rng(0)
        # A list in `INPUT_NAMES` order: the harness splats dict inputs
        # into keyword arguments, which a functional model does not take.
        data = [rng.uniform(0, 255, (2, 32, 32, 3)).astype("float32")
                for _ in models.INPUT_NAMES]
        with pytest.warns(UserWarning, match="structure of `inputs`"):
            self.run_layer_test(
                models.GazeNet,
                dict(image_size=32, width_multiplier=0.125, x_bins=5, y_bins=6),
                input_data=data,
                expected_output_shape={"x": (2, 5), "y": (2, 6)},
                expected_output_dtype={"x": "float32", "y": "float32"},
                # The one-step training check is
                # `test_one_training_step_matches_numpy` below.
                run_training_check=False,
            )
