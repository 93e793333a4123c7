import math

import numpy as np
import pytest

from tat_keras import smoothing


def _reference_one_euro(values, times, min_cutoff, beta, d_cutoff):
    """The reference implementation's recurrences, written out in NumPy."""

    def alpha(te, fc):
        tau = 1.0 / (2 * math.pi * fc)
        return 1.0 / (1.0 + tau / te)

    values = np.asarray(values, np.float64)
    out = np.empty_like(values)
    out[0], dx_hat = values[0], np.zeros_like(values[0])
    for i in range(1, len(values)):
        te = times[i] - times[i - 1]
        dx = (values[i] - out[i - 1]) / te
        a_d = alpha(te, d_cutoff)
        dx_hat = a_d * dx + (1 - a_d) * dx_hat
        fc = min_cutoff + beta * np.abs(dx_hat)
        a = alpha(te, fc)
        out[i] = a * values[i] + (1 - a) * out[i - 1]
    return out


def test_one_euro_hand_derived_sequence():
    # fc = 1 / (2 pi) Hz gives tau = 1 s; with Te = 1 s every alpha is 1/2.
    fc = 1 / (2 * math.pi)
    f = smoothing.OneEuroFilter(min_cutoff=fc, beta=0.0, d_cutoff=fc)
    assert [f(v, t) for v, t in zip([0.0, 2.0, 2.0, 2.0], [0, 1, 2, 3])] == pytest.approx(
        [0.0, 1.0, 1.5, 1.75]
    )
    # With beta: dx = 2, dx_hat = 1/2 * 2 = 1, fc = 1/(2 pi) + beta * 1 = 2/(2 pi),
    # tau = 1/2, alpha = 1 / (1 + 1/2) = 2/3, x_hat = 2/3 * 2 = 4/3.
    f = smoothing.OneEuroFilter(min_cutoff=fc, beta=fc, d_cutoff=fc)
    assert f(0.0, 0.0) == 0.0
    assert f(2.0, 1.0) == pytest.approx(4.0 / 3.0)


@pytest.mark.parametrize("min_cutoff,beta,d_cutoff", [(1.0, 0.0, 1.0), (0.3, 0.05, 1.0), (2.0, 1.0, 0.5)])
def test_one_euro_matches_reference_recurrences(min_cutoff, beta, d_cutoff):
    rng = np.random.default_rng(0)
    times = np.cumsum(rng.uniform(0.02, 0.1, 60))
    values = np.cumsum(rng.normal(0, 1, (60, 2)), axis=0)
    expected = _reference_one_euro(values, times, min_cutoff, beta, d_cutoff)
    got = smoothing.filter_sequence(
        smoothing.OneEuroFilter(min_cutoff, beta, d_cutoff), values, times
    )
    np.testing.assert_allclose(got, expected, rtol=1e-12)
    # Components are filtered independently: column 0 alone gives column 0.
    alone = smoothing.filter_sequence(
        smoothing.OneEuroFilter(min_cutoff, beta, d_cutoff), values[:, 0], times
    )
    np.testing.assert_allclose(alone, expected[:, 0], rtol=1e-12)


def test_one_euro_with_zero_beta_is_a_low_pass_at_min_cutoff():
    # Published behaviour: with beta = 0 the filter is a first-order low-pass
    # of cutoff min_cutoff, which passes a sine at that frequency with gain
    # 1/sqrt(2) (-3 dB) when sampled much faster than tau.
    rate, cutoff = 2000.0, 2.0
    times = np.arange(0, 5, 1 / rate)
    signal = np.sin(2 * np.pi * cutoff * times)
    out = smoothing.filter_sequence(smoothing.OneEuroFilter(cutoff, 0.0), signal, times)
    steady = out[times > 3]
    assert np.max(np.abs(steady)) == pytest.approx(1 / math.sqrt(2), rel=0.01)


def test_one_euro_beta_reduces_lag_and_keeps_a_still_signal_steady():
    # Published behaviour: a higher beta follows a moving signal more closely
    # while the jitter of a still noisy signal stays at the low-cutoff level.
    rate = 60.0
    times = np.arange(0, 2, 1 / rate)
    ramp = 20.0 * times  # 20 units/s.
    slow = smoothing.filter_sequence(smoothing.OneEuroFilter(1.0, 0.0), ramp, times)
    fast = smoothing.filter_sequence(smoothing.OneEuroFilter(1.0, 0.5), ramp, times)
    assert np.abs(fast - ramp)[-1] < 0.25 * np.abs(slow - ramp)[-1]
    noise = np.random.default_rng(1).normal(0, 0.01, len(times))
    still_slow = smoothing.filter_sequence(smoothing.OneEuroFilter(1.0, 0.0), noise, times)
    still_fast = smoothing.filter_sequence(smoothing.OneEuroFilter(1.0, 0.5), noise, times)
    assert np.std(still_fast) < 1.1 * np.std(still_slow)
    assert np.std(still_slow) < 0.5 * np.std(noise)


def test_ema_matches_closed_form_step_response():
    times = np.arange(0, 1.0, 0.05)
    step = np.ones_like(times)
    step[0] = 0.0
    out = smoothing.filter_sequence(smoothing.ExponentialMovingAverage(0.2), step, times)
    np.testing.assert_allclose(out, 1.0 - np.exp(-times / 0.2), rtol=1e-12)


