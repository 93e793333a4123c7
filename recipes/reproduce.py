r"""Runs the evidence protocol's suites and writes the report.

Usage:

    # The whole protocol at the benchmark scale (many hours on 2 CPU cores):
    python recipes/reproduce.py --suite=all --scale=bench --seeds=1,2,3,4 \
        --data_dir=data/bench/tfds --output_dir=docs/results

    # One table; the Table 5 rows also measure MSD on a stare set rendered
    # with the geometric nuisances off:
    python recipes/reproduce.py --suite=table5 --scale=bench --seeds=1,2,3,4 \
        --clean_stare_data_dir=data/bench_stare_clean/tfds

    # Rewrite the tables and report from the records, training nothing:
    python recipes/reproduce.py --suite=all --scale=bench --report_only

    # Two processes of one thread each share the runs still to train (on 2
    # cores they finish more runs per hour than one process of two threads;
    # see docs/results/README.md); their logs go to --work_dir:
    python recipes/reproduce.py --suite=all --scale=bench --jobs=2

    # The same by hand (one shard per machine or terminal):
    python recipes/reproduce.py --suite=table1 --shard=1/2 --intra_op_threads=1 &
    python recipes/reproduce.py --suite=table1 --shard=2/2 --intra_op_threads=1 &

    # Every row of the paper's Table 5 (center bins, PGD steps, share of
    # original data) at two seeds; writes dwo_sweep.md and .csv beside the
    # protocol's tables:
    python recipes/reproduce.py --suite=dwo_sweep --scale=bench --seeds=1,2 \
        --clean_stare_data_dir=data/bench_stare_clean/tfds

    # The pilot, before the decision runs of TAT where its premise holds
    # (docs/results/README.md, "The pilot"); writes pilot_report.md:
    python recipes/reproduce.py --suite=pilot --scale=pilot --seeds=1,2 \
        --data_dir=data/bench/tfds
    # Its next candidate, L = 28; writes pilot_l28_report.md:
    python recipes/reproduce.py --suite=pilot --scale=pilot_l28 --seeds=1,2 \
        --data_dir=data/bench/tfds
    # The candidate after it, L = 28 on every training frame; writes
    # pilot_frames_report.md:
    python recipes/reproduce.py --suite=pilot --scale=pilot_frames --seeds=1,2 \
        --data_dir=data/bench/tfds --jobs=2

Suites: learning_curve, table1, table2, table3, table4, width, table5, all
(`tat_keras/reproduction.py` defines their rows and the decision rule); the
sweeps `dwo_sweep` (Table 5 in full) and `premise` (TAT where its premise
holds: the chain from SD to TAT, teacher thresholds, DwO), not part of
`all`; the study `pilot` (`tat_keras/pilot.py`). Every run's settings are
checked when the suite is planned, before anything trains.
Scales: smoke (a tiny run of everything, for tests), bench (the bench
synthetic set at the paper's shape: 36 epochs, one-eighth width, 4,000
training frames), bench_small (the same on 2,000 frames), pilot and
pilot_full (bench_small with L = 14, at one-eighth and at the paper's
width), pilot_l28 (bench_small with L = 28), pilot_frames (L = 28 on all
8,108 training frames of the bench set), paper (GazeCapture at the paper's
settings, for accelerators).

Each run trains in `--work_dir/<scale>/<run>/seed<N>` (models, checkpoints,
logs: not committed). When it finishes, its small records (metrics.json,
history.json, generations.json, config.json) are copied to
`--output_dir/runs/<scale>/<run>/seed<N>/` and the tables and report are
rewritten, so the records can be committed run by run. A finished run is
skipped; an interrupted one resumes from its last checkpoint, so rerunning
the same command continues the suite.
"""

import json
import os
import shlex
import shutil
import subprocess
import sys
import time

from absl import app
from absl import flags

from tat_keras import reporting
from tat_keras import reproduction

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

flags.DEFINE_enum("suite", "all", list(reproduction.SUITE_NAMES), "Which runs to train.")
flags.DEFINE_enum("scale", "bench", list(reproduction.SCALES), "Scale of every run.")
flags.DEFINE_list("seeds", ["1", "2", "3", "4"],
                  "Seeds; rows that need fewer take the first ones.")
flags.DEFINE_string("data_dir", None,
                    "Prepared data; unset: data/bench/tfds (bench) or "
                    "data/gazecapture/tfds (paper). Required for smoke.")
