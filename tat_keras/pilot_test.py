"""Tests of the pilot's rules against NumPy re-derivations."""

import json
import os

import numpy as np
import pytest

from tat_keras import pilot
from tat_keras import reproduction


def _run(val_errors=None, final=None, test=None, teacher_lists=None, teachers=None):
    generations = []
    for index, value in enumerate(val_errors or []):
        entry = {"val_error_cm": value}
        if teacher_lists is not None and index < len(teacher_lists):
            entry["teacher_list"] = teacher_lists[index]
        if teachers is not None:
            entry["teachers"] = teachers[index]
        generations.append(entry)
    return {"metrics": {"val_error_cm": final, "test_error_cm": test},
            "generations": generations, "history": [], "config": {}}


def test_convergence_matches_numpy():
    a = [4.0, 3.6, 3.5, 3.45, 3.40]
    b = [4.2, 3.8, 3.7, 3.65, 3.62]
    result = pilot.convergence([_run(a), _run(b)])
    errors = np.array([a, b])
    gains = ((errors[:, :-1] - errors[:, 1:]) / errors[:, :-1]).mean(axis=0)
    np.testing.assert_allclose(result["gains"], gains)
    np.testing.assert_allclose(result["val_error_cm"], errors.mean(axis=0))
    assert result["converged"] == bool(np.all(gains[1:] <= 0.03))
    assert result["converged"]


def test_convergence_fails_on_a_late_gain():
    # Mini-generation 4 gains 5% over 3: not converged.
    result = pilot.convergence([_run([4.0, 3.9, 3.85, 3.66])])
    assert result["gains"][2] == pytest.approx((3.85 - 3.66) / 3.85)
    assert not result["converged"]
    assert pilot.convergence([]) is None


def test_saturation_pairs_seeds_and_uses_the_relative_rule():
    single = {1: _run(final=3.0), 2: _run(final=3.2), 3: _run(final=3.1)}
    double = {1: _run(final=2.9), 2: _run(final=3.1)}  # seed 3 unfinished
    result = pilot.saturation(single, double)
    assert result["seeds"] == [1, 2]
    assert result["difference"].interval.mean == pytest.approx(-0.1)
    assert result["relative"] == pytest.approx(-0.1 / 3.1)
    assert not result["saturated"]  # a 3.2% gain from doubling
    flat = pilot.saturation(single, {1: _run(final=2.99), 2: _run(final=3.21)})
    assert flat["saturated"]
    assert pilot.saturation(single, {}) is None


def test_teacher_use_counts_earlier_teachers():
    lists = [[0], [0, 1], [1, 2], [0, 1, 2, 3]]
    teachers = [[[], []], [[0], [0]], [[0], [1]], [[0], [2]], [[3], [3]]]
    result = pilot.teacher_use([_run([1, 1, 1, 1, 1], teacher_lists=lists,
                                     teachers=teachers)])
    # Mini-generations 2-4 (0-based 1-3) draw from the lists after 0-2.
    assert result["list_sizes"] == [1.0, 2.0, 2.0]
    # Taught epochs: gen 1 newest 0: [0],[0] -> 0 earlier; gen 2 newest 1:
    # [0],[1] -> 1; gen 3 newest 2: [0],[2] -> 1; 2 of 6.
    assert result["earlier_share"] == pytest.approx(2 / 6)


def test_resolvable_half_width_matches_scipy_free_arithmetic():
    differences = [0.05, -0.02, 0.08, 0.01]
    t_975_df5 = 2.5705818366147395
    expected = t_975_df5 * np.std(differences, ddof=1) / np.sqrt(6)
    assert pilot.resolvable_half_width(differences, seeds=6) == pytest.approx(expected)
    assert np.isnan(pilot.resolvable_half_width([0.1]))


