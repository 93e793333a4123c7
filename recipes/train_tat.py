r"""Trains the gaze network with the standard, SD or TAT scheme, with or without DwO.

Usage (the README's main job trains on the quick synthetic set):

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
"""

import dataclasses
import json
import os
import sys

from absl import app
from absl import flags

from tat_keras.training import config as config_lib
from tat_keras.training import distributed

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

_DEFAULTS = config_lib.TrainConfig()

flags.DEFINE_string("model_dir", None, "Folder of the run's outputs.")
flags.DEFINE_string("data_dir", _DEFAULTS.data_dir,
                    "TFDS data directory holding the prepared gaze_capture set.")
flags.DEFINE_integer("image_size", _DEFAULTS.image_size, "Crop size of the data.")
flags.DEFINE_enum("scheme", _DEFAULTS.scheme, list(config_lib.SCHEMES),
                  "Training scheme.")
flags.DEFINE_float("width_multiplier", _DEFAULTS.width_multiplier,
                   "Scales the channels of every convolution.")
flags.DEFINE_bool("share_eye_weights", _DEFAULTS.share_eye_weights,
                  "Both eyes go through one branch.")
flags.DEFINE_float("batch_norm_momentum", _DEFAULTS.batch_norm_momentum,
                   "Momentum of the batch-norm moving statistics.")
flags.DEFINE_integer("x_bins", _DEFAULTS.x_bins, "Ordinal bins, horizontal.")
flags.DEFINE_integer("y_bins", _DEFAULTS.y_bins, "Ordinal bins, vertical.")
for _name in ("x_low", "x_high", "y_low", "y_high"):
    flags.DEFINE_float(_name, None, "Label range edge in cm; unset: from the "
                       "training split with a margin.")
flags.DEFINE_float("label_margin", _DEFAULTS.label_margin,
                   "Margin added to the data's label range, as a share of it.")
flags.DEFINE_integer("batch_size", _DEFAULTS.batch_size, "Training batch size.")
flags.DEFINE_float("learning_rate", _DEFAULTS.learning_rate, "Peak learning rate.")
flags.DEFINE_float("weight_decay", _DEFAULTS.weight_decay, "AdamW weight decay.")
flags.DEFINE_integer("mini_generations", _DEFAULTS.mini_generations,
                     "Number of mini-generations K.")
flags.DEFINE_integer("epochs_per_generation", _DEFAULTS.epochs_per_generation,
                     "Epochs per mini-generation L.")
flags.DEFINE_integer("warmup_epochs", _DEFAULTS.warmup_epochs,
                     "Warm-up epochs added to the first mini-generation.")
flags.DEFINE_float("lambda_hard", _DEFAULTS.lambda_hard, "Weight of the hard loss.")
flags.DEFINE_float("lambda_mix", _DEFAULTS.lambda_mix, "Weight of the mixup loss.")
flags.DEFINE_float("lambda_teacher", _DEFAULTS.lambda_teacher,
                   "Weight of the teacher loss.")
flags.DEFINE_enum("teacher", None, list(config_lib.TEACHER_POLICIES),
                  "Teacher policy (Table 2); unset: the scheme's.")
flags.DEFINE_float("teacher_threshold", _DEFAULTS.teacher_threshold,
                   "Drop teachers above this times the best validation error.")
flags.DEFINE_enum("pruning", None, list(config_lib.PRUNING_METHODS),
                  "Pruning method (Table 3); unset: the scheme's.")
flags.DEFINE_float("prune_ratio", _DEFAULTS.prune_ratio, "Pruning ratio p.")
flags.DEFINE_float("max_layer_prune_ratio", _DEFAULTS.max_layer_prune_ratio,
                   "Per-layer pruning cap p_max.")
flags.DEFINE_enum("reinit", _DEFAULTS.reinit, list(config_lib.REINIT_METHODS),
                  "Re-initialization method (Table 4).")
flags.DEFINE_enum("rebirth_moments", _DEFAULTS.rebirth_moments,
                  list(config_lib.REBIRTH_MOMENTS),
                  "Adam moments of re-born weights: zeroed (zero) or restarted "
                  "with their own bias correction, as for new weights (fresh).")