flags.DEFINE_string("clean_stare_data_dir", None,
                    "Prepared stare set rendered with the geometric nuisances off; "
                    "when set, the runs of Table 5 and of the DwO sweep also report "
                    "its test MSD.")
flags.DEFINE_string("output_dir", "docs/results", "Records, tables, figures, report.")
flags.DEFINE_string("work_dir", "runs/reproduce", "Models and checkpoints of the runs.")
flags.DEFINE_integer("max_runs", None, "Train at most this many runs, then report.")
flags.DEFINE_string("shard", None,
                    "I/N: train only every N-th run still to train, starting at the "
                    "I-th (1-based), so that N processes share the suite; e.g. two "
                    "processes --shard=1/2 and --shard=2/2 with --intra_op_threads=1.")
flags.DEFINE_integer("jobs", 1,
                     "Train in this many processes at once: starts --shard=I/N "
                     "children of one thread each (unless thread flags are given), "
                     "relays their progress, then writes the report.")
flags.DEFINE_integer("intra_op_threads", 0,
                     "TensorFlow threads inside one op (0: one per core).")
flags.DEFINE_integer("inter_op_threads", 0,
                     "TensorFlow threads across ops (0: one per core).")
flags.DEFINE_bool("report_only", False, "Train nothing; rewrite tables and report.")
flags.DEFINE_enum("backend", None, ["tensorflow", "jax"],
                  "Keras backend of the runs; unset: KERAS_BACKEND's (tensorflow when "
                  "unset too). Each run's metrics.json names it.")
flags.DEFINE_bool("dry_run", False, "List the runs still to train and stop.")
FLAGS = flags.FLAGS


def _seeds(values):
    try:
        return reporting.parse_seeds(values)
    except ValueError as error:
        raise app.UsageError(f"--{error}") from None


def parse_shard(text):
    """`"I/N"` -> (I, N) with 1 <= I <= N; None -> (1, 1)."""
    if text is None:
        return 1, 1
    index, separator, count = text.partition("/")
    try:
        index, count = int(index), int(count)
    except ValueError:
        index = count = 0
    if not separator or not 1 <= index <= count:
        raise app.UsageError(
            f"--shard must be I/N with 1 <= I <= N, e.g. --shard=1/2. "
            f"Received: --shard={text}")
    return index, count


def _data_dir(data_dir, scale):
    data_dir = data_dir or reproduction.DEFAULT_DATA_DIRS.get(scale)
    if data_dir is None:
        raise app.UsageError(f"--data_dir is required at --scale={scale}.")
    return data_dir


def _clean_msd(model_dir, config, clean_data_dir):
    """Test MSD of the run's model on the nuisance-free stare set."""
    import keras
    import numpy as np

    from tat_keras import evaluation

    model = keras.models.load_model(os.path.join(model_dir, "model.keras"))
    true, pred, metadata = evaluation.predict_split(
        lambda x: np.asarray(model.decode(model(x, training=False))),
        clean_data_dir, "test", image_size=config.image_size)
    summary = evaluation.summarize(true, pred, metadata, prefix="clean_test",
                                   msd_min_length=config.msd_min_length)
    return summary["clean_test_msd_cm"]


def _train(spec, data_dir, model_dir, clean_data_dir=None):
    """Trains (or resumes) one run in `model_dir`; with `clean_data_dir`, a
    run of Table 5 or of the DwO sweep also reports the test MSD on that
    stare set."""
    import keras

    from tat_keras.training import TrainConfig
    from tat_keras.training import train

    config = TrainConfig(data_dir=data_dir, **spec.settings)
    metrics_path = os.path.join(model_dir, "metrics.json")
    if not os.path.exists(metrics_path):
        keras.backend.clear_session()
        train(config, model_dir, verbose=2)
    with open(metrics_path) as f:
        metrics = json.load(f)
    if metrics.get("data_fingerprint") is None:
        metrics["data_fingerprint"] = reproduction.data_fingerprint(
            data_dir, config.image_size)
    if (clean_data_dir and spec.run in _stare_runs(spec.seed)
            and metrics.get("clean_test_msd_cm") is None):
        metrics["clean_test_msd_cm"] = _clean_msd(model_dir, config.resolved(),
                                                   clean_data_dir)
    reporting.write_json(metrics_path, metrics)


def _stare_runs(seed):
    """The run ids of the tables that measure MSD on the nuisance-free stare
    set (their baseline is the standard run of Table 1, which `unique_runs`
    may list under another table)."""
    return {s.run for table in reproduction.STARE_TABLES
            for s in reproduction.plan(table, FLAGS.scale, [seed])}


