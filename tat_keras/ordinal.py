"""Ordinal labels, decoding and loss (Eq. 1-4 of Guo et al. 2019).

A gaze coordinate in cm is turned into a vector of `num_bins` binary labels
("is the value above this bin's edge?"); the network predicts one sigmoid
probability per bin and is trained with the sum over bins of binary
cross-entropy. Decoding counts the bins whose probability is at least 0.5.

Readings taken where the paper is ambiguous (see docs/interpretation.md):

- Values are shifted by `low`, the lower edge of the label range. Code bin
  `b` (0-based) is 1 when `(b + 1) * bin_size <= value - low`; the paper's
  1-based bin `b` is code bin `b - 1`.
- Decoding (Eq. 3) is `low + bin_size * (count(p >= 0.5) + 0.5)`, so a
  perfect label decodes to the centre of its interval.
- Values outside `[low, low + (num_bins + 1) * bin_size)` are clipped into
  the range before encoding.
- The loss is the per-sample sum over bins, averaged over the batch. Soft
  targets (a teacher's probabilities, Eq. 4, or mixed labels, Eq. 8) use the
  same binary cross-entropy.
- Center bins (DwO, Fig. 2): with `c = count(p >= 0.5)` and
  `k = num_center_bins // 2`, the center bins are `c - k .. c + k - 1`,
  truncated to `0 .. num_bins - 1`.
"""

import math
import numbers

import keras
import numpy as np
from keras import ops

# Probabilities are clipped to [_EPSILON, 1 - _EPSILON] before the logarithms;
# in float32, where 1 - 1e-7 is still below 1 (in float16 it rounds to 1).
_EPSILON = 1e-7


def _is_real(value):
    """True for a finite real number (bools excluded)."""
    return (
        isinstance(value, numbers.Real)
        and not isinstance(value, bool)
        and math.isfinite(value)
    )


def _is_numpy(value):
    return isinstance(value, (np.ndarray, np.generic, float, int, list, tuple))


class OrdinalBins:
    """The ordinal label range of one axis (Eq. 1 and Eq. 3).

    Args:
        low: float. Lower edge of the label range, in cm.
        bin_size: float. Width of one interval, in cm.
        num_bins: int. Number of bins `B`; the range holds `B + 1`
            intervals, so its upper edge is `low + (B + 1) * bin_size`.

    Example:

    >>> bins = OrdinalBins(low=-1.0, bin_size=0.5, num_bins=4)
    >>> bins.encode(np.array([0.2]))
    array([[1., 1., 0., 0.]], dtype=float32)
    >>> float(bins.decode(bins.encode(np.array([0.2])))[0])
    0.25
    """

    def __init__(self, low, bin_size, num_bins):
        if not _is_real(low):
            raise ValueError(f"low must be a finite number. Received: low={low!r}")
        if not _is_real(bin_size) or not bin_size > 0:
            raise ValueError(
                f"bin_size must be a positive number. Received: bin_size={bin_size!r}"
            )
        if not _is_real(num_bins) or int(num_bins) != num_bins or num_bins < 1:
            raise ValueError(
                "num_bins must be a positive integer. "
                f"Received: num_bins={num_bins!r}"
            )
        self.low = float(low)
        self.bin_size = float(bin_size)
        self.num_bins = int(num_bins)

    @classmethod
    def from_range(cls, low, high, num_bins):
        """Bins that split `[low, high)` into `num_bins + 1` equal intervals."""
        if not _is_real(low) or not _is_real(high) or not high > low:
            raise ValueError(
                "low and high must be finite numbers with high above low. "
                f"Received: low={low!r}, high={high!r}"
            )
        return cls(low, (high - low) / (num_bins + 1), num_bins)

    @property
    def high(self):
        """Upper edge of the label range (exclusive), in cm."""
        return self.low + (self.num_bins + 1) * self.bin_size

    def clip(self, values):
        """Clips values into `[low, high)`; NumPy or tensor in, same out."""
        # Stay half a bin inside the upper edge so the clipped value still
        # falls into the last interval.
        upper = self.high - 0.5 * self.bin_size
        if _is_numpy(values):
            return np.clip(np.asarray(values, np.float32), self.low, upper)
        return ops.clip(ops.cast(values, "float32"), self.low, upper)

    def count_outside(self, values):
        """How many of `values` lie outside `[low, high)` (NumPy)."""
        values = np.asarray(values, np.float64)
        return int(np.sum((values < self.low) | (values >= self.high)))

    def encode(self, values):
        """Ordinal label vectors of `values` in cm (Eq. 1).

        Args:
            values: array or tensor of any shape `S`, in cm.

        Returns:
            float32 array (NumPy in, NumPy out) or tensor of shape
            `S + (num_bins,)`.
        """
        edges = (np.arange(self.num_bins, dtype=np.float32) + 1.0) * self.bin_size
        if _is_numpy(values):
            shifted = self.clip(values) - np.float32(self.low)
            return (edges <= shifted[..., None]).astype(np.float32)
        shifted = self.clip(values) - self.low
        return ops.cast(ops.expand_dims(shifted, -1) >= edges, "float32")

    def decode(self, probs):
        """Values in cm from bin probabilities (Eq. 3).

        Args:
            probs: array or tensor of shape `S + (num_bins,)`.

        Returns:
            float32 array or tensor of shape `S`.
        """
        if _is_numpy(probs):
            probs = np.asarray(probs)
            count = np.sum(probs >= 0.5, axis=-1).astype(np.float32)
            return (self.low + self.bin_size * (count + 0.5)).astype(np.float32)
        count = ops.sum(ops.cast(probs >= 0.5, "float32"), axis=-1)
        return self.low + self.bin_size * (count + 0.5)

    def get_config(self):
        return {"low": self.low, "bin_size": self.bin_size, "num_bins": self.num_bins}

    @classmethod
    def from_config(cls, config):
        return cls(**config)

    def __repr__(self):
        return (
            f"OrdinalBins(low={self.low:g}, bin_size={self.bin_size:g}, "
            f"num_bins={self.num_bins})"
        )

    def __eq__(self, other):
        return isinstance(other, OrdinalBins) and self.get_config() == other.get_config()


