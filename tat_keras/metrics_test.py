"""Tests of the gaze metrics: error in cm and MSD (Eq. 10-12) against NumPy."""

import math

import keras
import numpy as np
import pytest
import tensorflow as tf

from tat_keras import metrics
from tat_keras import ordinal

BINS_X = ordinal.OrdinalBins(-20.0, 0.3, 133)
BINS_Y = ordinal.OrdinalBins(-25.0, 0.3, 98)


def reference_decode(probs, bins):
    """Eq. 3 with loops."""
    return np.array(
        [bins.low + bins.bin_size * (sum(1 for p in row if p >= 0.5) + 0.5) for row in probs]
    )


def reference_mean_error(gaze_true, gaze_pred, weights=None):
    distances, total_weight = 0.0, 0.0
    for i, (t, p) in enumerate(zip(gaze_true, gaze_pred)):
        w = 1.0 if weights is None else float(weights[i])
        distances += w * math.sqrt((t[0] - p[0]) ** 2 + (t[1] - p[1]) ** 2)
        total_weight += w
    return distances / total_weight


def reference_msd(predictions, keys, min_length=1):
    """Eq. 10-12 with loops; `keys[i]` names the sequence of prediction i."""
    sequences = {}
    for key, prediction in zip(keys, predictions):
        sequences.setdefault(key, []).append(prediction)
    sigmas = []
    for frames in sequences.values():
        if len(frames) < min_length:
            continue
        m = len(frames)
        mu = [sum(f[0] for f in frames) / m, sum(f[1] for f in frames) / m]  # Eq. 10
        squared = sum((f[0] - mu[0]) ** 2 + (f[1] - mu[1]) ** 2 for f in frames)
        sigmas.append(math.sqrt(squared / m))  # Eq. 11
    if not sigmas:
        return float("nan")
    return sum(sigmas) / len(sigmas)  # Eq. 12


# --- GazeErrorCm -------------------------------------------------------------


@pytest.mark.parametrize("batch", [1, 5, 32])
@pytest.mark.parametrize("as_tensor", [False, True])
def test_error_from_bin_probabilities(batch, as_tensor, rng):
    probs = {
        "x": rng.uniform(size=(batch, BINS_X.num_bins)).astype(np.float32),
        "y": rng.uniform(size=(batch, BINS_Y.num_bins)).astype(np.float32),
    }
    gaze_true = rng.uniform(-10.0, 10.0, size=(batch, 2)).astype(np.float32)
    decoded = np.stack(
        [reference_decode(probs["x"], BINS_X), reference_decode(probs["y"], BINS_Y)], 1
    )
    expected = reference_mean_error(gaze_true, decoded)
    metric = metrics.GazeErrorCm(BINS_X, BINS_Y)
    if as_tensor:
        probs = {k: tf.constant(v) for k, v in probs.items()}
        gaze_true = tf.constant(gaze_true)
    metric.update_state(gaze_true, probs)
    assert float(metric.result()) == pytest.approx(expected, rel=1e-5)


def test_error_from_cm_predictions_accumulates_over_batches(rng):
    metric = metrics.GazeErrorCm()
    all_true, all_pred = [], []
    for batch in (3, 1, 7):  # unequal batches: a mean over samples, not batches
        gaze_true = rng.uniform(-10.0, 10.0, size=(batch, 2))
        gaze_pred = rng.uniform(-10.0, 10.0, size=(batch, 2))
        metric.update_state(gaze_true, gaze_pred)
        all_true.extend(gaze_true)
        all_pred.extend(gaze_pred)
    assert float(metric.result()) == pytest.approx(
        reference_mean_error(all_true, all_pred), rel=1e-5
    )
    np.testing.assert_allclose(
        metrics.euclidean_error(all_true, all_pred),
        [math.dist(t, p) for t, p in zip(all_true, all_pred)],
    )


def test_error_with_sample_weight(rng):
    gaze_true = rng.uniform(-10.0, 10.0, size=(6, 2))
    gaze_pred = rng.uniform(-10.0, 10.0, size=(6, 2))
    weights = np.array([1.0, 0.0, 2.0, 0.5, 1.0, 0.0])
    metric = metrics.GazeErrorCm()
    metric.update_state(gaze_true, gaze_pred, sample_weight=weights)
    assert float(metric.result()) == pytest.approx(
        reference_mean_error(gaze_true, gaze_pred, weights), rel=1e-5
    )