def _complete_clean_msd(specs, data_dir, clean_data_dir):
    """Adds the MSD on the nuisance-free stare set to finished runs of Table 5
    and of the DwO sweep that lack it: the baseline is first trained for the
    learning curve and Table 1, where that MSD is not measured. Needs the
    run's model in --work_dir."""
    missing = []
    for spec in reproduction.unique_runs(
            [s for s in specs if s.table in reproduction.STARE_TABLES]):
        target = reproduction.record_dir(FLAGS.output_dir, FLAGS.scale, spec.run,
                                         spec.seed)
        run = reproduction.load_run(FLAGS.output_dir, FLAGS.scale, spec.run, spec.seed)
        if run is None or run["metrics"].get("clean_test_msd_cm") is not None:
            continue
        model_dir = os.path.join(FLAGS.work_dir, FLAGS.scale, spec.run, f"seed{spec.seed}")
        if not os.path.exists(os.path.join(model_dir, "model.keras")):
            missing.append(f"{spec.run} seed {spec.seed}")
            continue
        from tat_keras.training import TrainConfig

        config = TrainConfig(data_dir=data_dir, **spec.settings).resolved()
        print(f"Clean-stare MSD of {spec.run} seed {spec.seed}", flush=True)
        msd = _clean_msd(model_dir, config, clean_data_dir)
        for directory in (model_dir, target):
            path = os.path.join(directory, "metrics.json")
            with open(path) as f:
                metrics = json.load(f)
            metrics["clean_test_msd_cm"] = msd
            reporting.write_json(path, metrics)
    if missing:
        print(f"No model in {FLAGS.work_dir} to measure the clean-stare MSD of: "
              f"{', '.join(missing)}. Train them again (move their records away) "
              "to fill that column.", file=sys.stderr, flush=True)


def _keep_records(model_dir, target):
    """Copies the run's small records into `target` (committed)."""
    os.makedirs(target, exist_ok=True)
    # metrics.json last: its presence marks the records complete.
    for name in sorted(reproduction.RECORD_FILES, key=lambda n: n == "metrics.json"):
        source = os.path.join(model_dir, name)
        if os.path.exists(source):
            shutil.copyfile(source, os.path.join(target, name))


def _jitter_figure(data_dir, runs, output):
    """Fig. 1(b) from the baseline and DwO runs `runs`, when both exist."""
    if not all(os.path.exists(os.path.join(r, "model.keras")) for r in runs):
        return
    if os.path.exists(output):
        return
    subprocess.run([sys.executable, os.path.join(REPO_ROOT, "recipes", "plot_jitter.py"),
                    f"--baseline_dir={runs[0]}", f"--dwo_dir={runs[1]}",
                    f"--data_dir={data_dir}", f"--output={output}"], check=False)


def _report(output_dir, scale, seeds, command):
    if FLAGS.suite in reproduction.STUDIES:
        from tat_keras import pilot

        summary = pilot.write_pilot_report(output_dir, seeds, [command], scale)
        found = (f"regime found: scale {summary['chosen_scale']}"
                 if summary["chosen_scale"] else
                 f"no regime; pre-registered fallback: scale {summary['fallback_scale']}"
                 if summary["fallback_scale"] else "no regime yet")
        print(f"Report: {os.path.join(output_dir, scale + '_report.md')} ({found})",
              flush=True)
        return
    if FLAGS.suite == "premise":
        # Its own report: at a pilot's scale the protocol's report would
        # stand for the whole protocol, which the suite does not run.
        from tat_keras import premise

        decisions = premise.write_decisions(output_dir, scale, seeds)
        print(f"Decisions: {os.path.join(output_dir, scale + '_premise_decisions.md')} "
              f"(TAT row: {decisions['tat_row']}). {decisions['tat_sentence']} "
              f"{decisions['dwo_sentence']}", flush=True)
        return
    summary = reproduction.write_report(output_dir, scale, seeds,
                                        report_commands(command))
    finished, planned = summary["runs"]
    report = os.path.join(output_dir, reproduction.report_name(scale))
    print(f"Report: {report} "
          f"({finished} of {planned} runs of the whole protocol finished)", flush=True)


# Flags that change how, not what, the suite trains: left out of the
# command the report shows.
_OPERATIONAL_FLAGS = ("shard", "jobs", "report_only", "dry_run", "max_runs",
                      "intra_op_threads", "inter_op_threads", "work_dir")


