import math

import numpy as np
import pytest

from tat_keras import metrics
from tat_keras import smoothing
from tat_keras.inference import jitter_lag

RATE = 15.0


@pytest.fixture(scope="module")
def stream():
    """Two recordings, three dots of 20 frames each; the raw output steps."""
    levels = {0: [(0.0, 0.0), (6.0, 0.0), (6.0, -8.0)], 1: [(1.0, 1.0), (1.0, 2.0), (-5.0, 2.0)]}
    meta = {k: [] for k in ("recording", "dot", "frame", "dot_time")}
    raw = []
    for recording, dots in levels.items():
        for dot, level in enumerate(dots):
            for i in range(20):
                meta["recording"].append(recording)
                meta["dot"].append(dot)
                meta["frame"].append(20 * dot + i)
                meta["dot_time"].append(0.4 + i / RATE)
                raw.append(level)
    return {k: np.asarray(v) for k, v in meta.items()}, np.asarray(raw, np.float64)


def test_frame_rate_from_dot_time(stream):
    meta, _ = stream
    assert jitter_lag.frame_rate(meta) == pytest.approx(RATE)


def test_dot_changes_skip_small_steps(stream):
    meta, raw = stream
    changes = jitter_lag.dot_changes(raw, meta, RATE, min_step_cm=3.0)
    # Recording 1's first change is 1 cm: left out. Three remain.
    assert [round(c[1] * RATE) for c in changes] == [20, 40, 40]
    np.testing.assert_allclose(changes[0][2], [0.0, 0.0])
    np.testing.assert_allclose(changes[0][3], [6.0, 0.0])
    assert len(changes[0][0]) == 5 + 20


def test_raw_steps_have_no_lag_and_ema_lags_as_derived(stream):
    meta, raw = stream
    result = jitter_lag.jitter_and_lag(raw, raw, raw, meta, RATE, min_step_cm=3.0)
    assert result["lag_ms"] == 0.0 and result["transitions"] == 3
    assert result["msd_cm"] == 0.0 and result["error_cm"] == 0.0
    tau = 0.2
    outputs, _ = jitter_lag.filter_recordings(
        lambda: smoothing.ExponentialMovingAverage(tau), raw, meta, RATE)
    result = jitter_lag.jitter_and_lag(outputs, raw, raw, meta, RATE, min_step_cm=3.0)
    # After the k-th new frame (k = 0, 1, ...) the output has covered
    # 1 - (1 - a)^(k + 1) of the step, a = 1 - exp(-dt / tau): the first k
    # with at least 90% is the lag in frames (the old level was reached to
    # within (1 - a)^20 = 0.1% first).
    a = 1 - math.exp(-1 / RATE / tau)
    k = math.ceil(math.log(0.1) / math.log(1 - a)) - 1
    assert k == 6
    assert result["lag_ms"] == pytest.approx(1000 * k / RATE)
    assert result["lag_never_reached"] == 0


def test_msd_matches_the_metric_and_second_half_mask(stream):
    meta, raw = stream
    noisy = raw + np.random.default_rng(0).normal(0, 0.3, raw.shape)
    result = jitter_lag.jitter_and_lag(noisy, raw, raw, meta, RATE)
    ids = (meta["recording"], meta["dot"])
    assert result["msd_cm"] == metrics.mean_standard_deviation(noisy, ids, min_length=5)
    mask = jitter_lag.second_half(meta)
    assert mask.sum() == 6 * 10
    np.testing.assert_array_equal(mask[:20], [False] * 10 + [True] * 10)
    assert result["msd_settled_cm"] == metrics.mean_standard_deviation(
        noisy[mask], (ids[0][mask], ids[1][mask]), min_length=2)
    np.testing.assert_allclose(
        result["error_cm"], np.mean(np.linalg.norm(noisy - raw, axis=1)))


def test_filters_restart_at_each_recording(stream):
    meta, raw = stream
    outputs, times = jitter_lag.filter_recordings(
        lambda: smoothing.OneEuroFilter(0.3, 0.0), raw, meta, RATE)
    first_of_second = np.flatnonzero(meta["recording"] == 1)[0]
    np.testing.assert_array_equal(outputs[first_of_second], raw[first_of_second])
    np.testing.assert_allclose(times, meta["frame"] / RATE)
