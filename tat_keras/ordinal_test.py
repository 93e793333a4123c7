"""Tests of the ordinal labels, decoding and loss (Eq. 1-4) against NumPy."""

import keras
import numpy as np
import pytest
import tensorflow as tf
from keras.src import testing

from tat_keras import ordinal

# (low, bin_size, num_bins). The first four are exact in float32, so values
# placed on a bin edge land exactly on it.
EXACT_RANGES = [
    (-1.0, 0.5, 4),
    (0.0, 1.0, 7),
    (-20.0, 0.25, 133),
    (3.0, 0.125, 10),
]
RANGES = EXACT_RANGES + [(-20.0, 0.3, 133), (-25.0, 0.3, 98)]


def reference_encode(values, low, bin_size, num_bins):
    """Eq. 1 with loops: paper bin b = 1..B is 1 when b * bin_size <= v - low.

    Clipping into the range changes nothing here: a value below `low` has
    every bin 0 and a value at or above the top edge every bin 1 either way.
    """
    values = np.asarray(values, np.float64)
    flat = values.reshape(-1)
    out = np.zeros((flat.size, num_bins), np.float32)
    for i, value in enumerate(flat):
        for b in range(1, num_bins + 1):
            if b * bin_size <= value - low:
                out[i, b - 1] = 1.0
    return out.reshape(values.shape + (num_bins,))


def reference_decode(probs, low, bin_size):
    """Eq. 3 with loops: low + bin_size * (count(p >= 0.5) + 0.5)."""
    probs = np.asarray(probs, np.float64)
    flat = probs.reshape(-1, probs.shape[-1])
    out = np.zeros(len(flat))
    for i, row in enumerate(flat):
        count = 0
        for p in row:
            if p >= 0.5:
                count += 1
        out[i] = low + bin_size * (count + 0.5)
    return out.reshape(probs.shape[:-1])


def reference_mask(probs, num_center_bins):
    """Center bins c - k .. c + k - 1 of each row, truncated at the edges."""
    probs = np.asarray(probs)
    flat = probs.reshape(-1, probs.shape[-1])
    mask = np.zeros(flat.shape, np.float32)
    for i, row in enumerate(flat):
        if num_center_bins is None:
            mask[i] = 1.0
            continue
        k = num_center_bins // 2
        count = int(np.sum(row >= 0.5))
        for j in range(count - k, count + k):
            if 0 <= j < len(row):
                mask[i, j] = 1.0
    return mask.reshape(probs.shape)


def reference_loss(y_true, y_pred, num_center_bins=None):
    """Eq. 2 / Eq. 4: per-sample sum of BCE over (center) bins, batch mean."""
    y_true = np.asarray(y_true, np.float64)
    y_pred = np.asarray(y_pred, np.float64)
    mask = reference_mask(y_pred, num_center_bins)
    totals = []
    for i in range(len(y_true)):
        total = 0.0
        for b in range(y_true.shape[1]):
            if mask[i, b]:
                t, p = y_true[i, b], y_pred[i, b]
                total += -(t * np.log(p) + (1.0 - t) * np.log(1.0 - p))
        totals.append(total)
    return float(np.mean(totals))


# --- Eq. 1: encode ---------------------------------------------------------


@pytest.mark.parametrize("low, bin_size, num_bins", EXACT_RANGES)
def test_encode_at_edges_and_just_around_them(low, bin_size, num_bins):
    bins = ordinal.OrdinalBins(low, bin_size, num_bins)
    edges = low + bin_size * np.arange(1, num_bins + 1)
    at = bins.encode(edges)
    below = bins.encode(edges - 0.25 * bin_size)
    above = bins.encode(edges + 0.25 * bin_size)
    for b in range(num_bins):
        # A value exactly on code edge b switches bins 0..b on (Eq. 1: <=).
        assert at[b].sum() == b + 1
        assert below[b].sum() == b
        assert above[b].sum() == b + 1
    np.testing.assert_array_equal(at, reference_encode(edges, low, bin_size, num_bins))
    np.testing.assert_array_equal(
        below, reference_encode(edges - 0.25 * bin_size, low, bin_size, num_bins)
    )
    # The lower edge itself: every bin is 0.
    np.testing.assert_array_equal(bins.encode(np.float32(low)), np.zeros(num_bins))


