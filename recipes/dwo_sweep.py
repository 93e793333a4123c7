r"""Reruns the rows of Table 5 (DwO ablation) and writes one table of error and MSD.

Usage:

    python recipes/dwo_sweep.py \
        --base_flagfile=recipes/configs/synthetic_bench.flags \
        --output_dir=runs/dwo_sweep --seeds=1,2 --rows=all

    # Only the baseline and the recommended setting (8 center bins, T=1, 90%):
    python recipes/dwo_sweep.py \
        --base_flagfile=recipes/configs/synthetic_bench.flags \
        --output_dir=runs/dwo_sweep --seeds=1,2 --rows=baseline,ctr8

    # Rebuild the table from the runs made so far, training nothing:
    python recipes/dwo_sweep.py \
        --base_flagfile=recipes/configs/synthetic_bench.flags \
        --output_dir=runs/dwo_sweep --table_only

For every row and seed this runs

    python recipes/train_tat.py --flagfile=BASE --model_dir=OUT/ROW/seedN \
        --seed=N --dwo ... [--scheme=...] [--data_dir=...] [EXTRA_FLAGS]

as a subprocess, one after the other, with its output in OUT/ROW/seedN.log.
A run whose metrics.json exists is skipped, and rerunning an interrupted run
resumes it from its checkpoint, so rerunning the same sweep command resumes
the sweep. Then it reads every metrics.json (`test_error_cm`, `test_msd_cm`)
and writes OUT/table.md (mean ± sample standard deviation over seeds per row,
the change of MSD against the baseline, and the per-seed numbers) and OUT/table.json.

Rows (Table 5 of Guo et al. 2019; gamma = 1 and epsilon = 3 pixels in all):
baseline (no DwO); ctr_all, ctr32, ctr16, ctr8 (center bins, T=1, Org. 90%);
t2, t3 (8 center bins, T=2 and 3, 90%); org80, org50, org0 (8 center bins,
T=1, Org. 80/50/0%). `ctr8` is also the T=1 and the Org. 90% row. With few
ordinal bins, 32 center bins may cover every bin; the mask is truncated at
the edges, so the row is still valid (it then equals `ctr_all`).
"""

import dataclasses
import datetime
import json
import math
import os
import shlex
import subprocess
import sys
import time

from absl import app
from absl import flags

from tat_keras import reporting

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@dataclasses.dataclass(frozen=True)
class Row:
    """One row of Table 5: the DwO settings it trains with."""

    dwo: bool
    center_bins: str | None = "8"  # "all" or an even count; None without DwO
    steps: int | None = 1
    original_fraction: float | None = 0.9

    def train_flags(self):
        if not self.dwo:
            return ["--nodwo"]
        return [
            "--dwo",
            f"--dwo_center_bins={self.center_bins}",
            f"--dwo_steps={self.steps}",
            f"--dwo_original_fraction={self.original_fraction:g}",
        ]

    def describe(self):
        if not self.dwo:
            return ("", "", "")
        center = "All" if self.center_bins == "all" else self.center_bins
        return (center, str(self.steps), f"{100 * self.original_fraction:g}")


ROWS = {
    "baseline": Row(dwo=False, center_bins=None, steps=None, original_fraction=None),
    "ctr_all": Row(dwo=True, center_bins="all"),
    "ctr32": Row(dwo=True, center_bins="32"),
    "ctr16": Row(dwo=True, center_bins="16"),
    "ctr8": Row(dwo=True, center_bins="8"),
    "t2": Row(dwo=True, steps=2),
    "t3": Row(dwo=True, steps=3),
    "org80": Row(dwo=True, original_fraction=0.8),
    "org50": Row(dwo=True, original_fraction=0.5),
    "org0": Row(dwo=True, original_fraction=0.0),
}

flags.DEFINE_string("base_flagfile", None,
                    "Flag file of recipes/train_tat.py that every run starts from.")
flags.DEFINE_string("output_dir", None,
                    "Folder of the sweep: OUT/ROW/seedN runs, table.md, table.json.")
flags.DEFINE_list("seeds", ["1", "2"], "Seeds; every row is trained once per seed.")
flags.DEFINE_list("rows", ["all"], f"Rows of Table 5: 'all' or some of {list(ROWS)}.")
flags.DEFINE_string("scheme", None,
                    "Training scheme passed to every run (standard|sd|tat); "
                    "unset: the flag file's.")
flags.DEFINE_string("data_dir", None, "Prepared data passed to every run; unset: the flag file's.")
flags.DEFINE_string("extra_flags", "",
                    "More flags for every run, one string, e.g. "
                    "'--max_train_examples=2000 --mini_generations=2'.")
flags.DEFINE_string("train_script", os.path.join(REPO_ROOT, "recipes", "train_tat.py"),
                    "The training entry point.")