def test_pilot_plan_is_outside_all_and_doubles_the_epochs():
    specs = reproduction.plan("pilot", "pilot", [1, 2])
    assert [s.run for s in specs[:4]] == ["sd", "standard", "standard-double", "tat"]
    assert {s.seed for s in specs} == {1, 2}
    single = [s for s in specs if s.run == "standard"][0].settings
    double = [s for s in specs if s.run == "standard-double"][0].settings
    assert reproduction.total_epochs(double) == 2 * reproduction.total_epochs(single)
    assert not any(s.table == "pilot" for s in reproduction.plan("all", "bench", [1]))


def _write_record(root, scale, run, seed, val_errors, final, test, frames=None):
    """The small records of one finished run: final validation and test
    errors, the training frames counted (if given), and the validation error
    after each mini-generation."""
    directory = reproduction.record_dir(root, scale, run, seed)
    os.makedirs(directory)
    metrics = {"val_error_cm": final, "test_error_cm": test}
    if frames is not None:
        metrics["train_examples"] = frames
    with open(os.path.join(directory, "metrics.json"), "w") as f:
        json.dump(metrics, f)
    with open(os.path.join(directory, "generations.json"), "w") as f:
        json.dump({"generations": [{"val_error_cm": v} for v in val_errors]}, f)


def test_report_from_records(tmp_path):
    def write(scale, run, seed, val_errors, final, test):
        _write_record(str(tmp_path), scale, run, seed, val_errors, final, test)

    for seed, shift in ((1, 0.0), (2, 0.1)):
        write("pilot", "sd", seed, [4.0 + shift, 3.7, 3.6, 3.55, 3.5], 3.5, 3.0 + shift)
        write("pilot", "standard", seed, [], 3.6 + shift, 3.1)
        write("pilot", "standard-double", seed, [], 3.59 + shift, 3.1)
        write("pilot", "tat", seed, [4.0, 3.7, 3.6, 3.55, 3.5], 3.5, 2.95 + 2 * shift)
    summary = pilot.write_pilot_report(str(tmp_path), [1, 2], ["python x"])
    assert summary["chosen_L"] == 14
    assert summary["tat_minus_sd"].interval.mean == pytest.approx(-0.05 + 0.05)
    text = (tmp_path / "pilot_report.md").read_text()
    assert "Regime where both hold: L = 14 (scale `pilot`)." in text
    assert json.loads((tmp_path / "pilot_summary.json").read_text())["chosen_L"] == 14
    expected_half_width = pilot.resolvable_half_width([-0.05, 0.05])
    assert f"implies at 6 seeds: {expected_half_width:.3f} cm." in text
    # These TAT records hold no drawn teachers: the share is unknown, not nan.
    assert "from an earlier teacher not known (no taught epochs recorded)." in text
    assert "nan%" not in text

    # With one paired seed the half-width is unknown, and the report says so.
    pilot.write_pilot_report(str(tmp_path), [1], ["python x"])
    text = (tmp_path / "pilot_report.md").read_text()
    assert "implies at 6 seeds: not known until 2 seeds are paired." in text
    assert "nan cm" not in text

    # The same records under the paper's width: one candidate, its own files.
    os.rename(tmp_path / "runs" / "pilot", tmp_path / "runs" / "pilot_full")
    summary = pilot.write_pilot_report(str(tmp_path), [1, 2], ["python x"],
                                       scale="pilot_full")
    assert [c["L"] for c in summary["candidates"]] == [14]
    assert summary["chosen_L"] == 14 and summary["width_multiplier"] == 1.0
    assert "Scale `pilot_full` (width multiplier 1)." in (
        tmp_path / "pilot_full_report.md").read_text()
    with pytest.raises(ValueError, match="Unknown scale 'pilot_ful'"):
        pilot.summarize_pilot(str(tmp_path), [1, 2], scale="pilot_ful")


