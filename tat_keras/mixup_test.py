"""Tests of feature mixup (Eq. 8) against a NumPy re-derivation."""

import keras
import numpy as np
import pytest
from keras import ops
from keras.src import testing

from tat_keras import mixup


def reference_mix(values, alpha, permutation):
    """Eq. 8 with a loop: alpha_i * v_i + (1 - alpha_i) * v_perm(i)."""
    result = np.empty_like(values)
    for i in range(values.shape[0]):
        result[i] = alpha[i] * values[i] + (1 - alpha[i]) * values[
            permutation[i]
        ]
    return result


def make_batch(batch_size=6, seed=0):
    rng = np.random.default_rng(seed)
    features = rng.normal(size=(batch_size, 128)).astype("float32")
    labels_x = (rng.uniform(size=(batch_size, 133)) > 0.5).astype("float32")
    labels_y = (rng.uniform(size=(batch_size, 98)) > 0.5).astype("float32")
    return features, labels_x, labels_y


def test_mix_matches_eq8():
    features, labels_x, labels_y = make_batch()
    alpha = np.array([0.0, 1.0, 0.25, 0.5, 0.75, 0.9], "float32")
    permutation = np.array([3, 0, 1, 5, 2, 4], "int32")
    mixed = mixup.mix(features, labels_x, labels_y, alpha, permutation)
    for result, values in zip(mixed, (features, labels_x, labels_y)):
        assert tuple(result.shape) == values.shape
        np.testing.assert_allclose(
            ops.convert_to_numpy(result),
            reference_mix(values, alpha, permutation),
            rtol=1e-6,
            atol=1e-6,
        )
    # alpha 0 takes the partner, alpha 1 keeps the sample.
    np.testing.assert_allclose(ops.convert_to_numpy(mixed[0])[0], features[3])
    np.testing.assert_allclose(ops.convert_to_numpy(mixed[0])[1], features[1])


def test_sample_mix_weights_are_uniform_in_unit_interval():
    generator = keras.random.SeedGenerator(0)
    alpha = ops.convert_to_numpy(mixup.sample_mix_weights(4000, generator))
    assert alpha.shape == (4000,) and alpha.dtype == np.float32
    assert alpha.min() >= 0.0 and alpha.max() < 1.0
    assert abs(alpha.mean() - 0.5) < 0.03
    assert abs(alpha.var() - 1 / 12) < 0.01
    other = ops.convert_to_numpy(mixup.sample_mix_weights(4000, generator))
    assert not np.array_equal(alpha, other)  # the generator advances


def test_sample_permutation_is_a_permutation():
    generator = keras.random.SeedGenerator(1)
    permutation = ops.convert_to_numpy(mixup.sample_permutation(50, generator))
    assert sorted(permutation.tolist()) == list(range(50))
    assert permutation.tolist() != list(range(50))


def test_feature_mixup_matches_eq8_with_its_own_draws():
    features, labels_x, labels_y = make_batch()
    layer = mixup.FeatureMixup(seed=3)
    twin = mixup.FeatureMixup(seed=3)
    mixed_features, mixed_labels = layer(
        features, {"x": labels_x, "y": labels_y}, training=True
    )
    alpha, permutation = (ops.convert_to_numpy(t) for t in twin.sample(6))
    assert sorted(permutation.tolist()) == list(range(6))
    np.testing.assert_allclose(
        ops.convert_to_numpy(mixed_features),
        reference_mix(features, alpha, permutation),
        rtol=1e-6,
        atol=1e-6,
    )
    assert set(mixed_labels) == {"x", "y"}
    for key, values in (("x", labels_x), ("y", labels_y)):
        np.testing.assert_allclose(
            ops.convert_to_numpy(mixed_labels[key]),
            reference_mix(values, alpha, permutation),
            rtol=1e-6,
            atol=1e-6,
        )
    # Mixed ordinal labels are soft targets in [0, 1].
    x = ops.convert_to_numpy(mixed_labels["x"])
    assert x.min() >= 0.0 and x.max() <= 1.0


def test_feature_mixup_is_identity_outside_training():
    features, labels_x, _ = make_batch()
    layer = mixup.FeatureMixup(seed=0)
    for training in (False, None):
        out_features, out_labels = layer(
            features, {"x": labels_x}, training=training
        )
        np.testing.assert_array_equal(
            ops.convert_to_numpy(out_features), features
        )
        np.testing.assert_array_equal(
            ops.convert_to_numpy(out_labels["x"]), labels_x
        )


def test_feature_mixup_seed_is_deterministic_and_draws_change():
    features, labels_x, _ = make_batch()
    run = lambda layer: ops.convert_to_numpy(  # noqa: E731
        layer(features, {"x": labels_x}, training=True)[0]
    )
    first, second = mixup.FeatureMixup(seed=5), mixup.FeatureMixup(seed=5)
    np.testing.assert_array_equal(run(first), run(second))
    assert not np.array_equal(run(first), run(mixup.FeatureMixup(seed=5)))


