"""Tests of the protocol's plan, tables, decisions and report."""

import dataclasses
import json
import math
import os

import numpy as np
import pytest

from tat_keras import reproduction
from tat_keras.training.config import TrainConfig


def test_plan_is_seed_major_and_limits_seeds():
    specs = reproduction.plan("table2", "bench", seeds=[3, 1, 2])
    assert [s.seed for s in specs] == [3] * 5 + [1] * 5  # two seeds at most
    first = specs[0]
    assert first.settings["scheme"] == "tat" and first.settings["teacher"] == "none"
    assert first.settings["mini_generations"] == 5 and first.settings["seed"] == 3


def test_shared_runs_are_trained_once():
    specs = reproduction.plan("all", "bench", seeds=[1, 2, 3, 4])
    runs = reproduction.unique_runs(specs)
    # TAT with random teacher, CSP and AOI is one run in Tables 1-4; the
    # standard run is the learning curve, Table 1's and Table 5's baseline.
    assert sum(1 for s in specs if s.run == "tat" and s.seed == 1) == 4
    assert sum(1 for s in specs if s.run == "standard" and s.seed == 1) == 3
    assert len(runs) == len({(s.run, s.seed) for s in specs}) == 54


@pytest.mark.parametrize("scale", sorted(reproduction.SCALES))
def test_every_suite_plans_at_every_scale_and_a_run_id_is_one_configuration(scale):
    settings = {}
    for suite in reproduction.SUITE_NAMES:
        for spec in reproduction.plan(suite, scale, seeds=[1, 2]):
            key = (spec.run, spec.seed)
            assert settings.setdefault(key, spec.settings) == spec.settings, (suite, key)


def test_dwo_sweep_is_table5_in_full_and_shares_its_runs():
    specs = reproduction.plan("dwo_sweep", "bench", seeds=[1, 2, 3])
    rows = {s.row: s for s in specs if s.seed == 1}
    assert len(rows) == 10 and len(reproduction.SWEEPS["dwo_sweep"]) == 10
    table5 = {s.run: s.settings for s in reproduction.plan("table5", "bench", [1])}
    for run in ("standard", "standard-dwo", "standard-dwo_t3"):
        assert any(s.run == run for s in rows.values())
        assert table5[run] == next(s.settings for s in rows.values() if s.run == run)
    # The paper's setups: center bins, PGD steps, share of original data.
    assert rows["dwo, all center bins"].settings["dwo_center_bins"] is None
    assert rows["dwo, 16 center bins"].settings["dwo_center_bins"] == 16
    assert rows["dwo, T=2"].settings["dwo_steps"] == 2
    assert rows["dwo, no original"].settings["dwo_original_fraction"] == 0.0
    for spec in specs:
        assert spec.settings["scheme"] == "standard"
        if spec.row != "baseline":
            assert spec.settings["dwo"] and spec.settings["dwo_epsilon"] == 3.0
            assert spec.settings["dwo_step"] == 1.0  # gamma = 1 as in the paper
    # Seed 3 only for the rows that the protocol runs at every seed.
    assert sorted(s.row for s in specs if s.seed == 3) == ["baseline",
                                                          "dwo (8 bins, T=1, 90%)"]
    # Not part of the protocol's "all".
    assert not any(s.table == "dwo_sweep" for s in reproduction.plan("all", "bench", [1]))


@pytest.mark.parametrize("overrides, match", [
    ({"dwo_centre_bins": 8}, r"Row 'bad' of table5 sets \['dwo_centre_bins'\], which "
                             "TrainConfig does not have"),
    ({"scheme": "tat", "teacher": "eldest"}, "Row 'bad' of table5 at scale 'bench': "
                                             "teacher must be one of"),
    ({"dwo": True, "dwo_center_bins": 7}, "at scale 'bench': dwo_center_bins must be an even"),
])
def test_plan_refuses_a_row_trainconfig_refuses(monkeypatch, overrides, match):
    rows = [*reproduction.SUITES["table5"], reproduction.Row("bad", "bad", overrides, 1)]
    monkeypatch.setitem(reproduction._ROWS, "table5", rows)
    with pytest.raises(ValueError, match=match):
        reproduction.plan("table5", "bench", [1])