def center_bin_mask(probs, num_center_bins):
    """Mask of the center bins around each prediction (DwO, Fig. 2).

    With `c = count(p >= 0.5)` and `k = num_center_bins // 2`, bins
    `c - k .. c + k - 1` (0-based) are 1, truncated at the edges of the
    range (fewer bins there, never shifted). `num_center_bins=None` means
    every bin.

    Args:
        probs: array or tensor `(..., num_bins)` of bin probabilities.
        num_center_bins: int or None. The total count `2k` of center bins.

    Returns:
        float32 mask of the same shape and kind as `probs`.

    Example:

    >>> center_bin_mask(np.array([[0.9, 0.8, 0.2, 0.1, 0.0]]), 2)
    array([[0., 1., 1., 0., 0.]], dtype=float32)
    """
    if num_center_bins is not None and (
        not isinstance(num_center_bins, (int, float, np.integer, np.floating))
        or isinstance(num_center_bins, bool)
        or not np.isfinite(num_center_bins)
        or int(num_center_bins) != num_center_bins
        or num_center_bins < 2
    ):
        raise ValueError(
            "num_center_bins must be an even integer >= 2 or None (all bins). "
            f"Received: num_center_bins={num_center_bins}"
        )
    if num_center_bins is not None and num_center_bins % 2:
        raise ValueError(
            "num_center_bins counts 2k bins, k on each side, so it must be even. "
            f"Received: num_center_bins={num_center_bins}"
        )
    if _is_numpy(probs):
        probs = np.asarray(probs)
        if num_center_bins is None:
            return np.ones(probs.shape, np.float32)
        k = int(num_center_bins) // 2
        count = np.sum(probs >= 0.5, axis=-1, keepdims=True)
        index = np.arange(probs.shape[-1])
        return ((index >= count - k) & (index < count + k)).astype(np.float32)
    if num_center_bins is None:
        return ops.ones_like(probs, dtype="float32")
    k = int(num_center_bins) // 2
    count = ops.sum(ops.cast(probs >= 0.5, "int32"), axis=-1, keepdims=True)
    index = ops.arange(ops.shape(probs)[-1], dtype="int32")
    inside = ops.logical_and(index >= count - k, index < count + k)
    return ops.cast(inside, "float32")