def test_error_in_a_compiled_graph(rng):
    metric = metrics.GazeErrorCm(BINS_X, BINS_Y)

    signature = [
        tf.TensorSpec((None, 2)),
        tf.TensorSpec((None, 133)),
        tf.TensorSpec((None, 98)),
    ]

    @tf.function(input_signature=signature)
    def update(gaze_true, x, y):
        metric.update_state(gaze_true, {"x": x, "y": y})

    x = rng.uniform(size=(4, 133)).astype(np.float32)
    y = rng.uniform(size=(4, 98)).astype(np.float32)
    gaze_true = rng.uniform(-5.0, 5.0, size=(4, 2)).astype(np.float32)
    update(gaze_true, x, y)
    decoded = np.stack([reference_decode(x, BINS_X), reference_decode(y, BINS_Y)], 1)
    assert float(metric.result()) == pytest.approx(
        reference_mean_error(gaze_true, decoded), rel=1e-5
    )


def test_error_reset_state():
    metric = metrics.GazeErrorCm()
    assert float(metric.result()) == 0.0  # nothing seen yet: no NaN
    metric.update_state(np.array([[0.0, 0.0]]), np.array([[3.0, 4.0]]))
    assert float(metric.result()) == pytest.approx(5.0)
    metric.reset_state()
    assert float(metric.result()) == 0.0
    metric.update_state(np.array([[1.0, 1.0]]), np.array([[1.0, 2.0]]))
    assert float(metric.result()) == pytest.approx(1.0)


def test_error_config_round_trip():
    metric = metrics.GazeErrorCm(BINS_X, BINS_Y, name="val_error")
    config = metric.get_config()
    assert config["x_bins"] == BINS_X.get_config()
    assert config["y_bins"] == BINS_Y.get_config()
    again = metrics.GazeErrorCm.from_config(config)
    assert again.x_bins == BINS_X and again.y_bins == BINS_Y
    assert again.name == "val_error"
    assert again.get_config() == config
    again = keras.saving.deserialize_keras_object(keras.saving.serialize_keras_object(metric))
    assert isinstance(again, metrics.GazeErrorCm)
    assert again.x_bins == BINS_X
    none = metrics.GazeErrorCm.from_config(metrics.GazeErrorCm().get_config())
    assert none.x_bins is None and none.y_bins is None


def test_error_needs_bins_for_probabilities():
    metric = metrics.GazeErrorCm()
    with pytest.raises(ValueError, match="x_bins and y_bins"):
        metric.update_state(np.zeros((1, 2)), {"x": np.zeros((1, 3)), "y": np.zeros((1, 3))})


@pytest.mark.parametrize("bins", ["x", 3, {"low": 0.0}])
def test_error_rejects_bins_of_the_wrong_kind(bins):
    with pytest.raises(ValueError, match="x_bins must be an OrdinalBins.*Received: x_bins="):
        metrics.GazeErrorCm(bins, None)


def test_error_follows_the_metric_dtype(rng):
    bins = ordinal.OrdinalBins(0.0, 1.0, 4)
    metric = metrics.GazeErrorCm(bins, bins, dtype="float64")
    metric.update_state(np.array([[0.0, 0.0]]), np.array([[1e-9, 0.0]]))
    assert keras.backend.standardize_dtype(metric.result().dtype) == "float64"
    assert float(metric.result()) == pytest.approx(1e-9, rel=1e-6)


def test_euclidean_error_bad_shapes_raise():
    with pytest.raises(ValueError, match=r"\(N, 2\)"):
        metrics.euclidean_error(np.zeros((3, 2)), np.zeros((4, 2)))
    with pytest.raises(ValueError, match=r"\(N, 2\)"):
        metrics.euclidean_error(np.zeros((3, 3)), np.zeros((3, 3)))


# --- MSD (Eq. 10-12) -----------------------------------------------------------


@pytest.mark.parametrize("num_frames, num_sequences", [(1, 1), (10, 1), (50, 7), (300, 40)])
@pytest.mark.parametrize("min_length", [1, 3, 5])
@pytest.mark.parametrize("seed", [0, 1])
def test_msd_matches_reference(num_frames, num_sequences, min_length, seed):
    rng = np.random.default_rng(seed)
    predictions = rng.normal(0.0, 2.0, size=(num_frames, 2))
    ids = rng.integers(0, num_sequences, size=num_frames)
    expected = reference_msd(predictions, ids.tolist(), min_length)
    got = metrics.mean_standard_deviation(predictions, ids, min_length=min_length)
    if math.isnan(expected):
        assert math.isnan(got)
    else:
        assert got == pytest.approx(expected, rel=1e-10)