def test_plan_rejects_bad_arguments():
    with pytest.raises(ValueError, match="suite must be one of"):
        reproduction.plan("table9", "bench", [1])
    with pytest.raises(ValueError, match="scale must be one of"):
        reproduction.plan("table1", "huge", [1])
    with pytest.raises(ValueError, match="at least one seed"):
        reproduction.plan("table1", "bench", [])


def _record(table, row, seed, error, msd=1.0, generations=()):
    return {"table": table, "row": row, "run": row, "seed": seed, "test_error_cm": error,
            "test_msd_cm": msd, "train_error_cm": 1.0, "val_error_cm": 2.0,
            "test_error_cm_phone": None, "test_error_cm_tablet": None,
            "clean_test_msd_cm": None, "train_seconds": 10.0,
            "generation_test_error_cm": list(generations)}


def _table1(tat_errors, standard_errors, sd_errors):
    records = []
    for seed, (t, s, d) in enumerate(zip(tat_errors, standard_errors, sd_errors), 1):
        records += [_record("table1", "tat", seed, t), _record("table1", "standard", seed, s),
                    _record("table1", "sd", seed, d)]
    return records


def test_tat_decision_needs_both_intervals_below_zero():
    better = _table1([3.0, 3.1, 2.9, 3.0], [3.4, 3.5, 3.3, 3.5], [3.3, 3.4, 3.3, 3.2])
    reproduced, sentence = reproduction.decide_tat(better)
    assert reproduced is True and sentence.startswith("TAT: reproduced")
    # Better than standard, but not than SD: not reproduced.
    mixed = _table1([3.0, 3.1, 2.9, 3.0], [3.4, 3.5, 3.3, 3.5], [2.9, 3.2, 2.8, 3.1])
    reproduced, sentence = reproduction.decide_tat(mixed)
    assert reproduced is False and "not reproduced at this scale" in sentence
    reproduced, sentence = reproduction.decide_tat(better[:3])
    assert reproduced is None and "undecided" in sentence
    # Two of the four planned seeds: a verdict, said to be provisional.
    two = _table1([3.0, 3.1], [3.4, 3.5], [3.3, 3.4])
    reproduced, sentence = reproduction.decide_tat(two)
    assert sentence.startswith("TAT: so far ")
    assert "(provisional: 2 of 4 planned seeds; paired test-error" in sentence
    reproduced, sentence = reproduction.decide_tat(two, planned=2)
    assert "provisional" not in sentence


def test_dwo_decision_weighs_msd_and_error_cost():
    def records(dwo_msd, dwo_error):
        out = []
        for seed in (1, 2, 3, 4):
            out.append(_record("table5", "baseline", seed, 3.0, msd=1.2 + 0.01 * seed))
            out.append(_record("table5", reproduction.SUITES["table5"][1].name, seed,
                               dwo_error + 0.01 * seed, msd=dwo_msd + 0.01 * seed))
        return out

    assert reproduction.decide_dwo(records(1.0, 3.05))[0] is True  # +1.7%
    assert reproduction.decide_dwo(records(1.0, 3.2))[0] is False  # +6.7%
    assert reproduction.decide_dwo(records(1.25, 3.0))[0] is False  # MSD not lower
    assert "provisional" not in reproduction.decide_dwo(records(1.0, 3.05))[1]
    assert "(provisional: 4 of 6 planned seeds; paired MSD" in reproduction.decide_dwo(
        records(1.0, 3.05), planned=6)[1]
    # Table 5 pairs the MSD on the nuisance-free stare set too.
    both = records(1.0, 3.05)
    for record in both:
        record["clean_test_msd_cm"] = (0.5 if record["row"] == "baseline" else 0.3) \
            + 0.01 * record["seed"] * (record["row"] == "baseline")
    text = reproduction.table_markdown("table5", both, "bench")
    differences = [0.3 - (0.5 + 0.01 * seed) for seed in (1, 2, 3, 4)]
    assert (f"MSD, sensor noise only: {reproduction.SUITES['table5'][1].name} − "
            f"baseline, paired over seeds [1, 2, 3, 4]: {np.mean(differences):+.3f}") in text
    four_seed_lines = [line for line in text.splitlines()
                       if "paired over seeds [1, 2, 3, 4]" in line]
    assert four_seed_lines and all(line.endswith("cm (mean [95% interval])")
                                   for line in four_seed_lines)


