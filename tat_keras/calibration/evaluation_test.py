"""Tests of choosing the dots, evaluating subjects and the mean errors."""

import numpy as np
import pytest

from tat_keras import calibration


def test_layout_takes_the_nearest_free_dot():
    dots = np.array([[0.0, 0.0], [10.0, 10.0], [0.2, 0.1], [9.0, 0.0]])
    layout = np.array([[0.0, 0.0], [0.0, 0.0], [10.0, 9.0]])
    assert calibration.choose_calibration_dots(dots, 3, layout) == [0, 2, 1]
    with pytest.raises(ValueError, match="needs at least 5 .* Received: 4 dots"):
        calibration.choose_calibration_dots(dots, 4)


def test_spread_dots_start_at_the_centre_then_go_far():
    grid = np.array([[x, y] for x in (0.0, 5.0, 10.0) for y in (0.0, 5.0, 10.0)])
    chosen = calibration.choose_calibration_dots(grid, 3)
    # (5, 5), then a corner (7.1 from it), then the dot farthest from both;
    # ties go to the lowest index.
    assert chosen == [4, 0, 2]


def test_evaluate_subjects_removes_each_subjects_distortion(dots_and_frames):
    rng = np.random.default_rng(16)
    true, predicted, subjects, dots = [], [], [], []
    for subject, num_dots in ((1, 6), (2, 6), (3, 2)):
        gaze = dots_and_frames(num_dots, 3, seed=subject)
        matrix = np.eye(2) + rng.normal(0, 0.1, (2, 2))
        offset = rng.normal(0, 2, 2)
        true.append(gaze)
        predicted.append((gaze - offset) @ np.linalg.inv(matrix).T)
        subjects.append(np.full(len(gaze), subject))
        dots.append(np.repeat(np.arange(num_dots), 3))
    true, predicted = np.concatenate(true), np.concatenate(predicted)
    methods = {"affine": lambda k: calibration.AffineCalibrator(alpha=0.0)}
    records, skipped = calibration.evaluate_subjects(
        {"gaze_cm": predicted}, true, np.concatenate(subjects), np.concatenate(dots),
        [1, 3], methods)
    # alpha=0 needs 3 points: no record for k=1; subject 3 has 2 dots.
    assert sorted((r["subject"], r["k"]) for r in records) == [(1, 3), (2, 3)]
    assert {(s["subject"], s["k"]) for s in skipped} == {(3, 3)}
    for record in records:
        assert record["error_after"] < 1e-9 < record["error_before"]
        assert record["num_test_samples"] == 9
    rows = calibration.mean_errors(records, groups={1: "phone", 2: "tablet"})
    assert [(r["group"], r["num_subjects"]) for r in rows] == [("all", 2), ("phone", 1), ("tablet", 1)]
    assert rows[0]["reduction"] == pytest.approx(1.0)
    table = calibration.format_table(rows).splitlines()
    assert table[:2] == ["| k | subjects | before (cm) | affine |", "|---:|---:|---:|---|"]
    assert table[2].startswith(f"| 3 | 2 | {rows[0]['error_before']:.2f} | 0.00 (")
    assert table[2].endswith(") -100% |")
    assert "one subject" in calibration.format_table(rows, "phone")
    assert calibration.format_table(rows, "tablet ") == ""


def test_mean_errors_are_means_over_subjects_with_a_student_t_interval():
    records = [{"subject": s, "k": 3, "method": "ridge", "error_before": before,
                "error_after": after, "seconds_per_step": 0.002}
               for s, before, after in ((1, 2.0, 1.0), (2, 3.0, 2.0), (3, 4.0, 3.0))]
    (row,) = calibration.mean_errors(records)
    # t(0.975, 2 degrees of freedom) = 4.3027; standard error 1 / sqrt(3).
    half = 4.302653 / np.sqrt(3)
    assert (row["method"], row["k"], row["group"], row["num_subjects"]) == ("ridge", 3, "all", 3)
    assert row["error_before"] == 3.0 and row["error_after"] == 2.0
    np.testing.assert_allclose([row["error_after_low"], row["error_after_high"]],
                               [2.0 - half, 2.0 + half], rtol=1e-6)
    assert row["reduction"] == pytest.approx(1.0 - 2.0 / 3.0)
    assert row["ms_per_step"] == pytest.approx(2.0)
    (one,) = calibration.mean_errors(records[:1])
    assert one["error_after_low"] is None and one["error_after_high"] is None
