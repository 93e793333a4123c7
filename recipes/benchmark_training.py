r"""How close training runs to the speed of its own train step.

Usage (the tables of docs/training.md, "Training speed"; data from the bench preset):

    python recipes/benchmark_training.py --data_dir=data/bench/tfds \
        --widths=0.125,0.25 --schemes=standard,tat,tat_dwo \
        --output=runs/benchmark_training.json

    # Whole 12-epoch runs, the code of an earlier commit beside the current:
    git worktree add /tmp/before HEAD~1
    python recipes/benchmark_training.py --schemes= --compare_pipeline=false \
        --run_epochs_per_generation=4 --run_trees=/tmp/before,. \
        --output=runs/benchmark_runs.json

For each scheme and width, in one process, on the bench flagfile's settings
(64 bins, batch 32, the first 4,000 training frames):

- `step`: samples/s of the train step on batches already in memory (ten
  augmented batches, cycled; `fit` over them, timed from the end of the
  warm-up steps to the end of the last step): the ceiling, with XLA off and
  on (`--jit_modes`);
- `epoch`: samples/s of a whole epoch through the real input path of
  `train_tat.py` (crops decoded once into memory, batched augmentation,
  validation decoded once and evaluated at the end of the epoch), XLA as
  `train_tat.py` chooses it (`TrainConfig.uses_jit`), timed from the start
  of the epoch to the end of its evaluation, after one untimed epoch;
- `ratio`: epoch rate / step rate (same XLA setting).

Schemes: `standard` (hard ordinal loss), `tat` (Eq. 9 with one teacher and
feature mixup), `tat_dwo` (the same with DwO, T=1, 10% perturbed).

Then the bench flagfile's own epoch (TAT, one-eighth width), timed the way
training ran before the input cache (`--input_cache=none`: PNG decoding and
per-example augmentation every epoch, validation decoded every epoch, XLA
off) and the way it runs now, after one untimed epoch each; the one-time
decoding of the cached run is reported beside it.

With `--run_epochs_per_generation` above 0, whole runs too: for each
scheme of `--run_schemes` and each source tree of `--run_trees`, one
`experiment.train` run on the `--run_scale` settings of
`tat_keras.reproduction.SCALES` with `--run_generations` mini-generations of
`--run_epochs_per_generation` epochs (no warm-up epoch), in a fresh process
that imports `tat_keras` from that tree (a checkout of an earlier commit
times the code before a change, in the same sitting as the code after it).
Each run is split into its phases: setup (labels, decoding, building),
the epochs of `fit` (validation, checkpoints and the callbacks'
work included), the end of `fit` after the last epoch (until its datasets
are let go), and the final saving and evaluation. Its rates, over the epochs and over the whole call,
are divided by the in-memory step rate of the same scheme and settings,
measured in this process: `epochs_ratio` is the training path's share of
its own step's speed.

Prints a Markdown table and writes `--output` (JSON). Nothing here is
asserted: figures depend on the machine and its load (`load_average` is
recorded at the start and the end).
"""

import json
import os
import sys
import time

from absl import app
from absl import flags

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

SCHEMES = ("standard", "tat", "tat_dwo")

flags.DEFINE_string("data_dir", "data/bench/tfds", "Prepared gaze_capture data.")
flags.DEFINE_list("widths", ["0.125", "0.25"], "Width multipliers.")
flags.DEFINE_list("schemes", list(SCHEMES), f"Schemes, of {SCHEMES}.")
flags.DEFINE_list("jit_modes", ["false", "true"],
                  "XLA settings of the in-memory step measurement.")
flags.DEFINE_integer("batch_size", 32, "Batch size.")
flags.DEFINE_integer("bins", 64, "Ordinal bins per axis.")
flags.DEFINE_integer("max_train_examples", 4000, "Training frames per epoch.")
flags.DEFINE_integer("steps", 40, "Timed in-memory steps.")
flags.DEFINE_integer("warmup_steps", 5, "Untimed in-memory steps (tracing) first.")
flags.DEFINE_bool("compare_pipeline", True,
                  "Also time the bench epoch with the old uncached input path.")
flags.DEFINE_integer("intra_op_threads", 0, "TensorFlow intra-op threads (0: cores).")
flags.DEFINE_integer("inter_op_threads", 0, "TensorFlow inter-op threads (0: cores).")
flags.DEFINE_string("output", "runs/benchmark_training.json", "JSON results.")
flags.DEFINE_integer("run_epochs_per_generation", 0,
                     "Whole runs: epochs per mini-generation (0: no whole runs).")