def reproducing_command(argv):
    """The command the report shows: `argv` without operational flags.

    >>> reproducing_command(["--suite=table1", "--shard=2/2", "--intra_op_threads=1",
    ...                      "--report_only", "--seeds=1,2"])
    'python recipes/reproduce.py --suite=table1 --seeds=1,2'
    """
    def operational(arg):
        name = arg.lstrip("-").split("=", 1)[0]
        return any(name in (flag, "no" + flag) for flag in _OPERATIONAL_FLAGS)

    return shlex.join(["python", "recipes/reproduce.py"]
                      + [a for a in argv if not operational(a)])


def report_commands(command):
    """The commands the report lists: the whole protocol, then `command`.

    The report gathers the records of every suite at its scale, so the
    command that reproduces it all is `command` with `--suite=all`; the
    command that last wrote the report follows, where it differs.

    >>> for line in report_commands("python recipes/reproduce.py --suite=table5 --seeds=1,2"):
    ...     print(line)
    python recipes/reproduce.py --suite=all --seeds=1,2
    # This report was last written by:
    # python recipes/reproduce.py --suite=table5 --seeds=1,2
    """
    words, whole = shlex.split(command), []
    while words:
        word = words.pop(0)
        if word == "--suite" and words:
            words.pop(0)
        elif not word.startswith("--suite="):
            whole.append(word)
    whole.insert(2, "--suite=all")
    whole = shlex.join(whole)
    if whole == command:
        return [command]
    return [whole, "# This report was last written by:", f"# {command}"]


def _child_args(argv, jobs, index):
    """The command line of shard `index` of `jobs`: `argv` without --jobs."""
    args = [a for a in argv if not (a == "--jobs" or a.startswith("--jobs="))]
    args.append(f"--shard={index}/{jobs}")
    if not FLAGS.intra_op_threads:
        args.append("--intra_op_threads=1")
    if not FLAGS.inter_op_threads:
        args.append("--inter_op_threads=1")
    return args