@pytest.mark.parametrize("low, bin_size, num_bins", RANGES)
def test_encode_matches_reference_away_from_edges(low, bin_size, num_bins, rng):
    bins = ordinal.OrdinalBins(low, bin_size, num_bins)
    # Offsets of 0.001 bin around each edge: far from float32 round-off.
    index = rng.integers(0, num_bins + 1, size=200)
    offset = rng.uniform(0.001, 0.999, size=200)
    values = low + bin_size * (index + offset)
    np.testing.assert_array_equal(
        bins.encode(values), reference_encode(values, low, bin_size, num_bins)
    )
    np.testing.assert_array_equal(bins.encode(values).sum(-1), np.minimum(index, num_bins))


@pytest.mark.parametrize("low, bin_size, num_bins", RANGES)
def test_encode_clips_values_outside_the_range(low, bin_size, num_bins):
    bins = ordinal.OrdinalBins(low, bin_size, num_bins)
    assert bins.high == pytest.approx(low + (num_bins + 1) * bin_size)
    outside_low = np.array([low - 1e-3, low - bin_size, low - 100.0])
    outside_high = np.array([bins.high, bins.high + bin_size, bins.high + 100.0])
    np.testing.assert_array_equal(bins.encode(outside_low), np.zeros((3, num_bins)))
    np.testing.assert_array_equal(bins.encode(outside_high), np.ones((3, num_bins)))
    np.testing.assert_array_equal(
        bins.encode(tf.constant(outside_low)).numpy(), np.zeros((3, num_bins))
    )
    np.testing.assert_array_equal(
        bins.encode(tf.constant(outside_high)).numpy(), np.ones((3, num_bins))
    )
    # Clipping keeps values inside [low, high), and decodes to the end bins.
    clipped = bins.clip(np.concatenate([outside_low, outside_high]))
    assert np.all(clipped >= np.float32(low)) and np.all(clipped < bins.high)
    assert bins.count_outside(np.concatenate([outside_low, outside_high, [low]])) == 6


@pytest.mark.parametrize("low, bin_size, num_bins", RANGES)
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_encode_numpy_and_tensor_agree(low, bin_size, num_bins, dtype, rng):
    bins = ordinal.OrdinalBins(low, bin_size, num_bins)
    values = rng.uniform(low - 2.0, bins.high + 2.0, size=(7, 5)).astype(dtype)
    edges = (low + bin_size * np.arange(1, num_bins + 1)).astype(dtype)
    for batch in (values, edges):
        from_numpy = bins.encode(batch)
        from_tensor = bins.encode(tf.constant(batch))
        assert isinstance(from_numpy, np.ndarray)
        assert from_numpy.dtype == np.float32
        assert from_tensor.dtype == tf.float32
        np.testing.assert_array_equal(from_numpy, from_tensor.numpy())


@pytest.mark.parametrize(
    "values, shape",
    [
        (0.3, (6,)),
        (np.float32(0.3), (6,)),
        (np.array(0.3), (6,)),
        (np.array([0.3, 1.2, -0.4]), (3, 6)),
        (np.zeros((4, 2)), (4, 2, 6)),
        ([0.1, 0.2], (2, 6)),
    ],
)
def test_encode_shapes(values, shape):
    bins = ordinal.OrdinalBins(-1.0, 0.5, 6)
    assert bins.encode(values).shape == shape
    assert tuple(bins.encode(tf.constant(values, tf.float32)).shape) == shape
    np.testing.assert_array_equal(
        bins.encode(values), reference_encode(values, -1.0, 0.5, 6)
    )


# --- Eq. 3: decode ---------------------------------------------------------


@pytest.mark.parametrize("low, bin_size, num_bins", RANGES)
def test_decode_matches_reference(low, bin_size, num_bins, rng):
    bins = ordinal.OrdinalBins(low, bin_size, num_bins)
    probs = rng.uniform(size=(6, 3, num_bins)).astype(np.float32)
    expected = reference_decode(probs, low, bin_size)
    decoded = bins.decode(probs)
    assert decoded.shape == (6, 3)
    np.testing.assert_allclose(decoded, expected, rtol=1e-6, atol=1e-5)
    np.testing.assert_allclose(
        bins.decode(tf.constant(probs)).numpy(), expected, rtol=1e-6, atol=1e-5
    )


