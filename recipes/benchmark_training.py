r"""How close training runs to the speed of its own train step.

Usage (the table of docs/training.md, "Training speed"; data from the bench preset):

    python recipes/benchmark_training.py --data_dir=data/bench/tfds \
        --widths=0.125,0.25 --schemes=standard,tat,tat_dwo \
        --output=runs/benchmark_training.json

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
    try:
        widths = [float(w) for w in FLAGS.widths]
        jit_modes = [{"true": True, "false": False}[m.lower()] for m in FLAGS.jit_modes]
    except (ValueError, KeyError):
        raise app.UsageError("--widths takes numbers, --jit_modes true/false. "
                             f"Received: {FLAGS.widths}, {FLAGS.jit_modes}") from None
    unknown = set(FLAGS.schemes) - set(SCHEMES)
    if unknown:
        raise app.UsageError(f"--schemes must be among {SCHEMES}. Received: {sorted(unknown)}")
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
    payload["seconds"] = round(time.time() - started, 1)
    payload["load_average_end"] = os.getloadavg()
    table = markdown(payload["rows"], comparison)
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