flags.DEFINE_integer("run_generations", 3, "Whole runs: mini-generations.")
flags.DEFINE_string("run_scale", "bench_small",
                    "Whole runs: the settings of tat_keras.reproduction.SCALES.")
flags.DEFINE_list("run_schemes", ["standard", "tat"], "Whole runs: schemes.")
flags.DEFINE_list("run_trees", ["."],
                  "Whole runs: source trees to import tat_keras from, one run each.")
flags.DEFINE_string("run_child", None, "Internal: one whole run (a JSON spec).")
FLAGS = flags.FLAGS


def bench_config(data_dir, scheme, width, *, batch_size, bins, max_train_examples,
                 **changes):
    """The bench flagfile's `TrainConfig` for a scheme name of `SCHEMES`."""
    from tat_keras.training.config import TrainConfig

    if scheme not in SCHEMES:
        raise ValueError(f"scheme must be one of {SCHEMES}. Received: {scheme!r}")
    return TrainConfig(
        data_dir=data_dir, scheme="standard" if scheme == "standard" else "tat",
        dwo=scheme == "tat_dwo", width_multiplier=width, x_bins=bins, y_bins=bins,
        batch_size=batch_size, max_train_examples=max_train_examples,
        learning_rate=0.002, mini_generations=3, epochs_per_generation=2,
        warmup_epochs=1, **changes,
    ).resolved()


def build(config, train_labels, steps_per_epoch):
    """Student and compiled trainer; TAT gets one teacher, as in its epochs
    after the first mini-generation."""
    from tat_keras.training import builders

    config = builders.with_label_range(config, train_labels)
    student = builders.build_student(config)
    trainer = builders.build_trainer(config, student, steps_per_epoch)
    if config.scheme != "standard":
        trainer.set_teachers([student.get_weights()])
    return trainer


def step_rate(trainer, batches, steps, warmup_steps):
    """Samples/s of `fit` over `batches` held in memory, cycled: the time
    from the end of step `warmup_steps` to the end of the last step, inside
    one `fit` (its setup and the tracing steps left out)."""
    import tensorflow as tf

    stacked = tf.data.Dataset.from_tensor_slices(
        tf.nest.map_structure(lambda *t: tf.stack(t), *batches)).repeat()
    timer = _Timer()
    trainer.fit(stacked, steps_per_epoch=warmup_steps + steps, epochs=1,
                callbacks=[timer], verbose=0)
    seconds = timer.batch_ends[-1] - timer.batch_ends[warmup_steps - 1]
    batch = int(tf.shape(batches[0][1])[0])
    return steps * batch / seconds


class _Timer:
    """Keras callback factory: wall time of each epoch (evaluation included)
    and the moment each training batch ends."""

    def __new__(cls):
        import keras

        class Timer(keras.callbacks.Callback):
            def __init__(self):
                super().__init__()
                self.seconds = []
                self.batch_ends = []

            def on_epoch_begin(self, epoch, logs=None):
                self.started = time.perf_counter()

            def on_train_batch_end(self, batch, logs=None):
                self.batch_ends.append(time.perf_counter())

            def on_epoch_end(self, epoch, logs=None):
                self.seconds.append(time.perf_counter() - self.started)

        return Timer()


def epoch_seconds(trainer, inputs):
    """Seconds of the second of two epochs (the first traces), with validation."""
    timer = _Timer()
    trainer.fit(inputs.train, validation_data=inputs.validation,
                steps_per_epoch=inputs.steps_per_epoch, epochs=2, shuffle=False,
                callbacks=[timer], verbose=0)
    return timer.seconds[1]


def measure_scheme(config, train_labels, jit_modes, steps, warmup_steps):
    """Step rates (per XLA mode), epoch rate and their ratio for one config."""
    import dataclasses
    import math

    from tat_keras.training import builders

    count = len(train_labels)
    steps_per_epoch = math.ceil(count / config.batch_size)
    started = time.perf_counter()
    inputs = builders.build_inputs(config)
    decode_seconds = time.perf_counter() - started
    batches = list(inputs.train.take(10))
    jit_default = config.uses_jit(accelerator=builders.has_accelerator())
    row = {"step_samples_per_s": {}, "jit_default": jit_default}
    for jit in jit_modes:
        trainer = build(dataclasses.replace(config, jit_compile=jit), train_labels,
                        steps_per_epoch)
        row["step_samples_per_s"][f"jit_{str(jit).lower()}"] = round(
            step_rate(trainer, batches, steps, warmup_steps), 1)
    trainer = build(config, train_labels, steps_per_epoch)
    seconds = epoch_seconds(trainer, inputs)
    row["epoch_seconds"] = round(seconds, 2)
    row["epoch_samples_per_s"] = round(count / seconds, 1)
    ceiling = row["step_samples_per_s"].get(f"jit_{str(jit_default).lower()}")
    row["ratio"] = round(row["epoch_samples_per_s"] / ceiling, 3) if ceiling else None
    row["decode_seconds"] = round(decode_seconds, 1)
    return row