@pytest.mark.parametrize("low, bin_size, num_bins", RANGES)
def test_encode_decode_round_trip_gives_the_interval_centre(
    low, bin_size, num_bins, rng
):
    bins = ordinal.OrdinalBins(low, bin_size, num_bins)
    # Every interval 0 .. B (B + 1 of them), at a random place inside it.
    index = np.arange(num_bins + 1)
    values = low + bin_size * (index + rng.uniform(0.01, 0.99, size=index.size))
    centres = low + bin_size * (index + 0.5)
    np.testing.assert_allclose(bins.decode(bins.encode(values)), centres, atol=1e-4)
    np.testing.assert_allclose(
        bins.decode(bins.encode(tf.constant(values))).numpy(), centres, atol=1e-4
    )


def test_probability_exactly_one_half_counts():
    bins = ordinal.OrdinalBins(0.0, 1.0, 4)
    probs = np.array([[0.5, 0.5, 0.49999, 0.0], [0.5, 0.0, 0.0, 0.0]], np.float32)
    np.testing.assert_allclose(bins.decode(probs), [2.5, 1.5])
    np.testing.assert_allclose(bins.decode(tf.constant(probs)).numpy(), [2.5, 1.5])
    np.testing.assert_allclose(ordinal.OrdinalDecoding(0.0, 1.0)(probs), [2.5, 1.5])


def test_bins_config_round_trip_and_from_range():
    bins = ordinal.OrdinalBins(-20.0, 0.3, 133)
    again = ordinal.OrdinalBins.from_config(bins.get_config())
    assert again == bins
    assert again.get_config() == {"low": -20.0, "bin_size": 0.3, "num_bins": 133}
    from_range = ordinal.OrdinalBins.from_range(-1.0, 1.5, 4)
    assert from_range.bin_size == pytest.approx(0.5)
    assert from_range.high == pytest.approx(1.5)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"low": float("nan"), "bin_size": 1.0, "num_bins": 3}, "low"),
        ({"low": 0.0, "bin_size": 0.0, "num_bins": 3}, "bin_size"),
        ({"low": 0.0, "bin_size": -0.3, "num_bins": 3}, "bin_size"),
        ({"low": 0.0, "bin_size": float("inf"), "num_bins": 3}, "bin_size"),
        ({"low": 0.0, "bin_size": 1.0, "num_bins": 0}, "num_bins"),
        ({"low": 0.0, "bin_size": 1.0, "num_bins": 2.5}, "num_bins"),
        # Wrong types: a ValueError that says what it received.
        ({"low": None, "bin_size": 1.0, "num_bins": 3}, "Received: low=None"),
        ({"low": "0", "bin_size": 1.0, "num_bins": 3}, "Received: low='0'"),
        ({"low": 0.0, "bin_size": "1", "num_bins": 3}, "Received: bin_size='1'"),
        ({"low": 0.0, "bin_size": 1.0, "num_bins": None}, "Received: num_bins=None"),
        ({"low": 0.0, "bin_size": 1.0, "num_bins": True}, "Received: num_bins=True"),
        ({"low": 0.0, "bin_size": 1.0, "num_bins": float("inf")}, "num_bins=inf"),
    ],
)
def test_bins_invalid_arguments_raise(kwargs, match):
    with pytest.raises(ValueError, match=match):
        ordinal.OrdinalBins(**kwargs)


def test_from_range_with_empty_range_raises():
    with pytest.raises(ValueError, match="high above low"):
        ordinal.OrdinalBins.from_range(1.0, 1.0, 4)
    with pytest.raises(ValueError, match="Received: low=0.0, high=None"):
        ordinal.OrdinalBins.from_range(0.0, None, 4)


# --- center_bin_mask -------------------------------------------------------


def probs_with_count(count, num_bins):
    """A probability row whose first `count` bins are >= 0.5."""
    row = np.full(num_bins, 0.1, np.float32)
    row[:count] = 0.9
    return row


