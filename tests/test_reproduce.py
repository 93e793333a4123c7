"""End-to-end tests of `recipes/reproduce.py` at the smoke scale."""

import csv
import json
import os
import subprocess
import sys

import pytest


def _reproduce(run_recipe, data_dir, tmp_path, *args, timeout=600):
    return run_recipe(
        "reproduce.py", "--scale=smoke", f"--data_dir={data_dir}",
        f"--output_dir={tmp_path / 'results'}", f"--work_dir={tmp_path / 'work'}",
        *args, timeout=timeout)


@pytest.mark.slow
def test_smoke_trains_records_and_reports(run_recipe, tiny_synthetic_dir, tmp_path):
    # Table 1 at one seed in two shard processes (--jobs=2): the first shard
    # trains standard then SD, the second iTracker then TAT.
    result = _reproduce(run_recipe, tiny_synthetic_dir, tmp_path, "--suite=table1",
                        "--seeds=1", "--jobs=2")
    assert result.returncode == 0, result.stderr[-3000:]
    assert "shard 1/2: [1/2] table1 standard seed 1" in result.stdout
    assert "shard 1/2: [2/2] table1 sd seed 1" in result.stdout
    assert "shard 2/2: [1/2] table1 itracker seed 1" in result.stdout
    assert "shard 2/2: [2/2] table1 tat seed 1" in result.stdout
    assert "min left" in result.stdout  # the progress line estimates what is left
    for index in (1, 2):
        assert (tmp_path / "work" / "smoke" / f"table1-shard{index}of2.log").exists()
    results = tmp_path / "results"
    for run in ("standard", "itracker", "sd", "tat"):
        directory = results / "runs" / "smoke" / run / "seed1"
        for name in ("metrics.json", "history.json", "generations.json", "config.json"):
            assert (directory / name).exists(), (run, name)
        assert not (directory / "model.keras").exists()  # models stay in work_dir
    with open(results / "smoke_table1.csv") as f:
        rows = list(csv.DictReader(f))
    assert sorted(r["row"] for r in rows) == ["itracker", "sd", "standard", "tat"]
    metrics = json.loads((results / "runs" / "smoke" / "standard" / "seed1" /
                          "metrics.json").read_text())
    standard = next(r for r in rows if r["row"] == "standard")
    assert float(standard["test_error_cm"]) == metrics["test_error_cm"]
    itracker = json.loads((results / "runs" / "smoke" / "itracker" / "seed1" /
                           "config.json").read_text())
    assert itracker["head"] == "regression" and itracker["scheme"] == "standard"
    tat = next(r for r in rows if r["row"] == "tat")
    assert len(tat["generation_test_error_cm"].split(";")) == 2  # two mini-generations
    report = (results / "smoke_report.md").read_text()
    assert "4 of 22 planned runs finished" in report
    # One seed cannot decide; `reproduction_test.py` checks the decisions.
    assert "TAT: undecided" in report and "DwO: undecided" in report
    # The report shows what to run, not how it was spread over processes.
    assert "python recipes/reproduce.py --scale=smoke" in report
    # ... and, first, the command that reproduces the whole protocol.
    assert "\npython recipes/reproduce.py --suite=all --scale=smoke" in report
    assert "--jobs" not in report and "--work_dir" not in report

    # Table 5's baseline is the standard run, trained above without the
    # clean-stare set: a Table 5 command adds its MSD there from the model.
    # Measured on the same data, it is the run's own test MSD.
    completed = _reproduce(run_recipe, tiny_synthetic_dir, tmp_path, "--suite=table5",
                           "--seeds=1", "--max_runs=0",
                           f"--clean_stare_data_dir={tiny_synthetic_dir}")
    assert completed.returncode == 0, completed.stderr[-3000:]
    assert "Clean-stare MSD of standard seed 1" in completed.stdout
    record = json.loads((results / "runs" / "smoke" / "standard" / "seed1" /
                         "metrics.json").read_text())
    assert record["clean_test_msd_cm"] == pytest.approx(metrics["test_msd_cm"], rel=1e-4)
    with open(results / "smoke_table5.csv") as f:
        baseline = next(r for r in csv.DictReader(f) if r["row"] == "baseline")
    assert float(baseline["clean_test_msd_cm"]) == record["clean_test_msd_cm"]

    # Finished runs are skipped: at two seeds, what is left is seed 2.
    again = _reproduce(run_recipe, tiny_synthetic_dir, tmp_path, "--suite=table1",
                       "--seeds=1,2", "--dry_run")
    assert again.returncode == 0, again.stderr[-3000:]
    assert "4 to train" in again.stdout and "seed 1" not in again.stdout
    # Two processes share what is left: the second takes every second run.
    second = _reproduce(run_recipe, tiny_synthetic_dir, tmp_path, "--suite=table1",
                        "--seeds=1,2", "--dry_run", "--shard=2/2")
    assert second.returncode == 0, second.stderr[-3000:]
    assert "2 to train" in second.stdout
    assert "(itracker)" in second.stdout and "(tat)" in second.stdout
    assert "(sd)" not in second.stdout and "(standard)" not in second.stdout

    # Each record names the data it was trained on; the suite refuses to
    # count a record made on other data.
    from tat_keras import reproduction

    assert metrics["data_fingerprint"] == reproduction.data_fingerprint(
        str(tiny_synthetic_dir))
    metrics_path = results / "runs" / "smoke" / "itracker" / "seed1" / "metrics.json"
    changed = json.loads(metrics_path.read_text())
    changed["data_fingerprint"] = "0123456789abcdef"
    metrics_path.write_text(json.dumps(changed))
    refused = _reproduce(run_recipe, tiny_synthetic_dir, tmp_path, "--suite=table1",
                         "--seeds=1", "--dry_run")
    assert refused.returncode != 0
    assert "itracker seed 1" in refused.stderr and "other data" in refused.stderr