flags.DEFINE_bool("table_only", False, "Train nothing; write the table from finished runs.")
flags.DEFINE_bool("dry_run", False, "Print the commands of the runs still to do and stop.")
FLAGS = flags.FLAGS

METRIC_KEYS = ("test_error_cm", "test_msd_cm")


def _selected_rows(names):
    if names == ["all"]:
        return list(ROWS)
    unknown = [name for name in names if name not in ROWS]
    if unknown or not names:
        raise app.UsageError(
            f"--rows must be 'all' or names from {list(ROWS)}. Received: {names}"
        )
    return list(dict.fromkeys(names))


def _seeds(values):
    try:
        return reporting.parse_seeds(values)
    except ValueError as error:
        raise app.UsageError(f"--{error}") from None


def _run_dir(output_dir, row, seed):
    return os.path.join(output_dir, row, f"seed{seed}")


def _command(row, seed, output_dir, settings):
    """The training command of one run; `settings` holds the sweep's flags."""
    command = [
        sys.executable,
        os.path.abspath(settings["train_script"]),
        f"--flagfile={os.path.abspath(settings['base_flagfile'])}",
        f"--model_dir={os.path.abspath(_run_dir(output_dir, row, seed))}",
        f"--seed={seed}",
    ]
    command += ROWS[row].train_flags()
    if settings["scheme"]:
        command.append(f"--scheme={settings['scheme']}")
    if settings["data_dir"]:
        command.append(f"--data_dir={os.path.abspath(settings['data_dir'])}")
    command += shlex.split(settings["extra_flags"])
    return command


def _tail(path, lines=25):
    try:
        with open(path, errors="replace") as f:
            return "".join(f.readlines()[-lines:])
    except OSError:
        return ""


def _train(row, seed, output_dir, settings):
    """Runs one training; returns None on success, else the log path."""
    run_dir = _run_dir(output_dir, row, seed)
    os.makedirs(os.path.dirname(run_dir), exist_ok=True)
    log_path = f"{run_dir}.log"
    command = _command(row, seed, output_dir, settings)
    print(f"[{datetime.datetime.now():%H:%M:%S}] {row} seed {seed}: training, "
          f"log {log_path}", flush=True)
    start = time.time()
    with open(log_path, "a") as log:
        log.write(f"$ {shlex.join(command)}\n")
        log.flush()
        status = subprocess.call(command, cwd=REPO_ROOT, stdout=log, stderr=subprocess.STDOUT)
    if status != 0 or not os.path.exists(os.path.join(run_dir, "metrics.json")):
        print(f"  failed (exit status {status}) after {time.time() - start:.0f} s; "
              f"last lines of {log_path}:\n{_tail(log_path)}", flush=True)
        return log_path
    print(f"  done in {time.time() - start:.0f} s", flush=True)
    return None


def _read_metrics(output_dir, rows, seeds):
    results = {}
    for row in rows:
        for seed in seeds:
            path = os.path.join(_run_dir(output_dir, row, seed), "metrics.json")
            if not os.path.exists(path):
                continue
            with open(path) as f:
                metrics = json.load(f)
            missing = [key for key in METRIC_KEYS if key not in metrics]
            if missing:
                raise ValueError(f"{path} lacks {missing}; it was not written by "
                                 "recipes/train_tat.py. Delete the run and sweep again.")
            results.setdefault(row, {})[seed] = metrics
    return results


def _summarize(results, rows, seeds):
    summary = []
    for row in rows:
        runs = results.get(row, {})
        error = reporting.summarize([runs[s]["test_error_cm"] for s in seeds if s in runs])
        msd = reporting.summarize([runs[s]["test_msd_cm"] for s in seeds if s in runs])
        summary.append({
            "row": row,
            **{k: v for k, v in dataclasses.asdict(ROWS[row]).items()},
            "seeds": [s for s in seeds if s in runs],
            "test_error_cm": error, "test_msd_cm": msd,
            "per_seed": {
                str(s): {key: runs[s].get(key) for key in (
                    "test_error_cm", "test_msd_cm", "test_msd_sequences", "train_seconds")}
                for s in seeds if s in runs
            },
        })
    return summary


