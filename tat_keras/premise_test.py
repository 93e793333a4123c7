"""Tests of the premise decisions: the teacher-threshold rule and the
protocol's decisions applied to the premise rows."""

import json
import os

import numpy as np
import pytest

from tat_keras import premise
from tat_keras import reproduction


def _write(results_dir, run, seed, test_error, msd=1.0, generations=()):
    directory = reproduction.record_dir(results_dir, "pilot", run, seed)
    os.makedirs(directory)
    for name, value in (("metrics.json", {"test_error_cm": test_error,
                                          "test_msd_cm": msd, "train_seconds": 1.0}),
                        ("history.json", []),
                        ("generations.json", {"generations": list(generations)}),
                        ("config.json", {"width_multiplier": 0.125})):
        with open(os.path.join(directory, name), "w") as f:
            json.dump(value, f)


def _generations(list_sizes, earlier):
    """Five mini-generations; mini-generation k of 2-4 (0-based 1-3) draws
    from a list of `list_sizes[k - 1]` teachers, and in `earlier[k - 1]` of
    its 2 taught epochs from teacher 0 rather than the newest, k - 1 (in
    mini-generation 2 teacher 0 is the newest)."""
    generations = [{"teacher_list": list(range(list_sizes[0]))}]
    for k in (1, 2, 3):
        newest = k - 1
        drawn = [[0]] * earlier[k - 1] + [[newest]] * (2 - earlier[k - 1])
        generations.append({"teacher_list": list(range(list_sizes[min(k, 2)])),
                            "teachers": drawn})
    generations.append({"teachers": [[3], [3]]})
    return generations


def test_the_first_threshold_whose_teachers_run_is_tat(tmp_path):
    results = str(tmp_path)
    seeds = [1, 2, 3, 4]
    rows = {row.name: row.run for row in reproduction.SWEEPS["premise"]}
    for seed in seeds:
        # 1.05 keeps one teacher: the newest always; 1.10 keeps 2-3 and draws
        # an earlier one in 2 of the 6 taught epochs.
        _write(results, rows["tat"], seed, 3.0, generations=_generations(
            [1, 1, 1], [0, 0, 0]))
        _write(results, rows["tat, teacher threshold 1.10"], seed, 2.9 - 0.01 * seed,
               generations=_generations([2, 2, 3], [0, 1, 1]))
    chosen, judged = premise.choose_tat_row(results, "pilot", seeds + [5, 6])
    assert chosen == "tat, teacher threshold 1.10"
    assert [j["qualifies"] for j in judged] == [False, True]
    assert judged[0]["teachers"]["mean_list_size"] == 1.0
    assert judged[1]["teachers"]["earlier_share"] == pytest.approx(2 / 6)
    assert judged[1]["threshold"] == 1.10

    # The decisions use the chosen row against standard and SD, and DwO's
    # rows against standard.
    for seed in seeds:
        _write(results, rows["standard"], seed, 3.2 + 0.02 * seed, msd=1.2)
        _write(results, rows["sd"], seed, 3.1 + 0.01 * seed)
        _write(results, rows["standard + dwo"], seed, 3.2 + 0.02 * seed, msd=1.0 + 0.01 * seed)
    decisions = premise.write_decisions(results, "pilot", seeds)
    assert decisions["tat_row"] == "tat, teacher threshold 1.10"
    # 1.10's error is below both controls at every seed.
    assert decisions["tat"] is True and "provisional: 4 of 6" in decisions["tat_sentence"]
    assert decisions["dwo"] is True
    # DwO's error equals standard's at every seed: a zero-width cost interval.
    assert "Error cost 95% interval +0.0% to +0.0%." in decisions["dwo_sentence"]
    text = (tmp_path / "pilot_premise_decisions.md").read_text()
    assert "TAT is the row `tat, teacher threshold 1.10`." in text

    # The chosen row then takes every seed of the suite; the other rows of 4
    # seeds do not, and without records no row takes more than its own.
    def seeds_of(specs, name):
        return [spec.seed for spec in specs if spec.row == name]

    all_seeds = seeds + [5, 6]
    extended = reproduction.plan("premise", "pilot", all_seeds, results)
    assert seeds_of(extended, "tat, teacher threshold 1.10") == all_seeds
    assert seeds_of(extended, "tat, every teacher kept") == seeds
    assert seeds_of(extended, "tat") == all_seeds
    plain = reproduction.plan("premise", "pilot", all_seeds)
    assert seeds_of(plain, "tat, teacher threshold 1.10") == seeds
    assert len(extended) == len(plain) + 2
    # Seed-major still: seed 5's runs come before any of seed 6's.
    order = [spec.seed for spec in extended]
    assert order == sorted(order)