def test_l28_report_chains_every_candidate(tmp_path):
    """At `pilot_l28` the report shows L = 7, 14 and 28; L = 7's doubling is
    the L = 14 scale's standard run, the others their own doubled runs."""
    def write(scale, run, seed, val_errors, final, test=3.0):
        _write_record(str(tmp_path), scale, run, seed, val_errors, final, test)

    finals = {"bench_small": (3.5, None), "pilot": (3.3, 3.1), "pilot_l28": (3.1, 3.09)}
    for seed, shift in ((1, 0.0), (2, 0.05)):
        for scale, (single, double) in finals.items():
            # Gains of 7.5% then 3.2% at L = 7 and 14 (not converged), 2% at 28.
            gains = {"bench_small": 0.075, "pilot": 0.032, "pilot_l28": 0.02}[scale]
            write(scale, "sd", seed, [4.0 * (1 - gains) ** k for k in range(5)], 3.0)
            write(scale, "standard", seed, [], single + shift)
            if double is not None:
                write(scale, "standard-double", seed, [], double + shift)
        write("pilot_l28", "tat", seed, [4.0, 3.9, 3.8, 3.7, 3.6], 3.0, 2.9 + shift)
    summary = pilot.write_pilot_report(str(tmp_path), [1, 2], ["python x"],
                                       scale="pilot_l28")
    by_l = {c["L"]: c for c in summary["candidates"]}
    assert list(by_l) == [7, 14, 28]
    # L = 7 doubles into the L = 14 scale's standard run: 3.3 against 3.5.
    assert by_l[7]["standard"]["double_cm"] == pytest.approx(3.325)
    assert by_l[7]["standard"]["relative"] == pytest.approx(-0.2 / 3.525)
    assert by_l[14]["standard"]["double_cm"] == pytest.approx(3.125)
    assert by_l[28]["standard"]["relative"] == pytest.approx(-0.01 / 3.125)
    assert [by_l[l]["sd"]["converged"] for l in (7, 14, 28)] == [False, False, True]
    assert summary["chosen_L"] == 28 and summary["L"] == 28
    text = (tmp_path / "pilot_l28_report.md").read_text()
    assert "Regime where both hold: L = 28 (scale `pilot_l28`)." in text
    assert "TAT − SD test error at L = 28" in text


def test_frames_candidate_follows_l28_and_names_its_frames(tmp_path):
    """At `pilot_frames` the report adds L = 28 on every training frame after
    the three candidates on 2,000; the first candidate where both rules hold
    is chosen, named by its scale, since two candidates share L = 28."""
    def write(scale, run, seed, val_errors, final, frames=None):
        _write_record(str(tmp_path), scale, run, seed, val_errors, final, 3.0, frames)

    # Doubling gains: 5.7% (L = 7 into L = 14), 3.2%, 2.7% (not saturated),
    # then 0.3% on every frame (saturated). SD converges from L = 28 on.
    finals = {"bench_small": (3.5, None), "pilot": (3.3, 3.2),
              "pilot_l28": (3.1, 3.02), "pilot_frames": (2.8, 2.79)}
    gains = {"bench_small": 0.075, "pilot": 0.032, "pilot_l28": 0.02,
             "pilot_frames": 0.01}
    for seed, shift in ((1, 0.0), (2, 0.04)):
        for scale, (single, double) in finals.items():
            frames = 8108 if scale == "pilot_frames" and seed == 1 else None
            write(scale, "sd", seed, [4.0 * (1 - gains[scale]) ** k for k in range(5)],
                  3.0, frames)
            write(scale, "standard", seed, [], single + shift)
            if double is not None:
                write(scale, "standard-double", seed, [], double + shift)
    summary = pilot.write_pilot_report(str(tmp_path), [1, 2], ["python x"],
                                       scale="pilot_frames")
    candidates = summary["candidates"]
    assert [(c["scale"], c["L"], c["frames"]) for c in candidates] == [
        ("bench_small", 7, 2000), ("pilot", 14, 2000), ("pilot_l28", 28, 2000),
        ("pilot_frames", 28, 8108)]
    relative = [c["standard"]["relative"] for c in candidates]
    np.testing.assert_allclose(relative, [(3.32 - 3.52) / 3.52, (3.22 - 3.32) / 3.32,
                                          (3.04 - 3.12) / 3.12, (2.81 - 2.82) / 2.82])
    assert [c["holds"] for c in candidates] == [False, False, False, True]
    assert summary["chosen_L"] == 28 and summary["chosen_scale"] == "pilot_frames"
    text = (tmp_path / "pilot_frames_report.md").read_text()
    assert "| 28 | 8,108 | 141 |" in text and "| 28 | 2,000 | 141 |" in text
    assert "Regime where both hold: L = 28 (scale `pilot_frames`)." in text


