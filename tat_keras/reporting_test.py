"""Tests of the sweep statistics against NumPy re-derivations."""

import csv
import json
import math
import subprocess
import sys

import numpy as np
import pytest

from tat_keras import reporting

# Two-sided 95% Student-t quantiles, from printed tables.
T_975 = {1: 12.706, 2: 4.303, 3: 3.182, 4: 2.776, 6: 2.447, 7: 2.365}


def test_mean_std_matches_numpy():
    values = [3.58, 3.10, 3.91, None, math.nan, 3.34]
    summary = reporting.mean_std(values)
    finite = np.array([3.58, 3.10, 3.91, 3.34])
    assert summary.count == 4
    np.testing.assert_allclose(summary.mean, finite.mean())
    np.testing.assert_allclose(
        summary.std, np.sqrt(((finite - finite.mean()) ** 2).sum() / 3))


def test_mean_std_few_values():
    assert reporting.mean_std([]).count == 0
    assert math.isnan(reporting.mean_std([None]).mean)
    one = reporting.mean_std([2.5])
    assert one.mean == 2.5 and math.isnan(one.std)


@pytest.mark.parametrize("count", sorted(T_975))
def test_t_interval_matches_table(count):
    rng = np.random.default_rng(count)
    values = rng.normal(1.0, 0.3, size=count + 1)
    interval = reporting.t_interval(values)
    half = T_975[count] * values.std(ddof=1) / np.sqrt(count + 1)
    np.testing.assert_allclose(interval.mean, values.mean())
    # The table's quantiles have four significant digits.
    np.testing.assert_allclose((interval.high - interval.low) / 2, half, rtol=2e-4)
    assert interval.count == count + 1


def test_t_interval_undefined_below_two_values():
    interval = reporting.t_interval([0.4])
    assert interval.mean == 0.4 and math.isnan(interval.low) and math.isnan(interval.high)
    assert not interval.below_zero


def test_t_interval_rejects_bad_confidence():
    with pytest.raises(ValueError, match="confidence must be in"):
        reporting.t_interval([1.0, 2.0], confidence=95)


@pytest.mark.parametrize("count", [2, 5, 8])
def test_t_half_width_matches_table(count):
    np.testing.assert_allclose(reporting.t_half_width(0.3, count),
                               T_975[count - 1] * 0.3 / np.sqrt(count), rtol=2e-4)
    with pytest.raises(ValueError, match="count must be an integer >= 2. Received: count=1"):
        reporting.t_half_width(0.3, 1)


@pytest.mark.parametrize("count", [4, 5, 8])
def test_slope_interval_matches_linear_regression(count):
    rng = np.random.default_rng(count)
    x = np.arange(count, dtype=float) + 10.0
    y = 2.0 - 0.05 * x + rng.normal(0, 0.02, count)
    interval = reporting.slope_interval(x, y)
    # The slope's standard error, re-derived from the normal equations.
    design = np.stack([x, np.ones(count)], axis=1)
    coefficients, residual, *_ = np.linalg.lstsq(design, y, rcond=None)
    covariance = residual[0] / (count - 2) * np.linalg.inv(design.T @ design)
    half = T_975[count - 2] * np.sqrt(covariance[0, 0])
    np.testing.assert_allclose(interval.mean, coefficients[0])
    np.testing.assert_allclose((interval.low + interval.high) / 2, coefficients[0])
    # The table's quantiles have four significant digits.
    np.testing.assert_allclose((interval.high - interval.low) / 2, half, rtol=2e-4)
    assert interval.count == count


def test_slope_interval_needs_three_points_and_matching_shapes():
    two = reporting.slope_interval([0.0, 1.0], [1.0, 3.0])
    assert two.mean == pytest.approx(2.0) and math.isnan(two.low)
    with pytest.raises(ValueError, match="same length"):
        reporting.slope_interval([0.0, 1.0, 2.0], [1.0, 2.0])


def test_paired_difference_uses_shared_finished_seeds():
    treatment = {1: 3.0, 2: 3.1, 3: 2.9, 4: None}
    control = {1: 3.4, 2: 3.3, 3: 3.2, 4: 3.5, 5: 3.0}
    diff = reporting.paired_difference(treatment, control)
    assert diff.seeds == [1, 2, 3]
    np.testing.assert_allclose(diff.differences, [-0.4, -0.2, -0.3])
    d = np.array([-0.4, -0.2, -0.3])
    half = T_975[2] * d.std(ddof=1) / np.sqrt(3)
    np.testing.assert_allclose(diff.interval.high - d.mean(), half, rtol=2e-4)
    assert diff.interval.below_zero


def test_paired_difference_straddling_zero_is_not_below_zero():
    diff = reporting.paired_difference({1: 3.0, 2: 3.6}, {1: 3.2, 2: 3.3})
    assert diff.interval.low < 0 < diff.interval.high
    assert not diff.interval.below_zero


def test_formatting():
    assert reporting.format_number(None) == "–"
    assert reporting.format_number(math.nan) == "–"
    assert reporting.format_number(1.23456, 2) == "1.23"
    assert reporting.format_mean_std(reporting.mean_std([1.0, 3.0])) == "2.000 ± 1.414"
    assert reporting.format_mean_std(reporting.mean_std([1.0])) == "1.000"
    assert reporting.format_mean_std(reporting.mean_std([])) == "–"
    text = reporting.format_interval(reporting.t_interval([-1.0, -2.0, -3.0]), 2)
    assert text == "-2.00 [-4.48, +0.48]"
    # One value has no interval: the mean alone, signed like the others.
    assert reporting.format_interval(reporting.t_interval([0.016])) == "+0.016"
    assert reporting.format_interval(reporting.t_interval([-0.141])) == "-0.141"


def test_markdown_table_and_row_length():
    table = reporting.markdown_table(["a", "b"], [[1, "x"], [2, "y"]])
    assert table.splitlines() == ["| a | b |", "|---|---|", "| 1 | x |", "| 2 | y |"]
    with pytest.raises(ValueError, match="Every row needs 2 cells"):
        reporting.markdown_table(["a", "b"], [[1]])


def test_json_and_csv_are_strict(tmp_path):
    record = {"row": "tat", "error": np.float32(1.5), "msd": math.nan,
              "per_generation": [1.0, math.nan, 2.0]}
    reporting.write_json(tmp_path / "r.json", {"runs": [record]})
    loaded = json.loads((tmp_path / "r.json").read_text())
    assert loaded["runs"][0] == {"row": "tat", "error": 1.5, "msd": None,
                                 "per_generation": [1.0, None, 2.0]}
    reporting.write_csv(tmp_path / "r.csv", [record], ["row", "error", "msd",
                                                       "per_generation", "absent"])
    with open(tmp_path / "r.csv") as f:
        rows = list(csv.reader(f))
    assert rows == [["row", "error", "msd", "per_generation", "absent"],
                    ["tat", "1.5", "", "1.0;;2.0", ""]]


def test_import_is_light():
    code = ("import sys, tat_keras.reporting; "
            "print('tensorflow' in sys.modules, 'keras' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True,
                         text=True, check=True).stdout.split()
    assert out == ["False", "False"]


def test_parse_seeds():
    assert reporting.parse_seeds(["3", "1", "3"]) == [3, 1]
    with pytest.raises(ValueError, match="seeds must be integers"):
        reporting.parse_seeds(["1", "x"])
    with pytest.raises(ValueError, match="at least one seed"):
        reporting.parse_seeds([])