def test_learning_curve_slope_matches_numpy():
    rng = np.random.default_rng(0)
    histories = []
    for _ in range(2):
        val = 4.0 - 0.05 * np.arange(12) + rng.normal(0, 0.01, 12)
        histories.append([{"error_cm": 3.0 - 0.1 * e, "val_error_cm": float(v)}
                          for e, v in enumerate(val)])
    curve = reproduction.learning_curve(histories)
    mean_val = np.mean([[h["val_error_cm"] for h in run] for run in histories], axis=0)
    slope = np.polyfit(np.arange(9, 12), mean_val[-3:], 1)[0]
    np.testing.assert_allclose(curve["slope"], slope)
    assert curve["best_epoch"] == int(np.argmin(mean_val)) + 1
    np.testing.assert_allclose(curve["train"][-1], 3.0 - 1.1)
    flat = [[{"error_cm": 1.0, "val_error_cm": 3.0 + 0.2 * ((e % 2) - 0.5)}
             for e in range(12)]]
    assert not reproduction.learning_curve(flat)["still_falling"]
    assert reproduction.learning_curve([[]]) is None


def test_learning_curve_of_short_histories_fits_what_it_has():
    two = [[{"error_cm": 2.0, "val_error_cm": 3.0}, {"error_cm": 1.5, "val_error_cm": 2.5}]]
    curve = reproduction.learning_curve(two)
    np.testing.assert_allclose(curve["slope"], -0.5)
    assert math.isnan(curve["slope_high"]) and not curve["still_falling"]
    assert "too few for an interval" in reproduction._slope_verdict(curve)
    one = reproduction.learning_curve([[{"error_cm": 2.0, "val_error_cm": 3.0}]])
    assert math.isnan(one["slope"]) and one["best_epoch"] == 1
    three = [[{"error_cm": 1.0, "val_error_cm": v} for v in (3.0, 2.0, 1.0)]]
    np.testing.assert_allclose(reproduction.learning_curve(three)["slope"], -1.0)


def test_generation_table_shows_per_generation_means_and_paper_column():
    records = [_record("table2", "last", s, 3.0, generations=[3.5 + s, 3.2, 3.0])
               for s in (1, 2)]
    text = reproduction.table_markdown("table2", records, "bench")
    line = next(l for l in text.splitlines() if l.startswith("| last |"))
    cells = [c.strip() for c in line.strip("|").split("|")]
    assert cells[1] == "5.000 ± 0.707 (2)" and cells[2] == "3.200 ± 0.000 (2)"
    assert cells[-1] == "1.80 / 1.77 / 1.76 / 1.75 / 1.77"
    assert "not results of this project" in text


def _write_run(results_dir, run, seed, metrics, history, generations, scale="bench"):
    directory = reproduction.record_dir(results_dir, scale, run, seed)
    os.makedirs(directory)
    for name, value in (("metrics.json", metrics), ("history.json", history),
                        ("generations.json", {"generations": generations}),
                        ("config.json", {"width_multiplier": 0.125})):
        with open(os.path.join(directory, name), "w") as f:
            json.dump(value, f)