@keras.saving.register_keras_serializable(package="tat_keras")
class OrdinalLoss(keras.losses.Loss):
    """Ordinal loss: per-sample sum over bins of binary cross-entropy (Eq. 2).

    Targets may be hard ordinal labels (Eq. 1) or soft ones: a teacher's bin
    probabilities (Eq. 4) or mixed labels (Eq. 8). With `num_center_bins`,
    only the center bins of the prediction count (DwO, see
    `center_bin_mask`); the mask is treated as a constant.

    The cross-entropy is always computed in float32 (float64 stays
    float64), whatever the dtype of the probabilities or of the loss: in
    float16, `1 - 1e-7` rounds to 1, so a perfect prediction would give
    `0 * log(0)`, NaN. Only the reduced value is cast to the loss's `dtype`.

    Args:
        num_center_bins: int or None. Even count of center bins, or None for
            all bins.
        name: str. Name of the loss.
        **kwargs: base loss keyword arguments (`reduction`, `dtype`).

    Example:

    >>> loss = OrdinalLoss()
    >>> y_true = np.array([[1.0, 0.0]])
    >>> y_pred = np.array([[0.9, 0.2]])
    >>> round(float(loss(y_true, y_pred)), 4)  # -log(0.9) - log(0.8)
    0.3285
    """

    def __init__(self, num_center_bins=None, name="ordinal_loss", **kwargs):
        super().__init__(name=name, **kwargs)
        if num_center_bins is not None:
            center_bin_mask(np.zeros((1, 2)), num_center_bins)  # validates
        self.num_center_bins = num_center_bins

    def call(self, y_true, y_pred):
        y_pred = ops.convert_to_tensor(y_pred)
        dtype = "float64" if y_pred.dtype == "float64" else "float32"
        p = ops.clip(ops.cast(y_pred, dtype), _EPSILON, 1.0 - _EPSILON)
        y_true = ops.cast(y_true, dtype)
        bce = -(y_true * ops.log(p) + (1.0 - y_true) * ops.log(1.0 - p))
        if self.num_center_bins is not None:
            mask = ops.stop_gradient(center_bin_mask(y_pred, self.num_center_bins))
            bce = bce * ops.cast(mask, dtype)
        return ops.sum(bce, axis=-1)

    def get_config(self):
        config = super().get_config()
        config["num_center_bins"] = self.num_center_bins
        return config


@keras.saving.register_keras_serializable(package="tat_keras")
class OrdinalDecoding(keras.layers.Layer):
    """Decodes bin probabilities to cm inside a graph (Eq. 3).

    The decoded value is an output in cm, not an activation: it is computed
    in the dtype policy's variable dtype (float32 under `"mixed_float16"`,
    where float16 would round values near 20 cm to 1/64 cm). The
    probabilities are compared with 0.5 in the dtype they arrive in (the
    layer does not autocast them: a float32 0.4999 must not round to 0.5).

    Args:
        low: float. Lower edge of the label range, in cm.
        bin_size: float. Width of one interval, in cm.
        **kwargs: base layer keyword arguments (`name`, `dtype`, ...).

    Example:

    >>> layer = OrdinalDecoding(low=-1.0, bin_size=0.5)
    >>> float(layer(np.array([[0.9, 0.7, 0.2, 0.1]]))[0])
    0.25
    """

    def __init__(self, low, bin_size, **kwargs):
        kwargs.setdefault("autocast", False)
        super().__init__(**kwargs)
        OrdinalBins(low, bin_size, 1)  # validates
        self.low = float(low)
        self.bin_size = float(bin_size)
        self.built = True

    def call(self, probs):
        dtype = self.dtype_policy.variable_dtype
        count = ops.sum(ops.cast(probs >= 0.5, dtype), axis=-1)
        return self.low + self.bin_size * (count + 0.5)

    def compute_output_shape(self, input_shape):
        return tuple(input_shape[:-1])

    def compute_output_spec(self, probs):
        return keras.KerasTensor(
            self.compute_output_shape(probs.shape),
            dtype=self.dtype_policy.variable_dtype,
        )

    def get_config(self):
        config = super().get_config()
        config.update({"low": self.low, "bin_size": self.bin_size})
        return config
