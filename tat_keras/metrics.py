"""Gaze metrics: mean Euclidean error in cm, and jitter (MSD, Eq. 10-12)."""

import keras
import numpy as np
from keras import ops

from tat_keras import ordinal


@keras.saving.register_keras_serializable(package="tat_keras")
class GazeErrorCm(keras.metrics.Metric):
    """Mean Euclidean distance in cm between true and predicted gaze.

    `update_state(gaze_cm, y_pred)` takes the true gaze `(batch, 2)` in cm
    and either the model's dict of bin probabilities (`{"x": ..., "y": ...}`,
    decoded with Eq. 3) or predicted gaze `(batch, 2)` in cm. An optional
    `sample_weight` `(batch,)` (or a scalar) weights each sample's distance;
    the result is then the weighted mean.

    Args:
        x_bins: `OrdinalBins` or its config dict. Horizontal label range.
        y_bins: `OrdinalBins` or its config dict. Vertical label range.
        name: str. Name of the metric.

    Example:

    >>> bins = ordinal.OrdinalBins(0.0, 1.0, 4)
    >>> metric = GazeErrorCm(bins, bins)
    >>> metric.update_state(np.array([[0.0, 0.0]]), np.array([[3.0, 4.0]]))
    >>> float(metric.result())
    5.0
    """

    def __init__(self, x_bins=None, y_bins=None, name="error_cm", **kwargs):
        super().__init__(name=name, **kwargs)
        self.x_bins = _as_bins(x_bins, "x_bins")
        self.y_bins = _as_bins(y_bins, "y_bins")
        self.total = self.add_variable((), initializer="zeros", dtype=self.dtype, name="total")
        self.count = self.add_variable((), initializer="zeros", dtype=self.dtype, name="count")

    def update_state(self, y_true, y_pred, sample_weight=None):
        if isinstance(y_pred, dict):
            if self.x_bins is None or self.y_bins is None:
                raise ValueError(
                    "GazeErrorCm needs x_bins and y_bins to decode bin "
                    "probabilities; pass them or give predictions in cm. "
                    f"Received: x_bins={self.x_bins}, y_bins={self.y_bins}"
                )
            y_pred = ops.stack(
                [self.x_bins.decode(y_pred["x"]), self.y_bins.decode(y_pred["y"])],
                axis=-1,
            )
        y_true = ops.cast(y_true, self.dtype)
        y_pred = ops.cast(y_pred, self.dtype)
        distance = ops.sqrt(ops.sum(ops.square(y_true - y_pred), axis=-1))
        if sample_weight is None:
            self.total.assign_add(ops.sum(distance))
            self.count.assign_add(ops.cast(ops.shape(distance)[0], self.dtype))
            return
        weight = ops.broadcast_to(
            ops.reshape(ops.cast(sample_weight, self.dtype), (-1,)),
            ops.shape(distance),
        )
        self.total.assign_add(ops.sum(distance * weight))
        self.count.assign_add(ops.sum(weight))

    def result(self):
        return ops.divide_no_nan(self.total, self.count)

    def get_config(self):
        config = super().get_config()
        config["x_bins"] = self.x_bins.get_config() if self.x_bins else None
        config["y_bins"] = self.y_bins.get_config() if self.y_bins else None
        return config


def _as_bins(bins, name):
    if bins is None or isinstance(bins, ordinal.OrdinalBins):
        return bins
    if not isinstance(bins, dict) or set(bins) != {"low", "bin_size", "num_bins"}:
        raise ValueError(
            f"{name} must be an OrdinalBins, its config dict (low, bin_size, "
            f"num_bins) or None. Received: {name}={bins!r}"
        )
    return ordinal.OrdinalBins.from_config(bins)


def euclidean_error(gaze_true, gaze_pred):
    """Per-sample Euclidean distance in cm (NumPy), shape `(N,)`."""
    gaze_true = np.asarray(gaze_true, np.float64)
    gaze_pred = np.asarray(gaze_pred, np.float64)
    if gaze_true.shape != gaze_pred.shape or gaze_true.shape[-1:] != (2,):
        raise ValueError(
            "gaze_true and gaze_pred must both have shape (N, 2). Received: "
            f"{gaze_true.shape} and {gaze_pred.shape}"
        )
    return np.sqrt(np.sum((gaze_true - gaze_pred) ** 2, axis=-1))


def _sequence_keys(sequence_ids, n):
    if isinstance(sequence_ids, (tuple, list)) and sequence_ids and np.ndim(
        sequence_ids[0]
    ):
        columns = [np.asarray(c).reshape(-1) for c in sequence_ids]
    else:
        columns = [np.asarray(sequence_ids).reshape(-1)]
    for column in columns:
        if len(column) != n:
            raise ValueError(
                "Every sequence id array needs one entry per prediction. "
                f"Received: {len(column)} ids for {n} predictions"
            )
    keys = np.rec.fromarrays(columns) if len(columns) > 1 else columns[0]
    _, inverse = np.unique(keys, return_inverse=True)
    return inverse.reshape(-1)


def sequence_standard_deviations(predictions, sequence_ids, *, min_length=1):
    """Per-sequence spread of predictions, sigma(S_j) of Eq. 11.

    Args:
        predictions: array `(N, 2)` of predicted gaze in cm.
        sequence_ids: array `(N,)` of sequence ids, or a tuple of such
            arrays (e.g. `(recording, dot)`) whose combination names a
            sequence.
        min_length: int. Sequences with fewer frames are left out.

    Returns:
        float64 array of sigma per counted sequence, in order of first
        sorted sequence key.
    """
    predictions = np.asarray(predictions, np.float64)
    if predictions.ndim != 2 or predictions.shape[1] != 2:
        raise ValueError(
            f"predictions must have shape (N, 2). Received: {predictions.shape}"
        )
    if isinstance(min_length, bool) or not isinstance(min_length, (int, np.integer)) or (
        min_length < 1
    ):
        raise ValueError(
            f"min_length must be an integer of at least 1. Received: min_length={min_length!r}"
        )
    groups = _sequence_keys(sequence_ids, len(predictions))
    counts = np.bincount(groups)
    sums = np.stack(
        [np.bincount(groups, weights=predictions[:, i]) for i in range(2)], axis=1
    )
    means = sums / np.maximum(counts, 1)[:, None]
    squared = np.sum((predictions - means[groups]) ** 2, axis=1)
    variance = np.bincount(groups, weights=squared) / np.maximum(counts, 1)
    return np.sqrt(variance[counts >= min_length])


def mean_standard_deviation(predictions, sequence_ids, *, min_length=1):
    """MSD: the mean over sequences of the prediction spread (Eq. 10-12).

    For each sequence (frames of one subject staring at one point), sigma is
    the root of the mean squared Euclidean distance of the predictions from
    their mean; MSD is the mean of sigma over sequences, in cm.

    Args:
        predictions: array `(N, 2)` of predicted gaze in cm.
        sequence_ids: array `(N,)` or tuple of arrays naming the sequence of
            each prediction.
        min_length: int. Sequences shorter than this are left out.

    Returns:
        float. NaN when no sequence is long enough.

    Example:

    >>> preds = np.array([[0.0, 0.0], [2.0, 0.0], [5.0, 5.0]])
    >>> mean_standard_deviation(preds, np.array([0, 0, 1]))
    0.5
    """
    sigmas = sequence_standard_deviations(
        predictions, sequence_ids, min_length=min_length
    )
    return float(np.mean(sigmas)) if len(sigmas) else float("nan")