def test_docstring_examples():
    # In a child process: the recipe defines absl flags on import, and other
    # recipes loaded by tests in this process define some of the same names.
    path = os.path.join(os.path.dirname(__file__), os.pardir, "recipes", "reproduce.py")
    code = (
        "import doctest, importlib.util, sys\n"
        f"spec = importlib.util.spec_from_file_location('reproduce_recipe', {path!r})\n"
        "module = importlib.util.module_from_spec(spec)\n"
        "spec.loader.exec_module(module)\n"
        "result = doctest.testmod(module)\n"
        "print(result.attempted, result.failed)\n")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    attempted, failed = map(int, result.stdout.split()[-2:])
    assert attempted >= 2 and failed == 0, result.stdout[-2000:]


def test_bad_arguments_say_what_to_do(run_recipe, tmp_path):
    result = run_recipe("reproduce.py", "--scale=smoke", "--suite=table1",
                        f"--output_dir={tmp_path}")
    assert result.returncode != 0 and "--data_dir is required" in result.stderr
    result = run_recipe("reproduce.py", "--suite=table1", "--seeds=1,x",
                        f"--output_dir={tmp_path}")
    assert result.returncode != 0 and "seeds must be integers" in result.stderr
    result = run_recipe("reproduce.py", "--suite=table1", "--jobs=2", "--shard=1/2",
                        f"--output_dir={tmp_path}")
    assert result.returncode != 0 and "leave --shard unset" in result.stderr
    for shard in ("3/2", "1", "a/b"):
        result = run_recipe("reproduce.py", "--suite=table1", f"--shard={shard}",
                            f"--output_dir={tmp_path}")
        assert result.returncode != 0 and "--shard must be I/N" in result.stderr


@pytest.mark.slow
def test_every_suite_at_smoke_scale(run_recipe, tiny_synthetic_dir, tmp_path):
    # 40 small runs: about 15 minutes on 2 busy cores.
    result = _reproduce(run_recipe, tiny_synthetic_dir, tmp_path, "--suite=all",
                        "--seeds=1,2", timeout=3600)
    assert result.returncode == 0, result.stderr[-3000:]
    report = (tmp_path / "results" / "smoke_report.md").read_text()
    assert "40 of 40 planned runs finished" in report
    assert "DwO: " in report and "undecided" not in report
    for name in ("smoke_table2.md", "smoke_table5.md", "smoke_width.md",
                 "smoke_fig3_norms.png", "smoke_generation_errors.png"):
        assert os.path.exists(tmp_path / "results" / name), name