@pytest.mark.parametrize(
    "count, num_center_bins, expected_ones",
    [
        (5, 4, [3, 4, 5, 6]),  # interior
        (5, 2, [4, 5]),  # k = 1
        (5, 8, [1, 2, 3, 4, 5, 6, 7, 8]),
        (0, 4, [0, 1]),  # truncated at the lower edge
        (1, 4, [0, 1, 2]),
        (10, 4, [8, 9]),  # count = B: truncated at the upper edge
        (9, 4, [7, 8, 9]),
        (0, 2, [0]),
        (10, 2, [9]),
        (5, 40, list(range(10))),  # wider than the range: every bin
    ],
)
def test_center_bin_mask_cases(count, num_center_bins, expected_ones):
    probs = probs_with_count(count, 10)[None]
    expected = np.zeros((1, 10), np.float32)
    expected[0, expected_ones] = 1.0
    np.testing.assert_array_equal(ordinal.center_bin_mask(probs, num_center_bins), expected)
    np.testing.assert_array_equal(
        ordinal.center_bin_mask(tf.constant(probs), num_center_bins).numpy(), expected
    )
    np.testing.assert_array_equal(reference_mask(probs, num_center_bins), expected)


@pytest.mark.parametrize("num_center_bins", [None, 2, 4, 8, 8.0, np.int64(6)])
@pytest.mark.parametrize("shape", [(12,), (5, 12), (3, 4, 12)])
def test_center_bin_mask_numpy_and_tensor_agree_with_reference(
    num_center_bins, shape, rng
):
    probs = rng.uniform(size=shape).astype(np.float32)
    expected = reference_mask(probs, None if num_center_bins is None else int(num_center_bins))
    from_numpy = ordinal.center_bin_mask(probs, num_center_bins)
    from_tensor = ordinal.center_bin_mask(tf.constant(probs), num_center_bins)
    assert from_numpy.shape == shape and from_numpy.dtype == np.float32
    assert from_tensor.dtype == tf.float32
    np.testing.assert_array_equal(from_numpy, expected)
    np.testing.assert_array_equal(from_tensor.numpy(), expected)


def test_center_bin_mask_none_is_all_ones():
    probs = np.random.default_rng(1).uniform(size=(3, 7))
    np.testing.assert_array_equal(ordinal.center_bin_mask(probs, None), np.ones((3, 7)))


@pytest.mark.parametrize(
    "num_center_bins, match",
    [
        (3, "even"),
        (7, "even"),
        (1, "num_center_bins"),
        (0, "num_center_bins"),
        (-2, "num_center_bins"),
        (2.5, "num_center_bins"),
        ("all", "num_center_bins"),
        (float("nan"), "num_center_bins"),
    ],
)
def test_center_bin_mask_invalid_counts_raise(num_center_bins, match):
    with pytest.raises(ValueError, match=match):
        ordinal.center_bin_mask(np.zeros((1, 4)), num_center_bins)
    with pytest.raises(ValueError, match=match):
        ordinal.OrdinalLoss(num_center_bins=num_center_bins)


# --- OrdinalLoss (Eq. 2, Eq. 4, DwO center bins) ---------------------------


@pytest.mark.parametrize("num_center_bins", [None, 2, 4, 8])
@pytest.mark.parametrize("targets", ["hard", "soft"])
@pytest.mark.parametrize("batch, num_bins", [(1, 5), (6, 20), (16, 133)])
def test_loss_matches_reference(num_center_bins, targets, batch, num_bins, rng):
    bins = ordinal.OrdinalBins(0.0, 1.0, num_bins)
    if targets == "hard":
        y_true = bins.encode(rng.uniform(0.0, bins.high, size=batch))
    else:  # a teacher's probabilities (Eq. 4) or mixed labels (Eq. 8)
        y_true = rng.uniform(size=(batch, num_bins)).astype(np.float32)
    y_pred = rng.uniform(0.02, 0.98, size=(batch, num_bins)).astype(np.float32)
    loss = ordinal.OrdinalLoss(num_center_bins=num_center_bins)
    expected = reference_loss(y_true, y_pred, num_center_bins)
    assert float(loss(y_true, y_pred)) == pytest.approx(expected, rel=1e-5)
    assert float(loss(tf.constant(y_true), tf.constant(y_pred))) == pytest.approx(
        expected, rel=1e-5
    )