def test_doubled_row_doubles_every_scale():
    for scale, epochs in (("pilot", 71), ("pilot_l28", 141), ("pilot_frames", 141)):
        specs = reproduction.plan("pilot", scale, [1])
        settings = {s.run: s.settings for s in specs}
        assert reproduction.total_epochs(settings["standard"]) == epochs
        assert reproduction.total_epochs(settings["standard-double"]) == 2 * epochs
        assert settings["sd"]["epochs_per_generation"] == (
            reproduction.SCALES[scale]["epochs_per_generation"])


def test_frames_candidate_falls_back_only_when_complete(tmp_path):
    """When no candidate meets both rules at the last candidate, the
    pre-registered fallback is the converged candidate whose doubling gained
    least; it is named only once the last candidate's runs are complete."""
    def write(scale, run, seed, gain, final):
        _write_record(str(tmp_path), scale, run, seed,
                      [4.0 * (1 - gain) ** k for k in range(5)] if run == "sd" else [],
                      final, 3.0)

    # Doubling gains (relative): L = 14 -0.3%, L = 28 on 2,000 frames -2.6%,
    # on every frame -1.4%; only the last two converge (SD gains of 2% and 1%).
    setups = {"bench_small": (0.075, 3.5, None), "pilot": (0.032, 3.3, 3.29),
              "pilot_l28": (0.02, 3.1, 3.02), "pilot_frames": (0.01, 2.8, 2.76)}
    for seed in (1, 2):
        for scale, (gain, single, double) in setups.items():
            write(scale, "sd", seed, gain, 3.0)
            write(scale, "standard", seed, 0.0, single)
            if double is not None and (scale, seed) != ("pilot_frames", 2):
                write(scale, "standard-double", seed, 0.0, double)
    partial = pilot.summarize_pilot(str(tmp_path), [1, 2], scale="pilot_frames")
    assert partial["chosen_scale"] is None and partial["fallback_scale"] is None
    write("pilot_frames", "standard-double", 2, 0.0, 2.76)
    summary = pilot.write_pilot_report(str(tmp_path), [1, 2], ["python x"],
                                       scale="pilot_frames")
    relative = {c["scale"]: c["standard"]["relative"] for c in summary["candidates"]}
    assert relative["pilot_frames"] == pytest.approx(-0.04 / 2.8)
    assert relative["pilot"] > relative["pilot_frames"]  # but L = 14 did not converge
    assert summary["chosen_scale"] is None and summary["fallback_scale"] == "pilot_frames"
    text = (tmp_path / "pilot_frames_report.md").read_text()
    assert "scale `pilot_frames` (L = 28)" in text and "-1.4%" in text
    # The same records read at L = 28 name no fallback: none was registered there.
    assert pilot.summarize_pilot(str(tmp_path), [1, 2], "pilot_l28")["fallback_scale"] is None


def test_every_pilot_candidate_is_a_scale_and_each_chain_ends_at_its_own():
    # A chain names the scales whose records the pilot reads; one the
    # protocol does not know would have no records to read.
    for scale, chain in pilot.CANDIDATES.items():
        assert scale in reproduction.SCALES
        assert chain[-1] == scale
        assert set(chain) <= set(reproduction.SCALES)
    # The protocol's report takes another name at these scales, so that it
    # never overwrites the pilot's report.
    assert reproduction.report_name("pilot_l28") == "pilot_l28_protocol_report.md"