def test_premise_rows_separate_mixup_rebirth_and_the_random_teacher():
    specs = reproduction.plan("premise", "pilot", seeds=[1, 2, 3, 4, 5, 6])
    seeds = {}
    for spec in specs:
        seeds.setdefault(spec.row, []).append(spec.seed)
    # At least 6 seeds for standard, SD and TAT; 4 for the other rows.
    assert {row: len(s) for row, s in seeds.items()} == {
        "standard": 6, "standard + mixup": 4, "sd": 6, "sd + mixup": 4,
        "sd + mixup + re-birth, newest teacher": 4, "tat": 6,
        "tat, teacher threshold 1.10": 4, "tat, every teacher kept": 4,
        "standard + dwo": 4}
    resolved = {spec.row: TrainConfig(**spec.settings).resolved()
                for spec in specs if spec.seed == 1}
    # Equal total epochs for every row.
    assert {reproduction.total_epochs(dataclasses.asdict(c))
            for c in resolved.values()} == {71}
    # Each step of the chain adds one thing.
    assert (resolved["standard + mixup"].mixup, resolved["standard + mixup"].lambda_mix,
            resolved["standard + mixup"].lambda_hard) == (True, 0.4, 1.0)
    assert (resolved["sd"].teacher, resolved["sd"].mixup) == ("last", False)
    assert (resolved["sd + mixup"].teacher, resolved["sd + mixup"].mixup,
            resolved["sd + mixup"].pruning) == ("last", True, "none")
    rebirth = resolved["sd + mixup + re-birth, newest teacher"]
    assert (rebirth.teacher, rebirth.mixup, rebirth.pruning) == ("last", True, "csp")
    assert (resolved["tat"].teacher, resolved["tat"].teacher_threshold) == ("random", 1.05)
    assert resolved["tat, teacher threshold 1.10"].teacher_threshold == 1.10
    assert resolved["tat, every teacher kept"].teacher_threshold is None
    assert resolved["standard + dwo"].dwo
    # Runs shared with the protocol's tables keep their ids.
    assert {s.run for s in specs if s.row == "sd + mixup + re-birth, newest teacher"} == {
        "tat-teacher_last"}
    assert not any(s.table == "premise" for s in reproduction.plan("all", "bench", [1]))


def test_premise_table_shows_the_chain(tmp_path):
    history = [{"error_cm": 3.0, "val_error_cm": 3.5}]
    for seed in (1, 2):
        for run, error in (("standard", 3.4), ("standard-mixup", 3.35), ("sd", 3.3),
                           ("sd-mixup", 3.2), ("tat-teacher_last", 3.1), ("tat", 3.0)):
            _write_run(str(tmp_path), run, seed,
                       {"test_error_cm": error + 0.01 * seed, "test_msd_cm": 1.0,
                        "train_seconds": 10.0}, history, [], scale="pilot")
    specs = reproduction.plan("premise", "pilot", [1, 2])
    text = reproduction.table_markdown(
        "premise", reproduction.collect(specs, str(tmp_path), "pilot"), "pilot")
    assert "sd + mixup + re-birth, newest teacher − sd + mixup" in text
    # sd + mixup - sd: 3.2 - 3.3 at both seeds.
    line = next(l for l in text.splitlines() if "sd + mixup − sd" in l)
    assert "-0.10" in line


