"""Measuring calibration on test subjects: which dots a user calibrates
on, each method fitted on them and tested on the others, and the mean
errors over subjects with their intervals.

Example:

>>> dots = np.array([[0.0, 0.0], [1.0, 1.0], [5.0, 5.0], [9.0, 0.0]])
>>> choose_calibration_dots(dots, 2)
[1, 3]
"""

import numpy as np

from tat_keras import reporting
from tat_keras.calibration.heads import PREDICTION_KEY

# GazeCapture's 13 calibration dots in fractions of the screen (x right,
# y down, as the user sees it): a 3x3 grid and the centres of the four
# quadrants between its rows and columns. The order makes the first k a
# sensible k-point layout: the centre (1), two opposite corners (3), all
# four corners (5), the 3x3 grid (9), everything (13).
GAZECAPTURE_13_POINT_LAYOUT = np.array(
    [
        (0.5, 0.5),
        (0.1, 0.1), (0.9, 0.9), (0.9, 0.1), (0.1, 0.9),
        (0.5, 0.1), (0.5, 0.9), (0.1, 0.5), (0.9, 0.5),
        (0.3, 0.3), (0.7, 0.7), (0.7, 0.3), (0.3, 0.7),
    ]
)


def choose_calibration_dots(dot_cm, k, layout_cm=None):
    """Indices of the `k` dots a user calibrates on; the others test.

    With `layout_cm` (the target positions of a calibration layout, such as
    `GAZECAPTURE_13_POINT_LAYOUT` placed on the user's screen, in order),
    each of its first `k` targets takes the nearest dot not taken yet.
    Without, the dots are spread over the screen: first the dot nearest the
    centre of all dots, then each time the dot farthest from those taken.

    Args:
        dot_cm: array `(M, 2)`. Position of each of the user's dots, cm.
        k: int. How many to calibrate on; at most `M - 1`, so that at
            least one dot is left to test on.
        layout_cm: array `(L, 2)` or None, `L >= k`.

    Returns:
        list of `k` indices into `dot_cm`.

    Example:

    >>> dots = np.array([[0.0, 0.0], [1.0, 1.0], [5.0, 5.0], [9.0, 0.0]])
    >>> choose_calibration_dots(dots, 2)
    [1, 3]
    """
    dot_cm = np.asarray(dot_cm, np.float64).reshape(-1, 2)
    if int(k) != k or k < 1:
        raise ValueError(f"k must be a positive integer. Received: k={k}")
    if k >= len(dot_cm):
        raise ValueError(
            f"Calibrating on {k} dots needs at least {k + 1} (one left to test "
            f"on). Received: {len(dot_cm)} dots"
        )
    if layout_cm is not None:
        layout_cm = np.asarray(layout_cm, np.float64).reshape(-1, 2)
        if len(layout_cm) < k:
            raise ValueError(f"The layout has {len(layout_cm)} targets, fewer than k={k}.")
        free = list(range(len(dot_cm)))
        chosen = []
        for target in layout_cm[:k]:
            distances = np.linalg.norm(dot_cm[free] - target, axis=1)
            chosen.append(free.pop(int(np.argmin(distances))))
        return chosen
    centre = dot_cm.mean(axis=0)
    chosen = [int(np.argmin(np.linalg.norm(dot_cm - centre, axis=1)))]
    while len(chosen) < k:
        distance = np.min(
            np.linalg.norm(dot_cm[:, None, :] - dot_cm[None, chosen, :], axis=-1), axis=1
        )
        distance[chosen] = -1.0
        chosen.append(int(np.argmax(distance)))
    return chosen


def _evenly_spaced(indices, limit):
    if limit is None or len(indices) <= limit:
        return indices
    return indices[np.linspace(0, len(indices) - 1, limit).round().astype(int)]


