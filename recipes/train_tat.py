r"""Trains the gaze network with the standard, SD or TAT scheme, with or without DwO.

Usage (a quick run on the quick synthetic set; the README's main job is
`make demo`, recipes/configs/synthetic_demo.flags):

    python recipes/train_tat.py --flagfile=recipes/configs/synthetic_quick.flags \
        --model_dir=runs/quick

    # The paper's whole scheme, TAT + DwO, on the same set:
    python recipes/train_tat.py --flagfile=recipes/configs/synthetic_quick_tat.flags \
        --model_dir=runs/quick_tat

    # The paper's settings on GazeCapture (needs an accelerator):
    python recipes/train_tat.py --flagfile=recipes/configs/gazecapture_tat.flags \
        --data_dir=data/gazecapture/tfds --model_dir=runs/gazecapture_tat

On several devices or machines (BUILD_NOTES.md, "Several GPUs or machines"):

    # All local GPUs (or 2 logical CPU devices with --cpu_replicas=2):
    python recipes/train_tat.py --flagfile=... --model_dir=runs/x --strategy=mirrored

    # One process per machine, the same command on each, TF_CONFIG set:
    TF_CONFIG='{"cluster": {"worker": ["host0:2222", "host1:2222"]},
                "task": {"type": "worker", "index": 0}}' \
        python recipes/train_tat.py --flagfile=... --model_dir=/shared/runs/x \
        --strategy=multi_worker

--batch_size is the global batch, split over the replicas; the learning
rate is not scaled (see `tat_keras/training/distributed.py`).

On Keras's JAX backend (one device; BUILD_NOTES.md, "Training on JAX"),
from the prepared set or from arrays exported by recipes/export_arrays.py
(no TensorFlow needed then):

    python recipes/train_tat.py --flagfile=recipes/configs/synthetic_quick.flags \
        --model_dir=runs/quick_jax --backend=jax

Rerunning the same command on an interrupted run resumes it from its last
checkpoint; a finished run is refused unless --overwrite. Unset options take
the scheme's defaults: `standard` (hard ordinal loss only), `sd` (snapshot
distillation: last teacher, restarting schedule, no pruning) and `tat`
(random teacher, cosine similarity pruning, aligned orthogonal
re-initialization, feature mixup). `--head=regression` trains the L2
baseline on the same trunk (standard scheme only). `--deterministic` makes a
rerun repeat to the last digit. Every setting is checked before anything
runs; a run stopped before its first checkpoint restarts with the same
command.

Each setting flag is a field of `TrainConfig` (tat_keras/training/config.py),
with its default and help text there; `--helpfull` lists them. The run's
`config.json` records the settings it used (`TrainConfig.resolved`), its
`flags.json` the flags as given.
"""

import dataclasses
import json
import os
import sys
import typing

from absl import app
from absl import flags

from tat_keras.training import config as config_lib
from tat_keras.training import distributed

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


class _OrUnset(flags.ArgumentParser):
    """Parses one word as None (`--dwo_center_bins=all`), the rest as `parser` does."""

    def __init__(self, parser, word):
        self.parser = parser
        self.word = word
        self.syntactic_help = f"{parser.syntactic_help or 'true or false'}, or {word!r}"

    def parse(self, argument):
        if isinstance(argument, str) and argument.lower() == self.word:
            return None
        try:
            return self.parser.parse(argument)
        except ValueError:
            raise ValueError(f"expected {self.word!r} or a value of type "
                             f"{self.parser.flag_type()}. Received: {argument!r}") from None

    def flag_type(self):
        return f"{self.parser.flag_type()} or {self.word!r}"


def _value_type(field):
    """`int` for a field typed `int` or `int | None`."""
    return next((t for t in typing.get_args(field.type) if t is not type(None)),
                field.type)


_PARSERS = {bool: flags.BooleanParser, int: flags.IntegerParser,
            float: flags.FloatParser, str: flags.ArgumentParser}


