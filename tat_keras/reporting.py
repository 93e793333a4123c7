"""Seeds, means, intervals and tables: what a sweep of runs reports.

Every comparison of this project is a set of runs over seeds. This module
turns their numbers into the figures a report states: the mean and sample
standard deviation of a row, the paired difference of two rows over the
seeds they share with its Student-t confidence interval, and tables in
Markdown, CSV and strict JSON. It imports neither TensorFlow nor Keras.

Example:

>>> row = summarize([3.1, 3.5, 3.3])
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


def summarize(values):
    """`Summary` of the finite values (None and NaN are left out).

    Args:
        values: iterable of float or None.

    Example:

    >>> summarize([1.0, None, 3.0])
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
    """A mean with its two-sided confidence interval (NaN below two values)."""

    mean: float
    low: float
    high: float
    count: int
    confidence: float

    @property
    def below_zero(self):
        """True when the whole interval lies below zero."""
        return math.isfinite(self.high) and self.high < 0.0


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
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence must be in (0, 1). Received: confidence={confidence}")
    summary = summarize(values)
    if summary.count < 2:
        return Interval(summary.mean, math.nan, math.nan, summary.count, confidence)
    quantile = float(stats.t.ppf(0.5 + confidence / 2.0, summary.count - 1))
    half = quantile * summary.std / math.sqrt(summary.count)
    return Interval(summary.mean, summary.mean - half, summary.mean + half,
                    summary.count, confidence)


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
    """"mean [low, high]" (the mean alone when there is no interval)."""
    if interval.count == 0:
        return MISSING
    if not math.isfinite(interval.low):
        return format_number(interval.mean, digits)
    return (f"{interval.mean:+.{digits}f} [{interval.low:+.{digits}f}, "
            f"{interval.high:+.{digits}f}]")


def markdown_table(headers, rows):
    """A Markdown table; cells are written with `str`.

    Args:
        headers: list of str.
        rows: list of lists, each as long as `headers`.
    """
    for row in rows:
        if len(row) != len(headers):
            raise ValueError(
                f"Every row needs {len(headers)} cells. Received: {len(row)} in {row}"
            )
    lines = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
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