def compare_pipelines(base_config, train_labels):
    """The bench epoch before (uncached, XLA off) and after (cached, XLA auto)."""
    import dataclasses
    import math

    from tat_keras.training import builders

    steps_per_epoch = math.ceil(len(train_labels) / base_config.batch_size)
    result = {}
    for name, changes in (("before", {"input_cache": "none", "jit_compile": False}),
                          ("after", {"input_cache": "memory"})):
        config = dataclasses.replace(base_config, **changes)
        started = time.perf_counter()
        inputs = builders.build_inputs(config)
        setup = time.perf_counter() - started
        trainer = build(config, train_labels, steps_per_epoch)
        seconds = epoch_seconds(trainer, inputs)
        jit = config.uses_jit(accelerator=builders.has_accelerator())
        result[name] = {"input_cache": config.input_cache, "jit": jit,
                        "epoch_seconds": round(seconds, 2),
                        "setup_seconds": round(setup, 1)}
        print(f"bench epoch {name}: {seconds:.1f} s ({config.input_cache}, "
              f"XLA {'on' if jit else 'off'})", flush=True)
    result["speedup"] = round(result["before"]["epoch_seconds"]
                              / result["after"]["epoch_seconds"], 2)
    return result


def run_config(data_dir, scheme, scale, generations, epochs_per_generation):
    """The whole-run `TrainConfig`: a reproduction scale's settings,
    `generations` mini-generations of `epochs_per_generation` epochs."""
    from tat_keras import reproduction
    from tat_keras.training.config import TrainConfig

    if scale not in reproduction.SCALES:
        raise ValueError(f"run_scale must be one of {sorted(reproduction.SCALES)}. "
                         f"Received: {scale!r}")
    settings = {**reproduction.SCALES[scale], "mini_generations": generations,
                "epochs_per_generation": epochs_per_generation, "warmup_epochs": 0}
    return TrainConfig(data_dir=data_dir, scheme=scheme, seed=1, **settings)


def whole_run(spec):
    """Runs `experiment.train` once, in this process, and times its phases.

    `spec`: dict of `tree` (imported first), `data_dir`, `scheme`, `scale`,
    `generations`, `epochs_per_generation`. Returns a dict of seconds."""
    import statistics
    import tempfile

    sys.path.insert(0, os.path.abspath(spec["tree"]))
    started = time.perf_counter()
    import keras

    import tat_keras
    from tat_keras.training import builders
    from tat_keras.training import experiment

    marks = {"epoch_ends": []}

    class Marks(keras.callbacks.Callback):
        def on_train_begin(self, logs=None):
            marks["train_begin"] = time.perf_counter()

        def on_epoch_end(self, epoch, logs=None):
            marks["epoch_ends"].append(time.perf_counter())

    build_callbacks = builders.build_callbacks

    def last_callback(*args, **kwargs):
        callbacks, saver = build_callbacks(*args, **kwargs)
        return [*callbacks, Marks()], saver

    save_outputs = experiment._save_outputs

    def mark_saving(*args, **kwargs):
        # After `fit` has returned and let go of its datasets.
        marks["saving"] = time.perf_counter()
        return save_outputs(*args, **kwargs)

    builders.build_callbacks = last_callback
    experiment._save_outputs = mark_saving
    config = run_config(spec["data_dir"], spec["scheme"], spec["scale"],
                        spec["generations"], spec["epochs_per_generation"])
    imported = time.perf_counter()
    with tempfile.TemporaryDirectory() as model_dir:
        results = experiment.train(config, os.path.join(model_dir, "run"), verbose=0)
    ended = time.perf_counter()
    ends = marks["epoch_ends"]
    epochs = [b - a for a, b in zip([marks["train_begin"], *ends], ends)]
    source = os.path.dirname(os.path.dirname(os.path.abspath(tat_keras.__file__)))
    return {
        "source": source,
        "commit": _commit(source),
        "import_seconds": round(imported - started, 2),
        "setup_seconds": round(marks["train_begin"] - imported, 2),
        "first_epoch_seconds": round(epochs[0], 2),
        "median_epoch_seconds": round(statistics.median(epochs[1:]), 2),
        "epochs_seconds": round(ends[-1] - marks["train_begin"], 2),
        "fit_exit_seconds": round(marks["saving"] - ends[-1], 2),
        "final_seconds": round(ended - marks["saving"], 2),
        "train_call_seconds": round(ended - imported, 2),
        "epochs": len(epochs),
        "epoch_seconds": [round(e, 2) for e in epochs],
        "test_error_cm": results["test_error_cm"],
    }


