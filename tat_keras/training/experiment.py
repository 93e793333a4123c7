"""One training run, from a prepared dataset to a saved model and metrics.

`train(config, model_dir)` is what `recipes/train_tat.py` calls; it wires
the pieces that `builders` makes from the validated `TrainConfig` (data,
model, trainer, schedule, callbacks), resumes from the last checkpoint of an
interrupted run, and writes into `model_dir`:

- `model.keras`: the final `GazeNet` (label range included), or the
  `GazeRegressor` of the L2 baseline (`head="regression"`);
- `config.json`: the settings the run used (`TrainConfig.resolved` for
  this process's placement, label range included): every builder reads
  the same config;
- `metrics.json`: errors in cm on train, validation and test, per device
  type, MSD on stare sequences, epochs and training time;
- `history.json`: per-epoch losses and errors;
- `generations.json`: per mini-generation teachers, errors and rebirths;
- `curves.png`: train and validation error per epoch, mini-generations marked
  (the paper's Fig. 1a);
- `checkpoints/` and `logs/` (TensorBoard).

Under a `tf.distribute` strategy (`distributed`), the chief writes these;
another worker `i` writes its model, record, history and logs (no
checkpoints, no evaluation) under `model_dir/workers/<i>/`.
"""

import dataclasses
import json
import os
import shutil
import time

import numpy as np

from tat_keras import evaluation
from tat_keras import plots
from tat_keras.training import builders
from tat_keras.training import checkpoint
from tat_keras.training import distributed
from tat_keras.training import generations
from tat_keras.training.config import REINIT_METHODS  # noqa: F401  Public names.
from tat_keras.training.config import SCHEME_DEFAULTS  # noqa: F401
from tat_keras.training.config import SCHEMES  # noqa: F401
from tat_keras.training.config import TrainConfig  # noqa: F401
from tat_keras.training.config import label_range  # noqa: F401

# Settings that change how fast a run goes, not what it is: a run may be
# resumed with other values.
SPEED_SETTINGS = ("data_dir", "jit_compile", "input_cache", "cache_dir")
# What a run writes before its first checkpoint.
_RUN_OUTPUTS = ("config.json", "flags.json", "logs", "checkpoints")


def _prepare_model_dir(model_dir, config_json, overwrite, keep=(), placement=None):
    """Returns the checkpoint state to resume from, or None for a new run.

    A folder holding only what a run writes before its first checkpoint
    (its configuration, logs) is a new run: a run stopped in its first
    epoch restarts with the same command. Entries named in `keep` (the
    other workers' folder) are neither removed nor in the way. An
    unfinished run resumes when its `config.json`, resolved for
    `placement` as `config_json` was, holds the same settings.
    """
    if overwrite and os.path.exists(model_dir):
        for name in set(os.listdir(model_dir)) - set(keep):
            path = os.path.join(model_dir, name)
            shutil.rmtree(path) if os.path.isdir(path) else os.remove(path)
    if not os.path.isdir(model_dir) or not os.listdir(model_dir):
        os.makedirs(model_dir, exist_ok=True)
        return None
    if os.path.exists(os.path.join(model_dir, "metrics.json")):
        raise FileExistsError(
            f"{model_dir} holds a finished run (metrics.json). Evaluate it with "
            "recipes/evaluate.py, or pass --overwrite to train again from scratch."
        )
    state = checkpoint.latest(os.path.join(model_dir, "checkpoints"))
    config_path = os.path.join(model_dir, "config.json")
    if state is None:
        others = sorted(set(os.listdir(model_dir)) - set(_RUN_OUTPUTS) - set(keep))
        if others:
            raise FileExistsError(
                f"{model_dir} is not empty ({', '.join(others[:5])}) and holds no "
                "checkpoint to resume. Choose another --model_dir or pass --overwrite."
            )
        # Stopped before its first checkpoint: nothing to resume, nothing lost.
        for name in ("logs", "checkpoints"):
            shutil.rmtree(os.path.join(model_dir, name), ignore_errors=True)
        return None
    if not os.path.exists(config_path):
        raise FileExistsError(
            f"{model_dir} holds a checkpoint but no config.json. "
            "Choose another --model_dir or pass --overwrite."
        )
    with open(config_path) as f:
        saved = _resolved_json(json.load(f), placement)
    changed = {k for k in config_json if k not in SPEED_SETTINGS
               and saved[k] != config_json[k]}
    if changed:
        changes = ", ".join(f"{k}: {saved[k]!r} -> {config_json[k]!r}"
                            for k in sorted(changed))
        raise ValueError(
            f"{model_dir} holds an unfinished run with other settings ({changes}). "
            "Rerun with the same settings to resume it, or pass --overwrite."
        )
    return state