def test_write_report_from_records(tmp_path):
    history = [{"error_cm": 3.0 - 0.05 * e, "val_error_cm": 3.5 - 0.01 * e}
               for e in range(36)]
    rebirth = {"face_conv11": {"pruned_norm_min": 0.1, "pruned_norm_max": 0.3,
                               "new_norm_min": 0.1, "new_norm_max": 0.3},
               "face_conv52": {"pruned_norm_min": 1.0, "pruned_norm_max": 2.0,
                               "new_norm_min": 1.1, "new_norm_max": 1.9}}
    for seed in (1, 2):
        for run, error in (("standard", 3.4), ("sd", 3.3), ("tat", 3.0)):
            _write_run(str(tmp_path), run, seed,
                       {"test_error_cm": error + 0.05 * seed, "test_msd_cm": 1.0,
                        "epochs": 36, "train_seconds": 100.0},
                       history, [{"test_error_cm": error + 0.1, "rebirth": rebirth},
                                 {"test_error_cm": error}])
    summary = reproduction.write_report(str(tmp_path), "bench", [1, 2],
                                        ["python recipes/reproduce.py --suite=table1"])
    assert summary["runs"] == (6, 44)  # all suites at two seeds
    assert summary["tat"] is True and summary["dwo"] is None
    report = (tmp_path / "report.md").read_text()
    assert "TAT: reproduced" in report and "DwO: undecided" in report
    assert "python recipes/reproduce.py --suite=table1" in report
    for name in ("learning_curve.png", "fig1a_curves.png", "generation_errors.png",
                 "fig3_norms.png", "table1.md", "table1.csv", "table5.md"):
        assert (tmp_path / name).exists(), name
    table1 = (tmp_path / "table1.csv").read_text().splitlines()
    assert table1[0].startswith("table,row,run,seed,epochs,width")
    assert len(table1) == 1 + 6
    # A sweep's table appears once the sweep has a run of its own.
    assert not (tmp_path / "dwo_sweep.md").exists() and "dwo_sweep" not in report
    _write_run(str(tmp_path), "standard-dwo_t2", 1, {"test_error_cm": 3.5,
                                                     "test_msd_cm": 0.8}, history, [])
    summary = reproduction.write_report(str(tmp_path), "bench", [1, 2], [])
    assert summary["runs"] == (6, 44)  # the sweep's runs are not the protocol's
    report = (tmp_path / "report.md").read_text()
    assert "(dwo_sweep.md) ([CSV](dwo_sweep.csv))" in report
    sweep = (tmp_path / "dwo_sweep.md").read_text()
    assert "| dwo, T=2 | – | – | 3.500 (1) |" in sweep
    assert ("- test MSD: dwo, T=2 − baseline, paired over seeds [1]: -0.200 cm "
            "(one paired seed: mean, no interval)") in sweep


def _write_info(data_dir, version, train_bytes):
    directory = os.path.join(data_dir, "gaze_capture", "size64", version)
    os.makedirs(directory, exist_ok=True)
    with open(os.path.join(directory, "dataset_info.json"), "w") as f:
        json.dump({"splits": [
            {"name": "train", "numBytes": str(train_bytes), "shardLengths": ["40", "41"]},
            {"name": "test", "numBytes": "900", "shardLengths": ["12"]}]}, f)


def test_data_fingerprint_follows_the_prepared_splits(tmp_path):
    first, second = str(tmp_path / "a"), str(tmp_path / "b")
    _write_info(first, "1.0.0", 1000)
    _write_info(second, "1.0.0", 1000)
    fingerprint = reproduction.data_fingerprint(first)
    assert len(fingerprint) == 16
    assert reproduction.data_fingerprint(second) == fingerprint  # same content
    _write_info(second, "1.0.0", 1001)  # one byte more in train
    assert reproduction.data_fingerprint(second) != fingerprint
    _write_info(first, "1.10.0", 1000)  # the newest version is read
    assert reproduction.data_fingerprint(first) != fingerprint
    assert reproduction.data_fingerprint(first, image_size=128) is None


def test_foreign_records_lists_runs_made_on_other_data(tmp_path):
    specs = reproduction.plan("table1", "bench", [1, 2])
    _write_run(str(tmp_path), "standard", 1, {"test_error_cm": 3.0,
                                              "data_fingerprint": "aaaa"}, [], [])
    _write_run(str(tmp_path), "sd", 1, {"test_error_cm": 3.0,
                                        "data_fingerprint": "bbbb"}, [], [])
    _write_run(str(tmp_path), "tat", 1, {"test_error_cm": 3.0}, [], [])  # none kept
    foreign = reproduction.foreign_records(specs, str(tmp_path), "bench", "aaaa")
    assert foreign == [("sd", 1, "bbbb")]
    assert reproduction.foreign_records(specs, str(tmp_path), "bench", None) == []


