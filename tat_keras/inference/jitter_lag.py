"""Jitter and lag of a stream of gaze predictions, raw or filtered.

The test recordings of the data are streams: a subject stares at one dot
for a stare sequence, then at the next. Jitter is the paper's MSD (Eq.
10-12) over the stare sequences; lag is the time the output takes to cover
90% of a dot change (`tat_keras.smoothing.step_lag`), measured between the
model's own mean raw outputs before and after the change, so that a
model's bias does not count as lag. `recipes/jitter_vs_lag.py` compares
filters and a DwO model with these.

All functions take the predictions in frame order within each recording and
a `meta` dict of (N,) arrays: `recording`, `dot`, `frame` and, for
`frame_rate`, `dot_time` (as `tat_keras.evaluation.predict_split` returns
them, sorted by recording and frame).

Example:

>>> import numpy as np
>>> meta = {"recording": np.zeros(4, int), "dot": np.array([0, 0, 1, 1]),
...         "frame": np.arange(4), "dot_time": np.array([0.5, 0.6, 0.3, 0.4])}
>>> round(frame_rate(meta), 6)
10.0
"""

import numpy as np

from tat_keras import metrics
from tat_keras import smoothing


def frame_rate(meta):
    """Frames per second from `dot_time` steps between consecutive frames of a dot."""
    same = (
        (np.diff(meta["recording"]) == 0)
        & (np.diff(meta["dot"]) == 0)
        & (np.diff(meta["frame"]) == 1)
    )
    steps = np.diff(np.asarray(meta["dot_time"], np.float64))[same]
    if not len(steps) or np.median(steps) <= 0:
        raise ValueError(
            "Cannot read a frame rate: no two consecutive frames of one dot "
            "with increasing dot_time."
        )
    return float(1.0 / np.median(steps))


def filter_recordings(make_filter, predictions, meta, rate):
    """Runs a fresh filter over each recording; returns (outputs, times).

    Args:
      make_filter: callable returning a filter of `tat_keras.smoothing`, or
        None for the raw predictions.
      predictions: array (N, 2), in frame order within each recording.
      meta: dict with `recording` and `frame` (N,).
      rate: float. frames per second; a frame's time is `frame / rate`.
    """
    predictions = np.asarray(predictions, np.float64)
    times = np.asarray(meta["frame"], np.float64) / rate
    if make_filter is None:
        return predictions.copy(), times
    out = np.empty_like(predictions)
    for recording in np.unique(meta["recording"]):
        rows = np.flatnonzero(meta["recording"] == recording)
        out[rows] = smoothing.filter_sequence(make_filter(), predictions[rows], times[rows])
    return out, times


def second_half(meta):
    """Boolean mask of the second half of each stare sequence (recording, dot)."""
    keep = np.zeros(len(meta["dot"]), bool)
    _, keys = np.unique(
        np.stack([meta["recording"], meta["dot"]], axis=1), axis=0, return_inverse=True
    )
    for key in np.unique(keys):
        rows = np.flatnonzero(keys.reshape(-1) == key)
        keep[rows[len(rows) // 2:]] = True
    return keep


def dot_changes(raw, meta, rate, min_step_cm, context=5):
    """The dot changes of each recording, as steps of the raw predictions.

    Args:
      raw: array (N, 2). raw predictions.
      meta: dict with `recording`, `dot`, `frame`.
      rate: float. frames per second.
      min_step_cm: float. smaller changes (of the mean raw outputs) are left out.
      context: int. frames of the old dot kept before the change (and
        averaged for its level).

    Returns:
      list of (rows, change_time, start_level, end_level): `rows` index the
      last `context` frames of the old dot and all frames of the new one;
      the start level is the mean raw output over those old frames, the end
      level over the second half of the new dot.
    """
    raw = np.asarray(raw, np.float64)
    times = np.asarray(meta["frame"], np.float64) / rate
    found = []
    for recording in np.unique(meta["recording"]):
        rows = np.flatnonzero(meta["recording"] == recording)
        dots = np.asarray(meta["dot"])[rows]
        for i in np.flatnonzero(np.diff(dots) != 0):
            old = rows[: i + 1][dots[: i + 1] == dots[i]][-context:]
            new = rows[i + 1:][dots[i + 1:] == dots[i + 1]]
            if len(old) < min(4, context) or len(new) < 4:
                continue
            start = raw[old].mean(axis=0)
            end = raw[new[len(new) // 2:]].mean(axis=0)
            if np.linalg.norm(end - start) >= min_step_cm:
                found.append((np.concatenate([old, new]), times[new[0]], start, end))
    return found


def jitter_and_lag(outputs, raw, gaze_true, meta, rate, *, min_step_cm=3.0,
                   msd_min_length=5, fraction=0.9):
    """MSD, MSD over second halves, mean lag and error of one output stream.

    Args:
      outputs: array (N, 2). the (filtered) predictions.
      raw: array (N, 2). the raw predictions that set the dot change levels.
      gaze_true: array (N, 2). the labels, for the error.
      meta: dict with `recording`, `dot`, `frame`.
      rate: float. frames per second.
      min_step_cm, msd_min_length, fraction: see `dot_changes`,
        `metrics.mean_standard_deviation`, `smoothing.step_lag`.

    Returns:
      dict: `msd_cm`, `msd_settled_cm`, `lag_ms` (mean over changes reached),
      `lag_never_reached`, `transitions`, `error_cm`.
    """
    outputs = np.asarray(outputs, np.float64)
    times = np.asarray(meta["frame"], np.float64) / rate
    ids = (np.asarray(meta["recording"]), np.asarray(meta["dot"]))
    settled = second_half(meta)
    lags = np.asarray([
        smoothing.step_lag(times[rows], outputs[rows], start, end, change, fraction)
        for rows, change, start, end in dot_changes(raw, meta, rate, min_step_cm)
    ])
    reached = lags[~np.isnan(lags)]
    return {
        "msd_cm": metrics.mean_standard_deviation(outputs, ids, min_length=msd_min_length),
        "msd_settled_cm": metrics.mean_standard_deviation(
            outputs[settled], (ids[0][settled], ids[1][settled]),
            min_length=max(msd_min_length // 2, 2),
        ),
        "lag_ms": 1000 * float(np.mean(reached)) if len(reached) else float("nan"),
        "lag_never_reached": int(np.sum(np.isnan(lags))),
        "transitions": int(len(lags)),
        "error_cm": float(np.mean(np.linalg.norm(outputs - gaze_true, axis=1))),
    }
