"""Streaming filters for gaze points: One Euro, moving average and Kalman.

A gaze estimate jitters from frame to frame while the user stares at one
point; a filter steadies it at the cost of lag when the gaze moves. Three
filters are compared in `recipes/jitter_vs_lag.py`:

- `OneEuroFilter` (Casiez, Roussel and Vogel, "1 Euro Filter: A Simple
  Speed-based Low-pass Filter for Noisy Input in Interactive Systems",
  CHI 2012): a first-order low-pass filter whose cutoff frequency rises with
  the speed of the signal, so it smooths hard at rest and little in motion.
- `ExponentialMovingAverage`: a first-order low-pass filter with a fixed
  time constant.
- `ConstantVelocityKalman`: a Kalman filter on position and velocity with
  white-noise acceleration.

All three take `(value, timestamp)` one sample at a time, with `value` a
scalar or a vector (each component filtered independently) and timestamps
in seconds that must increase; the first value passes through unchanged and
`reset()` forgets the past. Pure NumPy.

Example:

>>> f = OneEuroFilter(min_cutoff=1.0, beta=0.0)
>>> float(f(1.0, 0.0)), round(float(f(2.0, 0.1)), 4)
(1.0, 1.3859)
"""

import math

import numpy as np


def smoothing_factor(period, cutoff):
    """The low-pass smoothing factor `alpha = 1 / (1 + tau / Te)`.

    `tau = 1 / (2 pi fc)` is the time constant of a first-order low-pass
    filter of cutoff `fc` (Hz), `Te` the sampling period (s).

    Args:
      period: float or array. sampling period `Te` in seconds, positive.
      cutoff: float or array. cutoff frequency `fc` in Hz, positive.

    Example:

    >>> round(smoothing_factor(1.0, 1.0 / (2 * math.pi)), 6)
    0.5
    """
    tau = 1.0 / (2.0 * np.pi * np.asarray(cutoff, np.float64))
    alpha = 1.0 / (1.0 + tau / np.asarray(period, np.float64))
    return float(alpha) if np.ndim(alpha) == 0 else alpha


def _check_positive(name, value):
    if not (isinstance(value, (int, float)) and math.isfinite(value) and value > 0):
        raise ValueError(f"{name} must be a positive number. Received: {name}={value!r}")


def _check_non_negative(name, value):
    if not (isinstance(value, (int, float)) and math.isfinite(value) and value >= 0):
        raise ValueError(
            f"{name} must be a non-negative number. Received: {name}={value!r}"
        )


class _StreamingFilter:
    """Shared bookkeeping: value shape, increasing timestamps, reset."""

    def __init__(self):
        self.reset()

    def reset(self):
        """Forgets the past: the next value passes through unchanged."""
        self._last_time = None
        self._shape = None
        self._state = None

    def _start(self, value, timestamp):
        """Checks a sample; returns (value as float64 array, period or None)."""
        value = np.asarray(value, np.float64)
        if value.ndim > 1:
            raise ValueError(
                f"value must be a scalar or a vector. Received: shape={value.shape}"
            )
        if not np.all(np.isfinite(value)):
            raise ValueError(f"value must be finite. Received: value={value}")
        timestamp = float(timestamp)
        if not math.isfinite(timestamp):
            raise ValueError(f"timestamp must be finite. Received: timestamp={timestamp}")
        if self._last_time is None:
            self._shape = value.shape
            self._last_time = timestamp
            return value, None
        if value.shape != self._shape:
            raise ValueError(
                f"value must keep the shape of the first value {self._shape} "
                f"until reset(). Received: shape={value.shape}"
            )
        if timestamp <= self._last_time:
            raise ValueError(
                "timestamps must increase (seconds); a timestamp that goes "
                "backwards or repeats is refused. Call reset() to start a new "
                f"stream. Received: timestamp={timestamp} after {self._last_time}"
            )
        period = timestamp - self._last_time
        self._last_time = timestamp
        return value, period

    @staticmethod
    def _output(value):
        return float(value) if value.ndim == 0 else value.copy()