flags.DEFINE_bool("mixup", None, "Feature mixup; unset: the scheme's.")
flags.DEFINE_bool("dwo", _DEFAULTS.dwo, "DwO adversarial training.")
flags.DEFINE_float("dwo_epsilon", _DEFAULTS.dwo_epsilon, "PGD epsilon (pixels).")
flags.DEFINE_float("dwo_step", _DEFAULTS.dwo_step, "PGD step gamma (pixels).")
flags.DEFINE_integer("dwo_steps", _DEFAULTS.dwo_steps, "PGD iterations T.")
flags.DEFINE_string("dwo_center_bins", str(_DEFAULTS.dwo_center_bins),
                    "Center bins of the DwO loss (even number), or 'all'.")
flags.DEFINE_float("dwo_original_fraction", _DEFAULTS.dwo_original_fraction,
                   "Share of original samples per batch (Org.%).")
flags.DEFINE_bool("augment", _DEFAULTS.augment, "Photometric augmentation.")
flags.DEFINE_integer("max_train_examples", None, "Use only this many training examples.")
flags.DEFINE_integer("msd_min_length", _DEFAULTS.msd_min_length,
                     "Shortest stare sequence counted by MSD.")
flags.DEFINE_integer("seed", _DEFAULTS.seed, "Random seed.")
flags.DEFINE_enum("head", _DEFAULTS.head, list(config_lib.HEADS),
                  "ordinal: the paper's bins; regression: the L2 baseline on the "
                  "same trunk (standard scheme only).")
flags.DEFINE_bool("deterministic", _DEFAULTS.deterministic,
                  "Deterministic kernels and data order: a rerun repeats to the "
                  "last digit (slower).")
flags.DEFINE_enum("jit_compile", "auto", ["auto", "true", "false"],
                  "XLA compilation of the train step; auto: on with a GPU, off "
                  "on CPU (where it measured slower; BUILD_NOTES.md).")
flags.DEFINE_enum("input_cache", _DEFAULTS.input_cache, list(config_lib.INPUT_CACHES),
                  "Decoded crops: memory (decode once, keep in RAM), file (decode "
                  "once into --cache_dir), none (decode every epoch).")
flags.DEFINE_string("cache_dir", None, "Folder of the file cache; default: "
                    "model_dir/input_cache.")
flags.DEFINE_integer("intra_op_threads", 0,
                     "TensorFlow threads inside one op (0: one per core).")
flags.DEFINE_integer("inter_op_threads", 0,
                     "TensorFlow ops run side by side (0: one per core).")
flags.DEFINE_enum("strategy", "default", list(distributed.STRATEGIES),
                  "default: one device; mirrored: every local GPU (or the "
                  "--cpu_replicas logical CPUs); multi_worker: one process per "
                  "machine, the cluster from TF_CONFIG. --batch_size is global.")
flags.DEFINE_integer("cpu_replicas", None, "Split the CPU into this many logical "
                     "devices (for --strategy=mirrored on a machine without GPUs).")
flags.DEFINE_bool("overwrite", False, "Delete what model_dir holds and start over.")
flags.mark_flag_as_required("model_dir")

FLAGS = flags.FLAGS


def _center_bins(value):
    if value.lower() == "all":
        return None
    try:
        return int(value)
    except ValueError:
        raise app.UsageError(
            f"--dwo_center_bins must be an even integer or 'all'. Received: {value!r}"
        ) from None


def config_from_flags(flag_values):
    """The `TrainConfig` of parsed flags."""
    fields = {f.name for f in dataclasses.fields(config_lib.TrainConfig)}
    values = {name: flag_values[name].value for name in fields if name in flag_values}
    values["dwo_center_bins"] = _center_bins(flag_values.dwo_center_bins)
    values["jit_compile"] = {"auto": None, "true": True, "false": False}[
        flag_values.jit_compile]
    if values.get("cache_dir") is None and values["input_cache"] == "file":
        values["cache_dir"] = os.path.join(flag_values.model_dir, "input_cache")
    return config_lib.TrainConfig(**values)


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"Unexpected arguments: {argv[1:]}")
    try:
        # Every setting is checked before anything is read or written.
        config = config_from_flags(FLAGS).resolved()
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