def _resolved_json(saved, placement):
    """A saved `config.json` resolved as a new run's is: the fields it lacks
    take their defaults, and settings that an earlier version recorded
    before resolving them (the weights of a scheme) compare as they ran."""
    names = {field.name for field in dataclasses.fields(TrainConfig)}
    config = TrainConfig(**{k: v for k, v in saved.items() if k in names})
    try:
        config = config.resolved(placement)
    except ValueError:
        pass  # Compared as saved: the differences are named.
    return dataclasses.asdict(config)


def train(config, model_dir, *, overwrite=False, verbose="auto", strategy=None):
    """Trains, evaluates and saves one run; resumes an interrupted one.

    Every setting is validated and resolved for this process's placement
    (`TrainConfig.resolved`) before anything is read or written; the
    resolved settings are what every piece is built from and what
    `config.json` records.

    Args:
        config: `TrainConfig`.
        model_dir: str. Output folder (see the module docstring).
        overwrite: bool. Delete what `model_dir` holds first.
        verbose: Keras `fit` verbosity ("auto": a progress bar).
        strategy: `tf.distribute.Strategy` or None (one device; the only
            choice on Keras's JAX backend); see `distributed.make_strategy`.
            Call `train` on every worker.

    Returns:
        dict. The metrics also written to `metrics.json` (a worker other
        than the chief: its epochs and training time only).
    """
    strategy = strategy or distributed.make_strategy("default")
    placement = distributed.Placement.of(strategy)
    config = config.resolved(placement)
    builders.check_backend(config)
    train_labels = builders.load_train_labels(config)
    config = builders.with_label_range(config, train_labels)
    config_json = dataclasses.asdict(config)
    run_dir = placement.output_dir(model_dir)
    state = _prepare_model_dir(run_dir, config_json, overwrite,
                               keep=("workers",) if placement.multi_worker else (),
                               placement=placement)
    if placement.multi_worker:
        # Every worker resumes from the chief's checkpoint: one epoch, one
        # teacher list for the whole cluster.
        state = checkpoint.latest(os.path.join(model_dir, "checkpoints"))
    with open(os.path.join(run_dir, "config.json"), "w") as f:
        json.dump(config_json, f, indent=2)

    builders.set_determinism(config)
    outside = builders.count_outside(config, train_labels)
    if outside:
        print(f"{outside} training label values lie outside the label range "
              "and are clipped into it.")
    steps_per_epoch = distributed.steps_per_epoch(len(train_labels), config.batch_size,
                                                  placement)
    with distributed.scope(strategy):
        student = builders.build_student(config)
        trainer = builders.build_trainer(config, student, steps_per_epoch)
        if placement.num_replicas > 1:
            distributed.synchronize_batch_norm(student)
    bank = builders.build_teacher_bank(config)
    record, history, initial_epoch, seconds_before = (
        generations.GenerationRecord(), [], 0, 0.0)
    if state is not None:
        with distributed.scope(strategy):
            checkpoint.restore(state, os.path.join(model_dir, "checkpoints"), trainer,
                               bank)
        record = generations.GenerationRecord.from_json(state["record"])
        history = state["history"]
        initial_epoch = state["epoch"] + 1
        seconds_before = float(state.get("train_seconds", 0.0))
        print(f"Resuming {model_dir} after epoch {initial_epoch} "
              f"({len(bank)} teachers).")
    epochs = config.generation_epochs()
    inputs = builders.build_inputs(config, first_epoch=initial_epoch)
    callbacks, saver = builders.build_callbacks(
        config, run_dir, trainer, bank, record, history,
        seconds_before=seconds_before,
        generation_error_fn=lambda model: split_error(
            model, config.data_dir, "test", image_size=config.image_size,
            decoded=inputs.decoded.get("test")))
    if not placement.is_chief:
        saver.directory = None  # The chief's checkpoints are the cluster's.
    started = time.time()
    if initial_epoch < sum(epochs):
        if placement.num_replicas > 1:
            distributed.fit_in_loop(
                trainer, inputs.train, inputs.validation, batch_size=config.batch_size,
                epochs=sum(epochs), initial_epoch=initial_epoch,
                steps_per_epoch=steps_per_epoch, callbacks=callbacks,
                verbose=0 if verbose == 0 else 1)
        else:
            trainer.fit(inputs.train, validation_data=inputs.validation,
                        steps_per_epoch=inputs.steps_per_epoch, shuffle=False,
                        epochs=sum(epochs), initial_epoch=initial_epoch,
                        callbacks=[*inputs.callbacks, *callbacks], verbose=verbose)
    train_seconds = seconds_before + time.time() - started
    if saver.stopped_on_nan:
        raise FloatingPointError(
            "Training stopped: the loss became NaN or infinite. The last good "
            f"checkpoint is kept in {os.path.join(model_dir, 'checkpoints')}; lower "
            "--learning_rate and rerun the same command to resume from it."
        )
    _save_outputs(config, run_dir, student, record, history)
    if not placement.is_chief:
        results = {"worker": placement.task_id, "epochs": sum(epochs),
                   "train_seconds": round(train_seconds, 1)}
        with open(os.path.join(run_dir, "metrics.json"), "w") as f:
            json.dump(results, f, indent=2)
        return results
    results = evaluate_model(student, config.data_dir, image_size=config.image_size,
                             msd_min_length=config.msd_min_length,
                             max_train_examples=config.max_train_examples,
                             decoded=inputs.decoded)
    results.update({
        "scheme": config.scheme,
        "head": config.head,
        "dwo": config.dwo,
        "seed": config.seed,
        "backend": config.backend,
        "epochs": sum(epochs),
        "train_seconds": round(train_seconds, 1),
    })
    with open(os.path.join(model_dir, "metrics.json"), "w") as f:
        json.dump(results, f, indent=2)
    return results