class OneEuroFilter(_StreamingFilter):
    """The One Euro filter (Casiez et al., CHI 2012), streaming.

    For each sample at period `Te` after the previous one:

        dx      = (x - x_hat_prev) / Te
        dx_hat  = alpha(Te, d_cutoff) dx + (1 - alpha(Te, d_cutoff)) dx_hat_prev
        fc      = min_cutoff + beta |dx_hat|
        x_hat   = alpha(Te, fc) x + (1 - alpha(Te, fc)) x_hat_prev

    with `alpha(Te, fc) = 1 / (1 + tau / Te)` and `tau = 1 / (2 pi fc)`.
    The first value passes through unchanged (its derivative estimate is
    0). Lower `min_cutoff` steadies a still gaze more; higher `beta` follows
    fast moves with less lag.

    Args:
      min_cutoff: float. minimum cutoff frequency in Hz, positive.
      beta: float. speed coefficient (cutoff Hz per unit of speed), >= 0.
      d_cutoff: float. cutoff frequency of the speed estimate in Hz, positive.

    Example:

    >>> f = OneEuroFilter(min_cutoff=0.5, beta=0.1)
    >>> [round(float(v), 3) for v in (f([0.0, 1.0], 0.0))]
    [0.0, 1.0]
    """

    def __init__(self, min_cutoff=1.0, beta=0.0, d_cutoff=1.0):
        _check_positive("min_cutoff", min_cutoff)
        _check_non_negative("beta", beta)
        _check_positive("d_cutoff", d_cutoff)
        self.min_cutoff = float(min_cutoff)
        self.beta = float(beta)
        self.d_cutoff = float(d_cutoff)
        super().__init__()

    def __call__(self, value, timestamp):
        """Filters one sample; returns a float or a float64 vector.

        Args:
          value: float or 1-D array. the raw sample.
          timestamp: float. seconds, larger than the previous one.
        """
        value, period = self._start(value, timestamp)
        if period is None:
            self._state = (value, np.zeros_like(value))
            return self._output(value)
        previous, previous_speed = self._state
        speed = (value - previous) / period
        speed_alpha = smoothing_factor(period, self.d_cutoff)
        speed = speed_alpha * speed + (1.0 - speed_alpha) * previous_speed
        cutoff = self.min_cutoff + self.beta * np.abs(speed)
        alpha = smoothing_factor(period, cutoff)
        filtered = alpha * value + (1.0 - alpha) * previous
        self._state = (filtered, speed)
        return self._output(filtered)

    def get_config(self):
        return {"min_cutoff": self.min_cutoff, "beta": self.beta, "d_cutoff": self.d_cutoff}


class ExponentialMovingAverage(_StreamingFilter):
    """A first-order low-pass filter with a fixed time constant.

    `x_hat = x_hat_prev + (1 - exp(-Te / time_constant)) (x - x_hat_prev)`,
    which weighs samples the same way whatever the frame rate.

    Args:
      time_constant: float. seconds, positive; the output covers 63% of a
        step in one time constant.

    Example:

    >>> f = ExponentialMovingAverage(time_constant=0.1)
    >>> float(f(0.0, 0.0)), round(float(f(1.0, 0.1)), 4)
    (0.0, 0.6321)
    """

    def __init__(self, time_constant=0.1):
        _check_positive("time_constant", time_constant)
        self.time_constant = float(time_constant)
        super().__init__()

    def __call__(self, value, timestamp):
        """Filters one sample; returns a float or a float64 vector."""
        value, period = self._start(value, timestamp)
        if period is None:
            self._state = value
            return self._output(value)
        alpha = 1.0 - math.exp(-period / self.time_constant)
        self._state = self._state + alpha * (value - self._state)
        return self._output(self._state)

    def get_config(self):
        return {"time_constant": self.time_constant}