def evaluate_subjects(
    samples,
    gaze_cm,
    subjects,
    dots,
    points,
    methods,
    *,
    layouts=None,
    max_calibration_samples=None,
    progress=None,
):
    """Calibrates each subject on k of their dots and tests on the others.

    For every subject and every k in `points`, the calibration dots are
    chosen by `choose_calibration_dots` (the subject's layout where one is
    given, else spread over their dots), every method is fitted on those
    dots' frames and tested on the frames of the remaining dots; the error
    before is the network's own error on the same test frames. A subject
    with fewer than `k + 1` dots is listed in `skipped` for that k; a
    method that needs more than k points is not run for that k.

    Args:
        samples: dict of arrays `(N, ...)`: `gaze_cm` (the network's
            prediction) and `final_feature`.
        gaze_cm: array `(N, 2)`. True gaze in cm.
        subjects: array `(N,)`. Subject of each frame.
        dots: array `(N,)`. Dot of each frame (unique within a subject).
        points: list of int. The values of k.
        methods: dict. Name -> callable taking k and returning a new,
            unfitted calibrator.
        layouts: dict or None. Subject -> `(L, 2)` target positions in cm
            (a calibration layout on that subject's screen), or None for
            the subject.
        max_calibration_samples: int or None. At most this many frames
            (evenly spaced) to calibrate on.
        progress: callable or None. Wraps the loop over subjects (tqdm).

    Returns:
        `(records, skipped)`: a list of dicts (subject, k, method,
        error_before, error_after, num_calibration_samples,
        num_test_samples, calibration_dots, layout, seconds_per_step for
        step-based methods), and a list of dicts (subject, k, num_dots).
    """
    gaze_cm = np.asarray(gaze_cm, np.float64)
    subjects = np.asarray(subjects)
    dots = np.asarray(dots)
    layouts = layouts or {}
    records, skipped = [], []
    subject_ids = np.unique(subjects)
    for subject in progress(subject_ids) if progress else subject_ids:
        rows = np.flatnonzero(subjects == subject)
        dot_ids = np.unique(dots[rows])
        dot_cm = np.stack([gaze_cm[rows[dots[rows] == d]].mean(axis=0) for d in dot_ids])
        for k in points:
            if len(dot_ids) < k + 1:
                skipped.append({"subject": subject.item(), "k": int(k), "num_dots": len(dot_ids)})
                continue
            layout = layouts.get(subject.item())
            use_layout = layout is not None and len(layout) >= k
            chosen = dot_ids[choose_calibration_dots(dot_cm, k, layout if use_layout else None)]
            is_calibration = np.isin(dots[rows], chosen)
            calibration_rows = _evenly_spaced(rows[is_calibration], max_calibration_samples)
            test_rows = rows[~is_calibration]
            before = np.linalg.norm(samples[PREDICTION_KEY][test_rows] - gaze_cm[test_rows], axis=1)
            for name, make in methods.items():
                calibrator = make(k)
                if calibrator.min_points > k:
                    continue  # The method needs more dots; `mean_errors` has no row.
                calibrator.fit(
                    {key: values[calibration_rows] for key, values in samples.items()},
                    gaze_cm[calibration_rows],
                    subjects[calibration_rows],
                )
                predicted = calibrator.predict({key: values[test_rows] for key, values in samples.items()})
                after = np.linalg.norm(predicted - gaze_cm[test_rows], axis=1)
                record = {
                    "subject": subject.item(),
                    "k": int(k),
                    "method": name,
                    "error_before": float(np.mean(before)),
                    "error_after": float(np.mean(after)),
                    "num_calibration_samples": int(len(calibration_rows)),
                    "num_test_samples": int(len(test_rows)),
                    "calibration_dots": [d.item() for d in chosen],
                    "layout": bool(use_layout),
                }
                if getattr(calibrator, "seconds_per_step", None) is not None:
                    record["seconds_per_step"] = float(calibrator.seconds_per_step)
                if getattr(calibrator, "losses", None):
                    record["loss_first"] = float(calibrator.losses[0])
                    record["loss_last"] = float(calibrator.losses[-1])
                records.append(record)
    return records, skipped


def mean_errors(records, groups=None, confidence=0.95):
    """Mean errors over subjects per method, k and group of subjects, with
    the Student-t interval of the mean error after calibration.

    Args:
        records: list of dicts from `evaluate_subjects`.
        groups: dict or None. Subject -> group name (device type); every
            subject also counts in the group "all".
        confidence: float. Level of the intervals.

    Returns:
        list of dicts: method, k, group, num_subjects, error_before,
        error_after (means over subjects, cm), error_after_low /
        error_after_high (interval of the mean after; None for one
        subject), reduction (1 - after / before), and ms_per_step where
        measured.
    """
    groups = groups or {}
    table = {}
    for record in records:
        for group in ("all", groups.get(record["subject"])):
            if group is not None:
                table.setdefault((record["method"], record["k"], group), []).append(record)
    rows = []
    for (method, k, group), group_records in sorted(table.items(), key=lambda item: (item[0][0], item[0][1], item[0][2] != "all", item[0][2])):
        before = [r["error_before"] for r in group_records]
        after = reporting.t_interval([r["error_after"] for r in group_records], confidence)
        # One subject: no interval (None, as JSON has no NaN).
        low, high = (after.low, after.high) if after.count > 1 else (None, None)
        row = {
            "method": method,
            "k": k,
            "group": group,
            "num_subjects": len(group_records),
            "error_before": float(np.mean(before)),
            "error_after": after.mean,
            "error_after_low": low,
            "error_after_high": high,
            "reduction": float(1.0 - after.mean / np.mean(before)),
        }
        timed = [r["seconds_per_step"] for r in group_records if "seconds_per_step" in r]
        if timed:
            row["ms_per_step"] = 1000.0 * float(np.mean(timed))
        rows.append(row)
    return rows


def format_table(rows, group="all"):
    """One group's summary as a Markdown table: a row per k, a column per method.

    Each method's cell is the mean error after calibration (cm), its
    confidence interval and the change against the error before; a method
    that needs more points than k shows "n/a".

    Args:
        rows: list of dicts from `mean_errors`.
        group: str. The group of subjects ("all", or a device type).

    Returns:
        str, or "" when no row belongs to `group`.
    """
    rows = [row for row in rows if row["group"] == group]
    if not rows:
        return ""
    methods = sorted({row["method"] for row in rows})
    by_key = {(row["method"], row["k"]): row for row in rows}
    body = []
    for k in sorted({row["k"] for row in rows}):
        first = next(row for row in rows if row["k"] == k)
        cells = []
        for method in methods:
            row = by_key.get((method, k))
            if row is None:
                cells.append("n/a")
                continue
            interval = (
                f"{row['error_after_low']:.2f} to {row['error_after_high']:.2f}"
                if row["error_after_low"] is not None
                else "one subject"
            )
            cells.append(f"{row['error_after']:.2f} ({interval}) {-100.0 * row['reduction']:+.0f}%")
        body.append([k, first["num_subjects"], f"{first['error_before']:.2f}", *cells])
    return reporting.markdown_table(["k", "subjects", "before (cm)", *methods], body,
                                    align=["right"] * 3 + ["left"] * len(methods))