def _save_outputs(config, model_dir, student, record, history):
    """`model.keras`, `generations.json`, `history.json` and `curves.png`."""
    student.save(os.path.join(model_dir, "model.keras"))
    record.save(os.path.join(model_dir, "generations.json"))
    with open(os.path.join(model_dir, "history.json"), "w") as f:
        json.dump(history, f, indent=2)
    if not history:
        return
    # The loss panel compares like with like: the hard loss.
    plots.plot_curves(
        {"error_cm": [h["error_cm"] for h in history],
         "val_error_cm": [h.get("val_error_cm") for h in history],
         "loss": [h["hard_loss"] for h in history],
         "val_loss": [h.get("val_hard_loss") for h in history]},
        os.path.join(model_dir, "curves.png"),
        generation_boundaries=list(np.cumsum(config.generation_epochs())[:-1]),
        title=(f"{config.scheme}{' + DwO' if config.dwo else ''}"
               f"{' (L2 regression)' if config.head == 'regression' else ''}, "
               f"seed {config.seed}"),
    )


def _predict_fn(model):
    strategy = getattr(model, "distribute_strategy", None)  # TensorFlow only.
    if strategy is not None and strategy.num_replicas_in_sync > 1:
        # A network built under a multi-replica strategy: `predict_on_batch`
        # would gather the replicas' outputs, not this batch's.
        return lambda inputs: np.asarray(model.decode(model(inputs, training=False)))
    # The backend's compiled forward pass: the same predictions as eager
    # calls, in about half the time (docs/training.md, "Whole runs").
    return lambda inputs: np.asarray(model.decode(model.predict_on_batch(inputs)))


def split_error(model, data_dir, split, *, image_size=64, decoded=None):
    """Mean Euclidean error in cm of `model` on one split.

    Args:
        model: anything with `decode` (a `GazeNet` or `GazeRegressor`).
        data_dir: str. The prepared data.
        split: str. `train`, `validation` or `test`.
        image_size: int. Crop size.
        decoded: `pipeline.DecodedSplit` of that split in memory, or None.
    """
    gaze_true, gaze_pred, _ = evaluation.predict_split(
        _predict_fn(model), data_dir, split, image_size=image_size, decoded=decoded)
    return evaluation.summarize(gaze_true, gaze_pred)["test_error_cm"]


def evaluate_model(model, data_dir, *, image_size=64, msd_min_length=5,
                   max_train_examples=None, decoded=None):
    """Errors on train, validation and test, per device type, and test MSD.

    The training error counts the examples the run trained on (the first
    `max_train_examples` when set).

    Args:
        model: `GazeNet` or `GazeRegressor` (anything with `decode`).
        data_dir: str. The prepared data.
        image_size: int. Crop size.
        msd_min_length: int. Shortest stare sequence counted by MSD.
        max_train_examples: int or None. As in the run's config.
        decoded: dict split -> `pipeline.DecodedSplit` already in memory
            (reused, not decoded again), or None.

    Returns:
        dict of `train_error_cm`, `val_error_cm`, `test_*` (see
        `evaluation.summarize`).
    """
    decoded = decoded or {}
    results = {}

    predict_fn = _predict_fn(model)
    for split, prefix in (("train", "train"), ("validation", "val"), ("test", "test")):
        gaze_true, gaze_pred, metadata = evaluation.predict_split(
            predict_fn, data_dir, split,
            image_size=image_size,
            max_examples=max_train_examples if split == "train" else None,
            decoded=decoded.get(split),
        )
        summary = evaluation.summarize(gaze_true, gaze_pred, metadata, prefix=prefix,
                                       msd_min_length=msd_min_length)
        if prefix != "test":
            summary = {k: v for k, v in summary.items()
                       if k in (f"{prefix}_error_cm", f"{prefix}_examples")}
        results.update(summary)
    return results