def _reference_kalman(values, times, q, r, v0):
    x = np.array([values[0], 0.0])
    p = np.diag([r, v0])
    out = [values[0]]
    h = np.array([[1.0, 0.0]])
    for i in range(1, len(values)):
        t = times[i] - times[i - 1]
        f = np.array([[1.0, t], [0.0, 1.0]])
        qm = q * np.array([[t**3 / 3, t**2 / 2], [t**2 / 2, t]])
        x = f @ x
        p = f @ p @ f.T + qm
        s = h @ p @ h.T + r
        k = p @ h.T / s
        x = x + (k * (values[i] - h @ x)).ravel()
        p = (np.eye(2) - k @ h) @ p
        out.append(x[0])
    return np.array(out)


def test_kalman_matches_matrix_form():
    rng = np.random.default_rng(2)
    times = np.cumsum(rng.uniform(0.03, 0.09, 40))
    values = np.cumsum(rng.normal(0, 1, (40, 2)), axis=0)
    got = smoothing.filter_sequence(
        smoothing.ConstantVelocityKalman(50.0, 0.5, 10.0), values, times
    )
    for column in range(2):
        np.testing.assert_allclose(
            got[:, column],
            _reference_kalman(values[:, column], times, 50.0, 0.5, 10.0),
            rtol=1e-10,
        )


def test_kalman_tracks_a_ramp_without_steady_lag():
    times = np.arange(0, 3, 1 / 30)
    ramp = 10.0 * times
    out = smoothing.filter_sequence(smoothing.ConstantVelocityKalman(10.0, 1.0), ramp, times)
    assert abs(out[-1] - ramp[-1]) < 0.05


@pytest.mark.parametrize("name", sorted(smoothing.FILTERS))
def test_first_value_passes_and_reset_restarts(name):
    f = smoothing.FILTERS[name]()
    assert f([3.0, -1.0], 0.0).tolist() == [3.0, -1.0]
    moved = f([0.0, 0.0], 0.1)
    assert not np.allclose(moved, [0.0, 0.0])
    f.reset()
    assert f([0.0, 0.0], 0.05).tolist() == [0.0, 0.0]


@pytest.mark.parametrize("name", sorted(smoothing.FILTERS))
def test_timestamps_going_backwards_are_refused(name):
    f = smoothing.FILTERS[name]()
    f(1.0, 1.0)
    with pytest.raises(ValueError, match="timestamps must increase"):
        f(1.0, 0.5)
    with pytest.raises(ValueError, match="timestamps must increase"):
        f(1.0, 1.0)


def test_shape_changes_are_refused():
    f = smoothing.OneEuroFilter()
    f([1.0, 2.0], 0.0)
    with pytest.raises(ValueError, match="keep the shape"):
        f([1.0, 2.0, 3.0], 0.1)
    with pytest.raises(ValueError, match="scalar or a vector"):
        smoothing.OneEuroFilter()(np.zeros((2, 2)), 0.0)


@pytest.mark.parametrize(
    "kwargs,match",
    [
        ({"min_cutoff": 0.0}, "min_cutoff must be a positive number. Received: min_cutoff=0.0"),
        ({"beta": -1.0}, "beta must be a non-negative number. Received: beta=-1.0"),
        ({"d_cutoff": float("nan")}, "d_cutoff must be a positive number"),
    ],
)
def test_one_euro_arguments_are_validated(kwargs, match):
    with pytest.raises(ValueError, match=match):
        smoothing.OneEuroFilter(**kwargs)


def test_other_filters_arguments_are_validated():
    with pytest.raises(ValueError, match="time_constant must be a positive number"):
        smoothing.ExponentialMovingAverage(-0.1)
    with pytest.raises(ValueError, match="measurement_noise must be a positive number"):
        smoothing.ConstantVelocityKalman(measurement_noise=0.0)


def test_step_lag_reads_the_first_crossing_along_the_step():
    times = np.arange(6) / 10.0
    # A 2-D step from (0, 0) to (3, 4); the projection is (3x + 4y) / 25.
    outputs = np.array([[0, 0], [0, 0], [1.5, 2], [2.7, 3.6], [3, 4], [3, 4]], float)
    assert smoothing.step_lag(times, outputs, [0, 0], [3, 4], 0.1) == pytest.approx(0.2)
    assert smoothing.step_lag(times, outputs, [0, 0], [3, 4], 0.1, fraction=0.5) == pytest.approx(0.1)
    assert math.isnan(smoothing.step_lag(times, outputs * 0.5, [0, 0], [3, 4], 0.1))
    with pytest.raises(ValueError, match="must differ"):
        smoothing.step_lag(times, outputs, [1, 1], [1, 1], 0.1)


def test_ema_lag_matches_its_time_constant():
    # 90% of a step takes ln(10) time constants.
    times = np.arange(0, 2, 1 / 1000)
    step = (times >= 0.5).astype(float)
    out = smoothing.filter_sequence(smoothing.ExponentialMovingAverage(0.1), step, times)
    lag = smoothing.step_lag(times, out, 0.0, 1.0, 0.5)
    assert lag == pytest.approx(0.1 * math.log(10), abs=2e-3)