def _staged_run(seed, rng):
    """A TAT-like run: 3 mini-generations of 2 epochs after 1 warm-up epoch."""
    history = [{"error_cm": float(e), "val_error_cm": float(v)}
               for e, v in zip(rng.uniform(1, 5, 7), rng.uniform(2, 6, 7))]
    generations = [
        {"epochs": [0, 1, 2], "teachers": [[], [], []], "teacher_list": [0],
         "test_error_cm": float(rng.uniform(2, 4))},
        {"epochs": [3, 4], "teachers": [[0], [0]], "teacher_list": [0, 1],
         "test_error_cm": float(rng.uniform(2, 4))},
        # An earlier teacher (0) drawn in one of two epochs, on seed 2 only.
        {"epochs": [5, 6], "teachers": [[1], [0 if seed == 2 else 1]],
         "teacher_list": None, "test_error_cm": float(rng.uniform(2, 4))},
    ]
    metrics = {"train_error_cm": float(rng.uniform(1, 2)),
               "val_error_cm": float(rng.uniform(3, 4)),
               "test_error_cm": float(rng.uniform(2, 3))}
    return {"metrics": metrics, "history": history, "generations": generations,
            "config": {}}


def test_scheme_diagnostics_against_numpy():
    rng = np.random.default_rng(0)
    runs = [_staged_run(seed, rng) for seed in (1, 2, 3)]
    d = reproduction.scheme_diagnostics(runs + [None])
    assert d["seeds"] == 3
    train = np.array([r["metrics"]["train_error_cm"] for r in runs])
    val = np.array([r["metrics"]["val_error_cm"] for r in runs])
    np.testing.assert_allclose(d["gap_cm"], (val - train).mean())
    np.testing.assert_allclose(
        d["generation_test_error_cm"],
        np.mean([[g["test_error_cm"] for g in r["generations"]] for r in runs], axis=0))
    errors = np.array([[h["error_cm"] for h in r["history"]] for r in runs])
    # Mini-generations 2 and 3 start at epochs 3 and 5.
    np.testing.assert_allclose(d["restart_change_cm"],
                               [(errors[:, 3] - errors[:, 2]).mean(),
                                (errors[:, 5] - errors[:, 4]).mean()])
    assert d["teachers_kept"] == [1.0, 2.0, None]
    # Seeds 1 and 3: no earlier teacher in 4 taught epochs; seed 2: 1 in 4.
    np.testing.assert_allclose(d["earlier_teacher_epochs"], (0 + 0.25 + 0) / 3)
    lines = reproduction.diagnostics_markdown({"standard": None, "tat": d})
    text = "\n".join(lines)
    assert "| tat | 3 |" in text and "8%" in text and "| 1.0, 2.0 |" in text
    assert text.startswith("## Inside the runs: Table 1's rows")
    assert reproduction.diagnostics_markdown({"csp": d}, "Table 3's rows")[0] == (
        "## Inside the runs: Table 3's rows")
    # Standard training has no mini-generations: the first table only.
    plain = reproduction.scheme_diagnostics([{**runs[0], "generations": []}])
    assert "generation_test_error_cm" not in plain
    assert reproduction.scheme_diagnostics([None]) is None
    assert reproduction.diagnostics_markdown({"tat": None}) == []


def test_the_protocol_report_leaves_a_pilot_report_alone(tmp_path):
    assert reproduction.report_name("bench") == "report.md"
    assert reproduction.report_name("bench_small") == "bench_small_report.md"
    assert reproduction.report_name("pilot_frames") == "pilot_frames_protocol_report.md"
    pilot_report = tmp_path / "pilot_frames_report.md"
    pilot_report.write_text("# Pilot: where TAT's premise holds\n")
    history = [{"error_cm": 3.0, "val_error_cm": 3.5 - 0.1 * e} for e in range(4)]
    _write_run(str(tmp_path), "standard", 1, {"test_error_cm": 3.4, "test_msd_cm": 1.0,
                                              "train_seconds": 10.0},
               history, [], scale="pilot_frames")
    reproduction.write_report(str(tmp_path), "pilot_frames", [1], ["python x"])
    assert pilot_report.read_text() == "# Pilot: where TAT's premise holds\n"
    protocol = (tmp_path / "pilot_frames_protocol_report.md").read_text()
    assert protocol.startswith("# Reproduction report (pilot_frames scale)")