@pytest.mark.skipif(
    keras.backend.backend() != "tensorflow", reason="tf.function tracing"
)
def test_feature_mixup_in_a_traced_step_with_unknown_batch():
    import tensorflow as tf

    layer = mixup.FeatureMixup(seed=0)

    @tf.function(
        input_signature=[
            tf.TensorSpec((None, 128), tf.float32),
            tf.TensorSpec((None, 133), tf.float32),
        ]
    )
    def step(features, labels_x):
        return layer(features, {"x": labels_x}, training=True)

    features, labels_x, _ = make_batch(batch_size=5)
    first = step(features, labels_x)[0].numpy()
    second = step(features, labels_x)[0].numpy()
    assert first.shape == (5, 128)
    assert not np.array_equal(first, second)  # state advances across calls
    # Each mixed row lies on a segment between its sample and another one.
    assert np.all(np.isfinite(first))


def test_feature_mixup_serialization_round_trip():
    layer = mixup.FeatureMixup(seed=7, name="mixup")
    config = keras.saving.serialize_keras_object(layer)
    restored = keras.saving.deserialize_keras_object(config)
    assert isinstance(restored, mixup.FeatureMixup)
    assert restored.seed == 7 and restored.name == "mixup"
    assert restored.get_config() == layer.get_config()
    # No trainable weights; only the seed state.
    assert layer.trainable_weights == []


def test_feature_mixup_validates_arguments():
    with pytest.raises(ValueError, match="seed must be an int or None"):
        mixup.FeatureMixup(seed=1.5)
    with pytest.raises(ValueError, match="Received: seed='1'"):
        mixup.FeatureMixup(seed="1")
    layer = mixup.FeatureMixup(seed=0)
    with pytest.raises(ValueError, match="labels must be a label tensor or a dict"):
        layer(np.ones((2, 4), "float32"), labels={"x": "bins"}, training=True)
    with pytest.raises(ValueError, match="Received: labels=None"):
        layer(np.ones((2, 4), "float32"), labels=None, training=True)


def test_feature_mixup_mixes_a_single_label_tensor_like_a_dict():
    features, labels_x, _ = make_batch()
    alone = mixup.FeatureMixup(seed=4)(features, labels_x, training=True)[1]
    in_dict = mixup.FeatureMixup(seed=4)(features, {"x": labels_x}, training=True)[1]
    np.testing.assert_array_equal(ops.convert_to_numpy(alone),
                                  ops.convert_to_numpy(in_dict["x"]))


def test_feature_mixup_output_shapes():
    layer = mixup.FeatureMixup(seed=0)
    assert layer.compute_output_shape((None, 128), {"x": (None, 133), "y": (None, 98)}) == (
        (None, 128), {"x": (None, 133), "y": (None, 98)})
    assert layer.compute_output_shape((8, 16), (8, 5)) == ((8, 16), (8, 5))


def test_mixed_precision_mixes_features_in_float16_and_labels_in_float32():
    features, labels_x, _ = make_batch()
    layer = mixup.FeatureMixup(seed=3, dtype="mixed_float16")
    twin = mixup.FeatureMixup(seed=3, dtype="mixed_float16")
    mixed_features, mixed_labels = layer(features, {"x": labels_x}, training=True)
    assert mixed_features.dtype == "float16"
    assert mixed_labels["x"].dtype == "float32"
    alpha, permutation = (ops.convert_to_numpy(t) for t in twin.sample(6))
    assert alpha.dtype == np.float32
    # The labels are mixed with the float32 alpha, unrounded.
    np.testing.assert_allclose(ops.convert_to_numpy(mixed_labels["x"]),
                               reference_mix(labels_x, alpha, permutation), atol=1e-6)
    np.testing.assert_allclose(
        ops.convert_to_numpy(mixed_features).astype(np.float32),
        reference_mix(features.astype(np.float16).astype(np.float32), alpha, permutation),
        rtol=2e-3, atol=2e-3)


class FeatureMixupLayerTest(testing.TestCase):
    """Keras's own layer checks, mixed precision included."""

    def test_run_layer_test(self):
        self.run_layer_test(
            mixup.FeatureMixup,
            {"seed": 1},
            input_shape={"features_shape": (4, 16), "labels_shape": (4, 5)},
            call_kwargs={"training": True},
            expected_output_shape=((4, 16), (4, 5)),
            expected_output_dtype=("float32", "float32"),
            expected_num_trainable_weights=0,
            expected_num_non_trainable_weights=0,
            expected_num_seed_generators=1,
            # The harness's training model passes one positional input; the
            # layer takes two and has no weights to train.
            run_training_check=False,
        )