def _markdown(summary, seeds, command, settings):
    baseline = next((r for r in summary if r["row"] == "baseline"), None)
    baseline_msd = baseline["test_msd_cm"].mean if baseline else math.nan
    lines = [
        "# DwO ablation (Table 5 rows)",
        "",
        f"Command: `{command}`",
        "",
        f"Base flags: `{settings['base_flagfile']}`"
        + (f", scheme `{settings['scheme']}`" if settings["scheme"] else "")
        + (f", extra flags `{settings['extra_flags']}`" if settings["extra_flags"] else "")
        + f"; seeds {', '.join(map(str, seeds))}; written "
        f"{datetime.datetime.now():%Y-%m-%d %H:%M}.",
        "",
        "Error: mean Euclidean test error; MSD: mean over test stare sequences of the "
        "spread of the predictions (Eq. 10-12); both in cm, mean ± sample standard "
        "deviation over seeds (no ± with one seed). ΔMSD: change of the mean MSD "
        "against this sweep's baseline.",
        "",
        "| Row | #Ctr. bin | T | Org.% | Error (cm) | MSD (cm) | ΔMSD | Seeds |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in summary:
        center, steps, original = ROWS[r["row"]].describe()
        if r["row"] == "baseline" or not math.isfinite(baseline_msd):
            change = "–"
        else:
            relative = 100.0 * (r["test_msd_cm"].mean / baseline_msd - 1.0)
            change = "–" if not math.isfinite(relative) else f"{relative:+.1f}%"
        lines.append(
            f"| {r['row']} | {center} | {steps} | {original} | "
            f"{reporting.format_mean_std(r['test_error_cm'])} | "
            f"{reporting.format_mean_std(r['test_msd_cm'])} | {change} | "
            f"{len(r['seeds'])} |"
        )
    lines += [
        "",
        "## Per seed",
        "",
        "| Row | Seed | Error (cm) | MSD (cm) | MSD sequences | Train seconds |",
        "|---|---|---|---|---|---|",
    ]
    for r in summary:
        for seed, values in r["per_seed"].items():
            sequences = values.get("test_msd_sequences")
            seconds = values.get("train_seconds")
            lines.append(
                f"| {r['row']} | {seed} | {reporting.format_number(values['test_error_cm'])} | "
                f"{reporting.format_number(values['test_msd_cm'])} | "
                f"{'–' if sequences is None else sequences} | "
                f"{'–' if seconds is None else f'{seconds:.0f}'} |"
            )
    return "\n".join(lines) + "\n"


def _write_table(output_dir, rows, seeds, command, settings):
    results = _read_metrics(output_dir, rows, seeds)
    summary = _summarize(results, rows, seeds)
    with open(os.path.join(output_dir, "table.md"), "w") as f:
        f.write(_markdown(summary, seeds, command, settings))
    reporting.write_json(os.path.join(output_dir, "table.json"), {
        "command": command,
        **{k: settings[k] for k in ("base_flagfile", "scheme", "extra_flags")},
        "seeds": seeds,
        "rows": summary,
    })
    return sum(len(runs) for runs in results.values())


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"Unexpected arguments: {argv[1:]}")
    if not FLAGS.base_flagfile or not FLAGS.output_dir:
        raise app.UsageError("--base_flagfile and --output_dir are required, e.g. "
                             "--base_flagfile=recipes/configs/synthetic_bench.flags "
                             "--output_dir=runs/dwo_sweep")
    rows = _selected_rows(FLAGS.rows)
    seeds = _seeds(FLAGS.seeds)
    if not os.path.isfile(FLAGS.base_flagfile):
        print(f"error: the flag file {FLAGS.base_flagfile} does not exist; the "
              "training configurations are in recipes/configs/.", file=sys.stderr)
        return 1
    if not FLAGS.table_only and not os.path.isfile(FLAGS.train_script):
        print(f"error: the training script {FLAGS.train_script} does not exist.",
              file=sys.stderr)
        return 1
    os.makedirs(FLAGS.output_dir, exist_ok=True)
    command = shlex.join(["python", "recipes/dwo_sweep.py"] + sys.argv[1:])
    settings = {name: FLAGS[name].value for name in (
        "train_script", "base_flagfile", "scheme", "data_dir", "extra_flags")}

    todo = [
        (row, seed) for seed in seeds for row in rows  # seed-major: every row gets seed 1 first
        if not os.path.exists(os.path.join(_run_dir(FLAGS.output_dir, row, seed), "metrics.json"))
    ]
    if FLAGS.dry_run:
        for row, seed in todo:
            print(shlex.join(_command(row, seed, FLAGS.output_dir, settings)))
        print(f"{len(todo)} of {len(rows) * len(seeds)} runs to do.")
        return 0
    failures = []
    if not FLAGS.table_only:
        print(f"{len(rows) * len(seeds) - len(todo)} runs finished already, "
              f"{len(todo)} to do.", flush=True)
        for row, seed in todo:
            failed_log = _train(row, seed, FLAGS.output_dir, settings)
            if failed_log:
                failures.append(failed_log)
    finished = _write_table(FLAGS.output_dir, rows, seeds, command, settings)
    print(f"{finished} finished runs in {os.path.join(FLAGS.output_dir, 'table.md')} "
          f"and table.json")
    if failures:
        print(f"{len(failures)} runs failed; see " + ", ".join(failures)
              + ". Rerun the same command to retry them.", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    app.run(main)