def test_loss_is_mean_of_per_sample_sums():
    y_true = np.array([[1.0, 0.0], [1.0, 1.0]], np.float32)
    y_pred = np.array([[0.9, 0.2], [0.5, 0.25]], np.float32)
    per_sample = [-np.log(0.9) - np.log(0.8), -np.log(0.5) - np.log(0.25)]
    loss = ordinal.OrdinalLoss()
    assert float(loss(y_true, y_pred)) == pytest.approx(np.mean(per_sample), rel=1e-6)
    np.testing.assert_allclose(loss.call(y_true, y_pred), per_sample, rtol=1e-6)


def test_loss_of_perfect_prediction_is_near_zero_and_finite_at_extremes():
    y_true = ordinal.OrdinalBins(0.0, 1.0, 8).encode(np.array([3.5, 0.2]))
    loss = ordinal.OrdinalLoss()
    assert float(loss(y_true, y_true)) < 1e-4
    assert np.isfinite(float(loss(y_true, 1.0 - y_true)))


@pytest.mark.parametrize("num_center_bins", [None, 4])
def test_loss_is_finite_and_exact_in_float16(num_center_bins, rng):
    """float16 probabilities (and a float16 loss): the cross-entropy is taken
    in float32, so a perfect prediction gives 0, not 0 * log(0) = NaN."""
    y_true = ordinal.OrdinalBins(0.0, 1.0, 8).encode(np.array([3.5, 0.2]))
    perfect = tf.constant(y_true, tf.float16)
    for loss in (ordinal.OrdinalLoss(num_center_bins),
                 ordinal.OrdinalLoss(num_center_bins, dtype="float16")):
        per_sample = loss.call(perfect, perfect)
        assert per_sample.dtype == tf.float32
        assert np.all(np.isfinite(per_sample.numpy()))
        assert float(loss(y_true, perfect)) < 1e-5
        assert np.isfinite(float(loss(y_true, 1.0 - perfect)))
    # Away from 0 and 1, the float16 loss is the reference loss of the
    # float16-rounded probabilities, to float32 precision.
    soft = rng.uniform(size=(6, 12)).astype(np.float32)
    probs16 = rng.uniform(0.01, 0.99, size=(6, 12)).astype(np.float16)
    value = ordinal.OrdinalLoss(num_center_bins)(soft, tf.constant(probs16))
    expected = reference_loss(soft, probs16.astype(np.float64), num_center_bins)
    assert float(value) == pytest.approx(expected, rel=1e-5)


@pytest.mark.parametrize("num_center_bins", [None, 2, 4, 8])
def test_loss_gradient_is_zero_outside_center_bins(num_center_bins, rng):
    batch, num_bins = 5, 16
    y_true = rng.uniform(size=(batch, num_bins)).astype(np.float32)
    y_pred = tf.Variable(rng.uniform(0.05, 0.95, size=(batch, num_bins)).astype(np.float32))
    loss = ordinal.OrdinalLoss(num_center_bins=num_center_bins)
    with tf.GradientTape() as tape:
        value = loss(y_true, y_pred)
    grad = tape.gradient(value, y_pred).numpy()
    p = y_pred.numpy().astype(np.float64)
    mask = reference_mask(p, num_center_bins)
    # d/dp of the batch mean of -(t log p + (1 - t) log(1 - p)), masked.
    expected = mask * (-(y_true / p) + (1.0 - y_true) / (1.0 - p)) / batch
    np.testing.assert_array_equal(grad[mask == 0], 0.0)
    assert np.all(grad[mask == 1] != 0.0)
    np.testing.assert_allclose(grad, expected, rtol=1e-4, atol=1e-6)


@pytest.mark.parametrize("num_center_bins", [None, 8])
def test_loss_config_round_trip(num_center_bins):
    loss = ordinal.OrdinalLoss(num_center_bins=num_center_bins, name="center")
    config = loss.get_config()
    assert config["num_center_bins"] == num_center_bins
    assert config["name"] == "center"
    again = ordinal.OrdinalLoss.from_config(config)
    assert again.get_config() == config


@pytest.mark.parametrize("num_center_bins", [None, 4])
def test_loss_keras_serialization(num_center_bins, rng):
    loss = ordinal.OrdinalLoss(num_center_bins=num_center_bins)
    assert keras.saving.get_registered_name(ordinal.OrdinalLoss) == "tat_keras>OrdinalLoss"
    serialized = keras.saving.serialize_keras_object(loss)
    again = keras.saving.deserialize_keras_object(serialized)
    assert isinstance(again, ordinal.OrdinalLoss)
    assert again.num_center_bins == num_center_bins
    y_true = rng.uniform(size=(3, 10)).astype(np.float32)
    y_pred = rng.uniform(0.05, 0.95, size=(3, 10)).astype(np.float32)
    assert float(again(y_true, y_pred)) == pytest.approx(float(loss(y_true, y_pred)))


