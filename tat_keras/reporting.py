"""Seeds, means, intervals and tables: the project's statistics, in one place.

Every comparison of this project is a set of runs over seeds (or of
subjects, for calibration). This module turns their numbers into the figures
a report states: the mean and sample standard deviation of a row, the
Student-t interval of a mean, the paired difference of two rows over the
seeds they share with its interval, the slope of a curve with its interval,
and tables in Markdown, CSV and strict JSON. It imports neither TensorFlow
nor Keras.

Example:

>>> row = mean_std([3.1, 3.5, 3.3])
>>> round(row.mean, 2), round(row.std, 2), row.count
(3.3, 0.2, 3)
>>> diff = paired_difference({1: 3.0, 2: 3.4}, {1: 3.2, 2: 3.5})
>>> [round(d, 2) for d in diff.differences], diff.seeds
([-0.2, -0.1], [1, 2])
>>> print(markdown_table(["row", "error"], [["tat", format_mean_std(row)]]))
| row | error |
|---|---|
| tat | 3.300 ± 0.200 |
"""

import csv
import dataclasses
import json
import math

import numpy as np
from scipy import stats

MISSING = "–"


def parse_seeds(values):
    """Integer seeds from strings (a flag's list), duplicates dropped, order kept.

    Raises:
        ValueError: a value is not an integer, or there is none.

    Example:

    >>> parse_seeds(["1", "2", "1"])
    [1, 2]
    """
    try:
        seeds = [int(value) for value in values]
    except (TypeError, ValueError):
        raise ValueError(f"seeds must be integers. Received: {values}") from None
    if not seeds:
        raise ValueError("seeds must name at least one seed. Received: []")
    return list(dict.fromkeys(seeds))


def _finite(values):
    return [float(v) for v in values if v is not None and math.isfinite(float(v))]


@dataclasses.dataclass(frozen=True)
class Summary:
    """Mean, sample standard deviation (n - 1) and count of finite values.

    `std` is NaN for fewer than two values, `mean` for none.
    """

    mean: float
    std: float
    count: int


def mean_std(values):
    """`Summary` of the finite values (None and NaN are left out).

    Args:
        values: iterable of float or None.

    Example:

    >>> mean_std([1.0, None, 3.0])
    Summary(mean=2.0, std=1.4142135623730951, count=2)
    """
    finite = _finite(values)
    if not finite:
        return Summary(math.nan, math.nan, 0)
    mean = float(np.mean(finite))
    std = float(np.std(finite, ddof=1)) if len(finite) > 1 else math.nan
    return Summary(mean, std, len(finite))


@dataclasses.dataclass(frozen=True)
class Interval:
    """An estimate (a mean, or a slope) with its two-sided confidence interval.

    `low` and `high` are NaN where there is too little data for an interval;
    `count` is the number of values it rests on.
    """

    mean: float
    low: float
    high: float
    count: int
    confidence: float

    @property
    def below_zero(self):
        """True when the whole interval lies below zero."""
        return math.isfinite(self.high) and self.high < 0.0


def _check_confidence(confidence):
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence must be in (0, 1). Received: confidence={confidence}")


def t_half_width(std, count, confidence=0.95):
    """Half-width of the Student-t interval of a mean of `count` values with
    sample standard deviation `std`: `t(count - 1) * std / sqrt(count)`.

    Also what a planned number of seeds would resolve, given the spread seen
    so far.

    Args:
        std: float. Sample standard deviation (n - 1).
        count: int. Number of values; at least 2.
        confidence: float in (0, 1).

    Example:

    >>> round(t_half_width(1.0, 3), 3)
    2.484
    """
    _check_confidence(confidence)
    if int(count) != count or count < 2:
        raise ValueError(f"count must be an integer >= 2. Received: count={count}")
    quantile = float(stats.t.ppf(0.5 + confidence / 2.0, count - 1))
    return quantile * float(std) / math.sqrt(count)


def t_interval(values, confidence=0.95):
    """Student-t interval of the mean: `mean ± t(n-1) * std / sqrt(n)`.

    Args:
        values: iterable of float or None (None and NaN are left out).
        confidence: float in (0, 1).

    Returns:
        `Interval`; `low` and `high` are NaN with fewer than two values.

    Example:

    >>> interval = t_interval([1.0, 2.0, 3.0])
    >>> round(interval.low, 3), round(interval.high, 3)
    (-0.484, 4.484)
    """
    _check_confidence(confidence)
    summary = mean_std(values)
    if summary.count < 2:
        return Interval(summary.mean, math.nan, math.nan, summary.count, confidence)
    half = t_half_width(summary.std, summary.count, confidence)
    return Interval(summary.mean, summary.mean - half, summary.mean + half,
                    summary.count, confidence)