def define_flags(flag_values=flags.FLAGS):
    """Defines one flag per `TrainConfig` field, then the run's own flags.

    Each setting flag has the field's name, default and help text
    (`field.metadata`): `--jit_compile=auto` and `--dwo_center_bins=all`
    give None, `choices` make an enum flag.

    Args:
        flag_values: `flags.FlagValues` to define them in.

    Example:

    >>> flag_values = flags.FlagValues()
    >>> define_flags(flag_values)
    >>> flag_values(["train_tat.py", "--model_dir=runs/x", "--dwo_center_bins=all"])
    ['train_tat.py']
    >>> config_from_flags(flag_values).dwo_center_bins is None
    True
    """
    for field in dataclasses.fields(config_lib.TrainConfig):
        name, default, kind = field.name, field.default, _value_type(field)
        help_text, choices, unset = (field.metadata[key] for key in ("help", "choices", "unset"))
        if unset:
            flags.DEFINE(_OrUnset(_PARSERS[kind](), unset), name,
                         unset if default is None else default, help_text,
                         flag_values=flag_values)
        elif choices:
            flags.DEFINE_enum(name, default, list(choices), help_text,
                              flag_values=flag_values)
        elif kind is bool:
            flags.DEFINE_bool(name, default, help_text, flag_values=flag_values)
        else:
            flags.DEFINE(_PARSERS[kind](), name, default, help_text,
                         flag_values=flag_values)
    flags.DEFINE_string("model_dir", None, "Folder of the run's outputs.",
                        flag_values=flag_values)
    flags.DEFINE_integer("intra_op_threads", 0,
                         "TensorFlow threads inside one op (0: one per core).",
                         flag_values=flag_values)
    flags.DEFINE_integer("inter_op_threads", 0,
                         "TensorFlow ops run side by side (0: one per core).",
                         flag_values=flag_values)
    flags.DEFINE_enum("strategy", "default", list(distributed.STRATEGIES),
                      "default: one device; mirrored: every local GPU (or the "
                      "--cpu_replicas logical CPUs); multi_worker: one process per "
                      "machine, the cluster from TF_CONFIG. --batch_size is global.",
                      flag_values=flag_values)
    flags.DEFINE_integer("cpu_replicas", None, "Split the CPU into this many logical "
                         "devices (for --strategy=mirrored on a machine without GPUs).",
                         flag_values=flag_values)
    flags.DEFINE_bool("overwrite", False,
                      "Delete what model_dir holds and start over.",
                      flag_values=flag_values)
    flags.mark_flag_as_required("model_dir", flag_values=flag_values)


define_flags()
FLAGS = flags.FLAGS


def config_from_flags(flag_values):
    """The `TrainConfig` of parsed flags (the file cache in model_dir by default)."""
    config = config_lib.TrainConfig(**{
        field.name: flag_values[field.name].value
        for field in dataclasses.fields(config_lib.TrainConfig)})
    if config.input_cache == "file" and config.cache_dir is None:
        config = dataclasses.replace(
            config, cache_dir=os.path.join(flag_values.model_dir, "input_cache"))
    return config


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"Unexpected arguments: {argv[1:]}")
    try:
        # Every setting is checked before anything is read or written.
        config = config_from_flags(FLAGS).resolved()
        # Keras picks its backend when first imported, below.
        if config.backend:
            os.environ["KERAS_BACKEND"] = config.backend
        if os.environ.get("KERAS_BACKEND", "tensorflow") == "tensorflow":
            import tensorflow as tf

            # Before any op runs; 0 lets TensorFlow use one thread per core
            # (BUILD_NOTES.md, "Training throughput").
            tf.config.threading.set_intra_op_parallelism_threads(FLAGS.intra_op_threads)
            tf.config.threading.set_inter_op_parallelism_threads(FLAGS.inter_op_threads)
        if FLAGS.cpu_replicas:
            distributed.split_cpu(FLAGS.cpu_replicas)
        strategy = distributed.make_strategy(FLAGS.strategy)
        from tat_keras.training import experiment

        results = experiment.train(config, FLAGS.model_dir, overwrite=FLAGS.overwrite,
                                   strategy=strategy)
    except (FileNotFoundError, FileExistsError, ValueError, FloatingPointError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    run_dir = distributed.Placement.of(strategy).output_dir(FLAGS.model_dir)
    with open(os.path.join(run_dir, "flags.json"), "w") as f:
        json.dump(FLAGS.flag_values_dict(), f, indent=2, default=str)
    print(json.dumps(results, indent=2))
    print(f"Model:   {os.path.join(run_dir, 'model.keras')}")
    print(f"Metrics: {os.path.join(run_dir, 'metrics.json')}")
    print(f"Logs:    tensorboard --logdir {os.path.join(run_dir, 'logs')}")
    return 0


if __name__ == "__main__":
    app.run(main)