class ConstantVelocityKalman(_StreamingFilter):
    """A Kalman filter on position and velocity, each component on its own.

    State `[p, v]`, transition `F = [[1, Te], [0, 1]]`, process noise of a
    white-noise acceleration of spectral density `q`:
    `Q = q [[Te^3/3, Te^2/2], [Te^2/2, Te]]`; the measurement is the
    position with variance `r`. The first value sets the position (variance
    `r`) and a zero velocity of variance `initial_velocity_variance`.

    Args:
      process_noise: float. `q`, in (units / s^2)^2 per Hz, positive; larger
        follows moves faster.
      measurement_noise: float. `r`, variance of a raw sample, positive.
      initial_velocity_variance: float. prior variance of the velocity.

    Example:

    >>> f = ConstantVelocityKalman(process_noise=100.0, measurement_noise=1.0)
    >>> float(f(0.0, 0.0))
    0.0
    """

    def __init__(self, process_noise=100.0, measurement_noise=1.0,
                 initial_velocity_variance=100.0):
        _check_positive("process_noise", process_noise)
        _check_positive("measurement_noise", measurement_noise)
        _check_positive("initial_velocity_variance", initial_velocity_variance)
        self.process_noise = float(process_noise)
        self.measurement_noise = float(measurement_noise)
        self.initial_velocity_variance = float(initial_velocity_variance)
        super().__init__()

    def __call__(self, value, timestamp):
        """Filters one sample; returns a float or a float64 vector."""
        value, period = self._start(value, timestamp)
        flat = value.reshape(-1)
        if period is None:
            state = np.stack([flat, np.zeros_like(flat)], axis=-1)  # (n, 2)
            covariance = np.zeros((flat.size, 2, 2))
            covariance[:, 0, 0] = self.measurement_noise
            covariance[:, 1, 1] = self.initial_velocity_variance
            self._state = (state, covariance)
            return self._output(value)
        state, covariance = self._state
        t = period
        transition = np.array([[1.0, t], [0.0, 1.0]])
        noise = self.process_noise * np.array(
            [[t**3 / 3.0, t**2 / 2.0], [t**2 / 2.0, t]]
        )
        # Predict.
        state = state @ transition.T
        covariance = transition @ covariance @ transition.T + noise
        # Update with the measured position (H = [1, 0]).
        innovation = flat - state[:, 0]
        innovation_variance = covariance[:, 0, 0] + self.measurement_noise
        gain = covariance[:, :, 0] / innovation_variance[:, None]  # (n, 2)
        state = state + gain * innovation[:, None]
        covariance = covariance - gain[:, :, None] * covariance[:, None, 0, :]
        self._state = (state, covariance)
        return self._output(state[:, 0].reshape(value.shape))

    def get_config(self):
        return {
            "process_noise": self.process_noise,
            "measurement_noise": self.measurement_noise,
            "initial_velocity_variance": self.initial_velocity_variance,
        }


FILTERS = {
    "one_euro": OneEuroFilter,
    "ema": ExponentialMovingAverage,
    "kalman": ConstantVelocityKalman,
}


def filter_sequence(filter_, values, timestamps):
    """Runs a fresh stream of `values` through `filter_` (reset first).

    Args:
      filter_: a filter of this module.
      values: array (N,) or (N, D).
      timestamps: array (N,) in seconds, increasing.

    Returns:
      float64 array shaped like `values`.

    Example:

    >>> filter_sequence(ExponentialMovingAverage(1.0), [1.0, 1.0], [0.0, 1.0]).tolist()
    [1.0, 1.0]
    """
    values = np.asarray(values, np.float64)
    timestamps = np.asarray(timestamps, np.float64).reshape(-1)
    if len(values) != len(timestamps):
        raise ValueError(
            "values and timestamps need one entry each per sample. Received: "
            f"{len(values)} values, {len(timestamps)} timestamps"
        )
    filter_.reset()
    out = np.empty_like(values)
    for i, (value, timestamp) in enumerate(zip(values, timestamps)):
        out[i] = filter_(value, timestamp)
    return out


def step_lag(times, outputs, start_level, end_level, change_time, fraction=0.9):
    """Time an output takes to cover `fraction` of a step between two levels.

    The output is projected on the line from `start_level` to `end_level`;
    the lag is the first time, from `change_time` on, at which the projection
    reaches `fraction` of the step, minus `change_time`.

    Args:
      times: array (N,). seconds, increasing.
      outputs: array (N,) or (N, D). the (filtered) signal.
      start_level, end_level: float or (D,). the levels before and after.
      change_time: float. when the step happened.
      fraction: float in (0, 1].

    Returns:
      float seconds; NaN when the output never gets there.

    Example:

    >>> step_lag([0, 1, 2, 3], [0.0, 0.5, 0.95, 1.0], 0.0, 1.0, 1.0)
    1.0
    """
    if not 0.0 < fraction <= 1.0:
        raise ValueError(f"fraction must lie in (0, 1]. Received: fraction={fraction}")
    times = np.asarray(times, np.float64).reshape(-1)
    outputs = np.asarray(outputs, np.float64).reshape(len(times), -1)
    start = np.asarray(start_level, np.float64).reshape(-1)
    step = np.asarray(end_level, np.float64).reshape(-1) - start
    size = float(np.dot(step, step))
    if size == 0.0:
        raise ValueError("start_level and end_level must differ.")
    progress = (outputs - start) @ step / size
    reached = np.flatnonzero((times >= change_time) & (progress >= fraction))
    return float(times[reached[0]] - change_time) if len(reached) else float("nan")