def slope_interval(x, y, confidence=0.95):
    """Least-squares slope of `y` on `x` with its Student-t interval.

    The interval is `slope ± t(n - 2) * se`, with `se` the standard error of
    the slope: `sqrt(sum(r^2) / (n - 2) / sum((x - mean(x))^2))`, `r` the
    residuals of the fitted line.

    Args:
        x: array `(n,)`. Distinct values.
        y: array `(n,)`.
        confidence: float in (0, 1).

    Returns:
        `Interval` whose `mean` is the slope; `low` and `high` are NaN with
        fewer than three points.

    Example:

    >>> interval = slope_interval([0, 1, 2, 3], [1.0, 0.9, 0.7, 0.6])
    >>> round(interval.mean, 3), round(interval.low, 3), round(interval.high, 3)
    (-0.14, -0.201, -0.079)
    """
    _check_confidence(confidence)
    x, y = np.asarray(x, np.float64), np.asarray(y, np.float64)
    if x.shape != y.shape or x.ndim != 1 or len(x) < 2:
        raise ValueError("x and y must be 1-D arrays of the same length, at least 2. "
                         f"Received: shapes {x.shape} and {y.shape}")
    slope, intercept = np.polyfit(x, y, 1)
    count = len(x)
    if count < 3:
        return Interval(float(slope), math.nan, math.nan, count, confidence)
    residual = y - (slope * x + intercept)
    stderr = math.sqrt(float(residual @ residual) / (count - 2)
                       / float(((x - x.mean()) ** 2).sum()))
    half = float(stats.t.ppf(0.5 + confidence / 2.0, count - 2)) * stderr
    return Interval(float(slope), float(slope - half), float(slope + half), count,
                    confidence)


@dataclasses.dataclass(frozen=True)
class PairedDifference:
    """`treatment - control` per shared seed, and its t-interval."""

    seeds: list
    differences: list
    interval: Interval


def paired_difference(treatment, control, confidence=0.95):
    """Differences over the seeds both rows have finished, and their interval.

    Pairing by seed removes what the seed fixes in both runs (initial
    weights, data order), so the interval is that of the mean difference.

    Args:
        treatment: dict seed -> value (None or NaN: not finished).
        control: dict seed -> value.
        confidence: float. Level of the interval.

    Returns:
        `PairedDifference`.
    """
    seeds = sorted(
        s for s in treatment
        if s in control and _finite([treatment[s]]) and _finite([control[s]])
    )
    differences = [float(treatment[s]) - float(control[s]) for s in seeds]
    return PairedDifference(seeds, differences, t_interval(differences, confidence))


def format_number(value, digits=3):
    """A number with `digits` decimals, or "–" for None and NaN."""
    if value is None or not math.isfinite(float(value)):
        return MISSING
    return f"{float(value):.{digits}f}"


def format_mean_std(summary, digits=3):
    """"mean ± std" ("mean" alone for one value, "–" for none)."""
    if summary.count == 0:
        return MISSING
    if summary.count == 1:
        return format_number(summary.mean, digits)
    return f"{summary.mean:.{digits}f} ± {summary.std:.{digits}f}"


def format_interval(interval, digits=3):
    """"mean [low, high]" (the mean alone when there is no interval), signed
    like a difference."""
    if interval.count == 0 or not math.isfinite(interval.mean):
        return MISSING
    if not math.isfinite(interval.low):
        return f"{interval.mean:+.{digits}f}"
    return (f"{interval.mean:+.{digits}f} [{interval.low:+.{digits}f}, "
            f"{interval.high:+.{digits}f}]")


_ALIGNMENTS = {"left": "---|", "right": "---:|"}


def markdown_table(headers, rows, align=None):
    """A Markdown table; cells are written with `str`.

    Args:
        headers: list of str.
        rows: list of lists, each as long as `headers`.
        align: list of "left" or "right", one per column, or None (all
            left).

    Example:

    >>> print(markdown_table(["k", "error"], [[1, "2.0"]], align=["right", "left"]))
    | k | error |
    |---:|---|
    | 1 | 2.0 |
    """
    for row in rows:
        if len(row) != len(headers):
            raise ValueError(
                f"Every row needs {len(headers)} cells. Received: {len(row)} in {row}"
            )
    align = ["left"] * len(headers) if align is None else list(align)
    if len(align) != len(headers) or not set(align) <= set(_ALIGNMENTS):
        raise ValueError(
            f"align must give 'left' or 'right' for each of the {len(headers)} "
            f"columns. Received: align={align}")
    lines = ["| " + " | ".join(headers) + " |",
             "|" + "".join(_ALIGNMENTS[a] for a in align)]
    lines += ["| " + " | ".join(str(cell) for cell in row) + " |" for row in rows]
    return "\n".join(lines)


def json_safe(value):
    """NaN and infinities as None, NumPy scalars as Python numbers, recursively,
    so that `json.dump(..., allow_nan=False)` writes strict JSON."""
    if isinstance(value, dict):
        return {str(k): json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(v) for v in value]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return json_safe(dataclasses.asdict(value))
    return value


def write_json(path, value):
    """Strict JSON (NaN as null), indented."""
    with open(path, "w") as f:
        json.dump(json_safe(value), f, indent=2, allow_nan=False)
        f.write("\n")


def write_csv(path, records, columns):
    """One line per record (dicts), the given columns in order; missing and
    non-finite values are left empty; lists are joined with ";"."""

    def cell(value):
        value = json_safe(value)
        if value is None:
            return ""
        if isinstance(value, list):
            return ";".join("" if v is None else str(v) for v in value)
        return value

    with open(path, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(columns)
        for record in records:
            writer.writerow([cell(record.get(column)) for column in columns])