def test_no_choice_while_a_judged_row_lacks_seeds(tmp_path):
    rows = {row.name: row.run for row in reproduction.SWEEPS["premise"]}
    _write(str(tmp_path), rows["tat"], 1, 3.0,
           generations=_generations([1, 1, 1], [0, 0, 0]))
    chosen, judged = premise.choose_tat_row(str(tmp_path), "pilot", [1, 2, 3, 4])
    assert chosen is None and judged[0]["seeds"] == 1
    decisions = premise.decide(str(tmp_path), "pilot", [1, 2, 3, 4])
    assert decisions["tat"] is None and "not chosen yet" in decisions["tat_sentence"]


def test_dwo_cost_not_resolved_when_its_interval_reaches_past_3_percent(tmp_path):
    rows = {row.name: row.run for row in reproduction.SWEEPS["premise"]}
    for seed, (standard, dwo) in enumerate([(3.0, 2.9), (3.0, 3.2), (3.0, 3.0)], 1):
        _write(str(tmp_path), rows["standard"], seed, standard, msd=1.2)
        _write(str(tmp_path), rows["standard + dwo"], seed, dwo, msd=1.0)
    sentence = premise.decide(str(tmp_path), "pilot", [1, 2, 3])["dwo_sentence"]
    # Differences -0.1, +0.2, 0: mean +0.033, t(2) half-width 4.303 * 0.153 / sqrt(3).
    half = 4.302652729911275 * 0.15275252316519466 / 3 ** 0.5
    low, high = (100 * (0.1 / 3 - half) / 3.0, 100 * (0.1 / 3 + half) / 3.0)
    assert f"Error cost 95% interval {low:+.1f}% to {high:+.1f}%" in sentence
    assert "cost not resolved (it includes +3%)" in sentence


def test_the_report_shows_every_row_and_leaves_the_pilot_report_alone(tmp_path):
    results = str(tmp_path)
    rows = {row.name: row.run for row in reproduction.SWEEPS["premise"]}
    errors = {"standard": (3.2, 3.4), "sd": (3.1, 3.0), "sd + mixup": (3.0, 2.9),
              "tat": (2.8, 2.9)}
    for row, values in errors.items():
        for seed, error in enumerate(values, 1):
            _write(results, rows[row], seed, error, generations=_generations(
                [2, 2, 3], [0, 1, 1]) if row == "tat" else ())
    pilot_report = tmp_path / "pilot_report.md"
    pilot_report.write_text("# Pilot\n")
    premise.write_decisions(results, "pilot", [1, 2])
    assert pilot_report.read_text() == "# Pilot\n"

    table = (tmp_path / "pilot_premise.md").read_text()
    for row, values in errors.items():
        cell = f"{np.mean(values):.3f} ± {np.std(values, ddof=1):.3f} (2)"
        assert f"| {row} | – | – | {cell} |" in table
    chain = next(l for l in table.splitlines() if "sd + mixup − sd," in l)
    assert "paired over seeds [1, 2]: -0.100 [-0.100, -0.100] cm" in chain
    lines = (tmp_path / "pilot_premise.csv").read_text().splitlines()
    assert len(lines) == 1 + 2 * len(errors)

    text = (tmp_path / "pilot_premise_decisions.md").read_text()
    assert "[pilot_premise.md](pilot_premise.md)" in text
    assert f"| sd + mixup | 2 | – | – | – | {np.mean(errors['sd + mixup']):.2f} |" in text
    # TAT's teachers over every taught mini-generation: lists of 2, 2, 3, 3
    # and an earlier teacher in 2 of 8 taught epochs, where the rule, over
    # mini-generations 2-4, counts 2 of 6.
    assert "| 2.0, 2.0, 3.0, 3.0 | 25% |" in text
    assert "share of taught epochs from an earlier teacher 33%" in text