# --- OrdinalDecoding layer --------------------------------------------------


@pytest.mark.parametrize("low, bin_size, num_bins", RANGES)
def test_decoding_layer_matches_reference(low, bin_size, num_bins, rng):
    layer = ordinal.OrdinalDecoding(low, bin_size)
    probs = rng.uniform(size=(9, num_bins)).astype(np.float32)
    out = keras.ops.convert_to_numpy(layer(probs))
    assert out.shape == (9,)
    np.testing.assert_allclose(out, reference_decode(probs, low, bin_size), atol=1e-4)
    np.testing.assert_allclose(
        out, ordinal.OrdinalBins(low, bin_size, num_bins).decode(probs), atol=1e-5
    )
    assert layer.compute_output_shape((None, num_bins)) == (None,)


def test_decoding_layer_config_round_trip_and_in_a_model(tmp_path, rng):
    layer = ordinal.OrdinalDecoding(-20.0, 0.3, name="decode_x")
    config = layer.get_config()
    assert config["low"] == -20.0 and config["bin_size"] == 0.3
    again = ordinal.OrdinalDecoding.from_config(config)
    assert again.get_config() == config
    again = keras.saving.deserialize_keras_object(keras.saving.serialize_keras_object(layer))
    assert isinstance(again, ordinal.OrdinalDecoding)

    inputs = keras.Input((20,))
    model = keras.Model(inputs, ordinal.OrdinalDecoding(-2.0, 0.5)(inputs))
    path = tmp_path / "decode.keras"
    model.save(path)
    loaded = keras.models.load_model(path)
    probs = rng.uniform(size=(4, 20)).astype(np.float32)
    np.testing.assert_array_equal(
        keras.ops.convert_to_numpy(loaded(probs)), keras.ops.convert_to_numpy(model(probs))
    )


@pytest.mark.parametrize(
    "policy, expected", [("float32", "float32"), ("mixed_float16", "float32"),
                         ("float64", "float64")])
def test_decoding_layer_outputs_the_policy_variable_dtype(policy, expected):
    layer = ordinal.OrdinalDecoding(-20.0, 0.25, dtype=policy)
    # 0.49995 would round to 0.5 in float16: the layer does not autocast.
    probs = np.array([[0.9] * 70 + [0.49995] + [0.1] * 62], np.float32)
    out = layer(probs)
    assert keras.backend.standardize_dtype(out.dtype) == expected
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(out), [-20.0 + 0.25 * 70.5])
    spec = layer.compute_output_spec(keras.KerasTensor((None, 133)))
    assert spec.dtype == expected and spec.shape == (None,)


class OrdinalDecodingLayerTest(testing.TestCase):
    """Keras's own layer checks, mixed precision included."""

    def test_run_layer_test(self):
        probs = np.array([[0.9, 0.7, 0.6, 0.2, 0.1], [0.1, 0.1, 0.1, 0.1, 0.1]],
                         np.float32)
        self.run_layer_test(
            ordinal.OrdinalDecoding,
            {"low": -2.0, "bin_size": 0.5},
            input_data=probs,
            expected_output=keras.ops.convert_to_tensor([-0.25, -1.75]),
            expected_num_trainable_weights=0,
            expected_num_non_trainable_weights=0,
            # No weights to train; the harness's sum-of-outputs loss has no
            # gradient through a count.
            run_training_check=False,
        )


@pytest.mark.parametrize(
    "kwargs, match",
    [({"low": 0.0, "bin_size": 0.0}, "bin_size"),
     ({"low": float("inf"), "bin_size": 1.0}, "low"),
     ({"low": None, "bin_size": 1.0}, "Received: low=None"),
     ({"low": 0.0, "bin_size": "0.3"}, "Received: bin_size='0.3'")],
)
def test_decoding_layer_invalid_arguments_raise(kwargs, match):
    with pytest.raises(ValueError, match=match):
        ordinal.OrdinalDecoding(**kwargs)