def _run_shards(jobs):
    """Runs `jobs` shard processes, relays their progress lines, returns the
    worst exit status. Ctrl-C stops them; rerunning resumes."""
    log_dir = os.path.join(FLAGS.work_dir, FLAGS.scale)
    os.makedirs(log_dir, exist_ok=True)
    children = []
    for index in range(1, jobs + 1):
        log_path = os.path.join(log_dir, f"{FLAGS.suite}-shard{index}of{jobs}.log")
        log = open(log_path, "w")
        process = subprocess.Popen(
            [sys.executable, os.path.abspath(__file__),
             *_child_args(sys.argv[1:], jobs, index)],
            stdout=log, stderr=subprocess.STDOUT, cwd=os.getcwd())
        children.append((index, process, log, log_path, [0]))
        print(f"shard {index}/{jobs}: pid {process.pid}, log {log_path}", flush=True)

    def relay():
        for index, _, _, log_path, offset in children:
            with open(log_path, "rb") as f:
                f.seek(offset[0])
                data = f.read()
            complete = data[:data.rfind(b"\n") + 1]  # whole lines only
            offset[0] += len(complete)
            for line in complete.decode("utf-8", errors="replace").splitlines():
                if line.startswith(("[", "error", "Report:")) or " to train." in line:
                    print(f"shard {index}/{jobs}: {line}", flush=True)

    try:
        while any(process.poll() is None for _, process, *_ in children):
            relay()
            time.sleep(5)
    except KeyboardInterrupt:
        for _, process, *_ in children:
            process.terminate()
        for _, process, *_ in children:
            process.wait()
        print("Stopped; rerun the same command to resume.", file=sys.stderr)
        return 130
    finally:
        for _, _, log, _, _ in children:
            log.close()
    relay()
    codes = [process.returncode for _, process, *_ in children]
    for (index, _, _, log_path, _), code in zip(children, codes):
        if code:
            print(f"shard {index}/{jobs} failed (exit {code}); see {log_path}",
                  file=sys.stderr)
    return max(codes)


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"Unexpected arguments: {argv[1:]}")
    if FLAGS.backend:  # Before Keras is first imported.
        os.environ["KERAS_BACKEND"] = FLAGS.backend
    seeds = _seeds(FLAGS.seeds)
    shard, shards = parse_shard(FLAGS.shard)
    if FLAGS.jobs < 1 or (FLAGS.jobs > 1 and FLAGS.shard):
        raise app.UsageError(
            "--jobs must be >= 1, and --jobs > 1 starts its own shards: leave "
            f"--shard unset. Received: --jobs={FLAGS.jobs} --shard={FLAGS.shard}")
    data_dir = _data_dir(FLAGS.data_dir, FLAGS.scale)
    command = reproducing_command(sys.argv[1:])
    os.makedirs(FLAGS.output_dir, exist_ok=True)
    specs = reproduction.plan(FLAGS.suite, FLAGS.scale, seeds, FLAGS.output_dir)
    runs = reproduction.unique_runs(specs)
    fingerprint = reproduction.data_fingerprint(
        data_dir, reproduction.SCALES[FLAGS.scale].get("image_size", 64))
    foreign = reproduction.foreign_records(specs, FLAGS.output_dir, FLAGS.scale,
                                           fingerprint)
    if foreign:
        listed = ", ".join(f"{run} seed {seed}" for run, seed, _ in foreign)
        raise app.UsageError(
            f"{len(foreign)} finished run(s) under {FLAGS.output_dir} were trained on "
            f"other data than {data_dir} (data fingerprint {fingerprint}; theirs: "
            f"{sorted({f for _, _, f in foreign})}): {listed}. Pass the --data_dir "
            "they were trained on, or move their records away to train them again.")
    todo = [s for s in runs if reproduction.load_run(
        FLAGS.output_dir, FLAGS.scale, s.run, s.seed) is None]
    todo = todo[shard - 1::shards]
    if FLAGS.max_runs is not None:
        todo = todo[:FLAGS.max_runs]
    print(f"{FLAGS.suite} at {FLAGS.scale} scale: {len(runs)} runs, "
          f"{len(runs) - len(todo)} finished or left for later"
          f"{f' or to shards other than {shard}/{shards}' if shards > 1 else ''}, "
          f"{len(todo)} to train.",
          flush=True)
    if FLAGS.dry_run:
        for spec in todo:
            print(f"  {spec.table:14s} {spec.row:26s} seed {spec.seed}  ({spec.run})")
        return 0
    if FLAGS.clean_stare_data_dir and shard == 1 and not FLAGS.report_only:
        _complete_clean_msd(specs, data_dir, FLAGS.clean_stare_data_dir)
    if FLAGS.jobs > 1 and not FLAGS.report_only:
        status = _run_shards(FLAGS.jobs)
        _report(FLAGS.output_dir, FLAGS.scale, seeds, command)
        return status
    if not FLAGS.report_only:
        if (FLAGS.intra_op_threads or FLAGS.inter_op_threads) and os.environ.get(
                "KERAS_BACKEND", "tensorflow") == "tensorflow":
            import tensorflow as tf

            # Before any op runs.
            tf.config.threading.set_intra_op_parallelism_threads(FLAGS.intra_op_threads)
            tf.config.threading.set_inter_op_parallelism_threads(FLAGS.inter_op_threads)
        started, durations = time.time(), []
        for index, spec in enumerate(todo):
            left = (f", about {sum(durations) / len(durations) * (len(todo) - index) / 60:.0f} "
                    "min left" if durations else "")
            print(f"[{index + 1}/{len(todo)}] {spec.table} {spec.row} seed {spec.seed} "
                  f"({spec.run}); elapsed {(time.time() - started) / 60:.1f} min{left}",
                  flush=True)
            run_started = time.time()
            model_dir = os.path.join(FLAGS.work_dir, FLAGS.scale, spec.run,
                                     f"seed{spec.seed}")
            try:
                _train(spec, data_dir, model_dir, FLAGS.clean_stare_data_dir)
            except (FileNotFoundError, FileExistsError, ValueError,
                    FloatingPointError) as error:
                print(f"error in {spec.run} seed {spec.seed}: {error}", file=sys.stderr)
                return 1
            durations.append(time.time() - run_started)
            _keep_records(model_dir, reproduction.record_dir(
                FLAGS.output_dir, FLAGS.scale, spec.run, spec.seed))
            _report(FLAGS.output_dir, FLAGS.scale, seeds, command)
        prefix = reproduction.file_prefix(FLAGS.scale)
        _jitter_figure(data_dir,
                       [os.path.join(FLAGS.work_dir, FLAGS.scale, run, f"seed{seeds[0]}")
                        for run in ("standard", "standard-dwo")],
                       os.path.join(FLAGS.output_dir, f"{prefix}fig1b_jitter.png"))
    _report(FLAGS.output_dir, FLAGS.scale, seeds, command)
    return 0


if __name__ == "__main__":
    app.run(main)