def test_msd_worked_example():
    # Sequence 0: points 0 and 2 on a line, sigma = 1; sequence 1: one point.
    predictions = np.array([[0.0, 0.0], [2.0, 0.0], [5.0, 5.0]])
    assert metrics.mean_standard_deviation(predictions, [0, 0, 1]) == pytest.approx(0.5)
    long_only = metrics.mean_standard_deviation(predictions, [0, 0, 1], min_length=2)
    assert long_only == pytest.approx(1.0)


def test_msd_of_single_frame_sequences_is_zero(rng):
    predictions = rng.normal(size=(9, 2))
    assert metrics.mean_standard_deviation(predictions, np.arange(9)) == 0.0
    constant = np.tile([[1.5, -2.0]], (6, 1))
    assert metrics.mean_standard_deviation(constant, np.zeros(6)) == pytest.approx(0.0)


def test_msd_tuple_ids_combine_recording_and_dot(rng):
    recording = np.array([1, 1, 1, 1, 2, 2, 2, 2, 2, 3])
    dot = np.array([0, 0, 1, 1, 0, 0, 0, 1, 1, 0])
    predictions = rng.normal(size=(10, 2))
    keys = list(zip(recording.tolist(), dot.tolist()))
    expected = reference_msd(predictions, keys)
    got = metrics.mean_standard_deviation(predictions, (recording, dot))
    assert got == pytest.approx(expected, rel=1e-10)
    # Dot 0 of recording 1 and of recording 2 are different sequences.
    assert got != pytest.approx(metrics.mean_standard_deviation(predictions, dot))
    as_lists = metrics.mean_standard_deviation(predictions, (recording.tolist(), dot.tolist()))
    assert as_lists == pytest.approx(expected, rel=1e-10)
    sigmas = metrics.sequence_standard_deviations(predictions, (recording, dot))
    assert len(sigmas) == len(set(keys))


@pytest.mark.parametrize(
    "min_length, expected_sequences", [(1, 4), (2, 3), (3, 2), (5, 1), (6, 0)]
)
def test_msd_min_length_filters_sequences(min_length, expected_sequences, rng):
    lengths = [1, 2, 3, 5]
    ids = np.repeat(np.arange(len(lengths)), lengths)
    predictions = rng.normal(size=(len(ids), 2))
    sigmas = metrics.sequence_standard_deviations(predictions, ids, min_length=min_length)
    assert len(sigmas) == expected_sequences
    expected = reference_msd(predictions, ids.tolist(), min_length)
    got = metrics.mean_standard_deviation(predictions, ids, min_length=min_length)
    if expected_sequences == 0:
        assert math.isnan(got)
    else:
        assert got == pytest.approx(expected, rel=1e-10)


def test_msd_of_nothing_is_nan():
    assert math.isnan(metrics.mean_standard_deviation(np.zeros((0, 2)), np.zeros(0)))
    assert math.isnan(
        metrics.mean_standard_deviation(np.zeros((0, 2)), (np.zeros(0), np.zeros(0)))
    )


@pytest.mark.parametrize(
    "predictions, ids, kwargs, match",
    [
        (np.zeros((4, 3)), np.zeros(4), {}, r"\(N, 2\)"),
        (np.zeros(4), np.zeros(4), {}, r"\(N, 2\)"),
        (np.zeros((4, 2, 1)), np.zeros(4), {}, r"\(N, 2\)"),
        (np.zeros((4, 2)), np.zeros(3), {}, "one entry per prediction"),
        (np.zeros((4, 2)), (np.zeros(4), np.zeros(5)), {}, "one entry per prediction"),
        (np.zeros((4, 2)), np.zeros(4), {"min_length": 0}, "min_length"),
        (np.zeros((4, 2)), np.zeros(4), {"min_length": "3"}, "Received: min_length='3'"),
    ],
)
def test_msd_bad_inputs_raise(predictions, ids, kwargs, match):
    with pytest.raises(ValueError, match=match):
        metrics.mean_standard_deviation(predictions, ids, **kwargs)