def _commit(tree):
    """`git describe` of a source tree (`-dirty` when it has changes), or None."""
    import subprocess

    try:
        return subprocess.run(["git", "-C", tree, "describe", "--always", "--dirty"],
                              capture_output=True, text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return None


def measure_runs(data_dir, schemes, trees, scale, generations, epochs_per_generation):
    """Step rates here, then one whole run per scheme and tree, each in a
    child process (`--run_child`); rates and ratios per run."""
    import math
    import subprocess

    from tat_keras.training import builders

    rows = []
    for scheme in schemes:
        config = run_config(data_dir, scheme, scale, generations,
                            epochs_per_generation).resolved()
        train_labels = builders.load_train_labels(config)
        inputs = builders.build_inputs(config, validation=False)
        batches = list(inputs.train.take(10))
        steps_per_epoch = math.ceil(len(train_labels) / config.batch_size)
        trainer = build(config, train_labels, steps_per_epoch)
        ceiling = step_rate(trainer, batches, FLAGS.steps, FLAGS.warmup_steps)
        print(f"{scheme}: in-memory step {ceiling:.1f} samples/s", flush=True)
        for tree in trees:
            spec = {"tree": tree, "data_dir": data_dir, "scheme": scheme, "scale": scale,
                    "generations": generations,
                    "epochs_per_generation": epochs_per_generation}
            child = subprocess.run(
                [sys.executable, os.path.abspath(__file__),
                 f"--run_child={json.dumps(spec)}"],
                capture_output=True, text=True, check=False)
            if child.returncode != 0:
                raise RuntimeError(f"The run from {tree} failed:\n{child.stderr[-3000:]}")
            row = json.loads(child.stdout.strip().splitlines()[-1])
            samples = row["epochs"] * len(train_labels)
            row.update(scheme=scheme, tree=tree, train_examples=len(train_labels),
                       step_samples_per_s=round(ceiling, 1),
                       epochs_samples_per_s=round(samples / row["epochs_seconds"], 1),
                       run_samples_per_s=round(samples / row["train_call_seconds"], 1))
            row["epochs_ratio"] = round(row["epochs_samples_per_s"] / ceiling, 3)
            row["run_ratio"] = round(row["run_samples_per_s"] / ceiling, 3)
            print(json.dumps(row), flush=True)
            rows.append(row)
    return rows


def runs_markdown(rows):
    lines = ["| scheme | source | setup | first epoch | median epoch | epochs | end of "
             "fit | final evaluation | whole call | epochs / step | whole / step |",
             "|---|---|---|---|---|---|---|---|---|---|---|"]
    for row in rows:
        lines.append(
            f"| {row['scheme']} | {row['tree']} | {row['setup_seconds']} | "
            f"{row['first_epoch_seconds']} | {row['median_epoch_seconds']} | "
            f"{row['epochs_seconds']} | {row['fit_exit_seconds']} | "
            f"{row['final_seconds']} | {row['train_call_seconds']} | "
            f"{row['epochs_ratio']} | {row['run_ratio']} |")
    return "\n".join(lines) + "\n\nSeconds; ratios of samples/s to the in-memory step's.\n"


def markdown(rows, comparison):
    lines = ["| scheme | width | step, XLA off | step, XLA on | epoch (XLA "
             "default) | epoch / step |", "|---|---|---|---|---|---|"]
    for row in rows:
        steps = row["step_samples_per_s"]
        lines.append(
            f"| {row['scheme']} | {row['width']} | {steps.get('jit_false', '-')} | "
            f"{steps.get('jit_true', '-')} | {row['epoch_samples_per_s']} "
            f"(XLA {'on' if row['jit_default'] else 'off'}) | {row['ratio']} |")
    text = "\n".join(lines) + "\n\nSamples/s.\n"
    if comparison:
        before, after = comparison["before"], comparison["after"]
        text += (f"\nBench epoch (TAT, one-eighth width): {before['epoch_seconds']} s "
                 f"uncached, XLA off; {after['epoch_seconds']} s cached in memory "
                 f"(one-time decoding {after['setup_seconds']} s): "
                 f"{comparison['speedup']}x.\n")
    return text


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"Unexpected arguments: {argv[1:]}")
    if FLAGS.run_child:
        print(json.dumps(whole_run(json.loads(FLAGS.run_child))), flush=True)
        return 0
    try:
        widths = [float(w) for w in FLAGS.widths]
        jit_modes = [{"true": True, "false": False}[m.lower()] for m in FLAGS.jit_modes]
    except (ValueError, KeyError):
        raise app.UsageError("--widths takes numbers, --jit_modes true/false. "
                             f"Received: {FLAGS.widths}, {FLAGS.jit_modes}") from None
    unknown = set(FLAGS.schemes) - set(SCHEMES)
    if unknown:
        raise app.UsageError(f"--schemes must be among {SCHEMES}. Received: {sorted(unknown)}")
    from tat_keras.training.config import SCHEMES as RUN_SCHEMES

    unknown = set(FLAGS.run_schemes) - set(RUN_SCHEMES)
    if unknown:
        raise app.UsageError(f"--run_schemes must be among {RUN_SCHEMES}. "
                             f"Received: {sorted(unknown)}")
    from tat_keras import reproduction

    if FLAGS.run_scale not in reproduction.SCALES:
        raise app.UsageError(f"--run_scale must be one of {sorted(reproduction.SCALES)}. "
                             f"Received: {FLAGS.run_scale!r}")
    missing = [tree for tree in FLAGS.run_trees
               if not os.path.isdir(os.path.join(tree, "tat_keras"))]
    if missing:
        raise app.UsageError(f"--run_trees must hold a tat_keras package. Received: {missing}")
    import tensorflow as tf

    tf.config.threading.set_intra_op_parallelism_threads(FLAGS.intra_op_threads)
    tf.config.threading.set_inter_op_parallelism_threads(FLAGS.inter_op_threads)
    from tat_keras.training import builders

    settings = dict(batch_size=FLAGS.batch_size, bins=FLAGS.bins,
                    max_train_examples=FLAGS.max_train_examples)
    try:
        train_labels = builders.load_train_labels(
            bench_config(FLAGS.data_dir, "standard", widths[0], **settings))
    except FileNotFoundError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    payload = {"command": " ".join(sys.argv), "load_average_start": os.getloadavg(),
               "cpu_count": os.cpu_count(), "train_examples": len(train_labels),
               "rows": []}
    started = time.time()
    for width in widths:
        for scheme in FLAGS.schemes:
            config = bench_config(FLAGS.data_dir, scheme, width, **settings)
            row = {"scheme": scheme, "width": width,
                   **measure_scheme(config, train_labels, jit_modes, FLAGS.steps,
                                    FLAGS.warmup_steps)}
            payload["rows"].append(row)
            print(json.dumps(row), flush=True)
    comparison = None
    if FLAGS.compare_pipeline:
        comparison = compare_pipelines(
            bench_config(FLAGS.data_dir, "tat", 0.125, **settings), train_labels)
        payload["bench_epoch"] = comparison
    table = markdown(payload["rows"], comparison) if payload["rows"] or comparison else ""
    if FLAGS.run_epochs_per_generation > 0:
        payload["runs"] = measure_runs(
            FLAGS.data_dir, FLAGS.run_schemes, FLAGS.run_trees, FLAGS.run_scale,
            FLAGS.run_generations, FLAGS.run_epochs_per_generation)
        table += ("\n" if table else "") + runs_markdown(payload["runs"])
    payload["seconds"] = round(time.time() - started, 1)
    payload["load_average_end"] = os.getloadavg()
    print(table)
    os.makedirs(os.path.dirname(os.path.abspath(FLAGS.output)), exist_ok=True)
    with open(FLAGS.output, "w") as f:
        json.dump(payload, f, indent=2)
    with open(os.path.splitext(FLAGS.output)[0] + ".md", "w") as f:
        f.write(table)
    print(f"Results: {FLAGS.output}")
    return 0


if __name__ == "__main__":
    app.run(main)
