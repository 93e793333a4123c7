"""One training run, from a prepared dataset to a saved model and metrics.

`train(config, model_dir)` is what `recipes/train_tat.py` calls; it wires
data, model, trainer, schedule and callbacks, resumes from the last
checkpoint of an interrupted run, and writes into `model_dir`:

- `model.keras`: the final `GazeNet` (label range included);
- `config.json`: the resolved configuration (label range included);
- `metrics.json`: errors in cm on train, validation and test, per device
  type, MSD on stare sequences, epochs and training time;
- `history.json`: per-epoch losses and errors;
- `generations.json`: per mini-generation teachers, errors and rebirths;
- `curves.png`: train and validation error per epoch, mini-generations marked
  (the paper's Fig. 1a);
- `checkpoints/` and `logs/` (TensorBoard).
"""

import dataclasses
import json
import math
import os
import shutil
import time

import keras
import numpy as np

from tat_keras import evaluation
from tat_keras import models
from tat_keras import plots
from tat_keras.training import checkpoint
from tat_keras.training import generations
from tat_keras.training import schedules
from tat_keras.training import teachers
from tat_keras.training import trainer as trainer_lib

SCHEMES = ("standard", "sd", "tat")
# What each scheme means when an option is left unset (None).
SCHEME_DEFAULTS = {
    "standard": {"teacher": "none", "pruning": "none", "mixup": False,
                 "restart_schedule": False},
    "sd": {"teacher": "last", "pruning": "none", "mixup": False,
           "restart_schedule": True},
    "tat": {"teacher": "random", "pruning": "csp", "mixup": True,
            "restart_schedule": True},
}
REINIT_METHODS = ("aoi", "orthogonal", "uniform")


@dataclasses.dataclass
class TrainConfig:
    """Everything that defines a run. `None` fields take the scheme's default
    (teacher, pruning, mixup) or come from the data (label range)."""

    data_dir: str = "data/quick/tfds"
    image_size: int = 64
    scheme: str = "tat"
    width_multiplier: float = 1.0
    share_eye_weights: bool = True
    batch_norm_momentum: float = models.BN_MOMENTUM
    x_bins: int = 133
    y_bins: int = 133
    x_low: float | None = None
    x_high: float | None = None
    y_low: float | None = None
    y_high: float | None = None
    label_margin: float = 0.05
    batch_size: int = 64
    learning_rate: float = 1e-3
    weight_decay: float = 0.0
    mini_generations: int = 5
    epochs_per_generation: int = 7
    warmup_epochs: int = 1
    lambda_hard: float = 0.2
    lambda_mix: float = 0.4
    lambda_teacher: float = 0.6
    teacher: str | None = None
    teacher_threshold: float | None = 1.05
    pruning: str | None = None
    prune_ratio: float = 0.2
    max_layer_prune_ratio: float = 0.5
    reinit: str = "aoi"
    mixup: bool | None = None
    dwo: bool = False
    dwo_epsilon: float = 3.0
    dwo_step: float = 1.0
    dwo_steps: int = 1
    dwo_center_bins: int | None = 8
    dwo_original_fraction: float = 0.9
    augment: bool = True
    max_train_examples: int | None = None
    msd_min_length: int = 5
    seed: int = 0

    def resolved(self):
        """A copy with scheme defaults filled in, after validation."""
        if self.scheme not in SCHEMES:
            raise ValueError(f"scheme must be one of {SCHEMES}. Received: {self.scheme!r}")
        defaults = SCHEME_DEFAULTS[self.scheme]
        config = dataclasses.replace(
            self,
            teacher=self.teacher if self.teacher is not None else defaults["teacher"],
            pruning=self.pruning if self.pruning is not None else defaults["pruning"],
            mixup=self.mixup if self.mixup is not None else defaults["mixup"],
        )
        if config.teacher not in teachers.TEACHER_POLICIES:
            raise ValueError(
                f"teacher must be one of {teachers.TEACHER_POLICIES}. "
                f"Received: {config.teacher!r}"
            )
        if config.reinit not in REINIT_METHODS:
            raise ValueError(
                f"reinit must be one of {REINIT_METHODS}. Received: {config.reinit!r}"
            )
        if not 0.0 <= config.dwo_original_fraction <= 1.0:
            raise ValueError(
                "dwo_original_fraction must be in [0, 1]. "
                f"Received: {config.dwo_original_fraction}"
            )
        if config.batch_size < 1:
            raise ValueError(f"batch_size must be positive. Received: {config.batch_size}")
        return config

    @property
    def restart_schedule(self):
        return SCHEME_DEFAULTS[self.scheme]["restart_schedule"]

    def generation_epochs(self):
        """Epochs per mini-generation; `standard` runs them as one block."""
        epochs = schedules.generation_epochs(
            self.mini_generations, self.epochs_per_generation, self.warmup_epochs
        )
        return epochs if self.scheme != "standard" else [sum(epochs)]


def label_range(config, train_labels):
    """`(x_low, x_high, y_low, y_high)`: flags where set, else the training
    labels' min and max widened by `label_margin` of the span on each side."""
    values = []
    for axis, (low, high) in enumerate(
        ((config.x_low, config.x_high), (config.y_low, config.y_high))
    ):
        column = train_labels[:, axis]
        span = float(column.max() - column.min()) or 1.0
        low = float(column.min()) - config.label_margin * span if low is None else low
        high = float(column.max()) + config.label_margin * span if high is None else high
        if not high > low:
            raise ValueError(f"Empty label range on axis {axis}: low={low}, high={high}")
        values += [low, high]
    return tuple(values)


def _prepare_model_dir(model_dir, config_json, overwrite):
    """Returns the checkpoint state to resume from, or None for a new run."""
    config_path = os.path.join(model_dir, "config.json")
    if overwrite and os.path.exists(model_dir):
        shutil.rmtree(model_dir)
    if not os.path.isdir(model_dir) or not os.listdir(model_dir):
        os.makedirs(model_dir, exist_ok=True)
        return None
    if os.path.exists(os.path.join(model_dir, "metrics.json")):
        raise FileExistsError(
            f"{model_dir} holds a finished run (metrics.json). Evaluate it with "
            "recipes/evaluate.py, or pass --overwrite to train again from scratch."
        )
    state = checkpoint.latest(os.path.join(model_dir, "checkpoints"))
    if state is None or not os.path.exists(config_path):
        raise FileExistsError(
            f"{model_dir} is not empty and holds no checkpoint to resume. "
            "Choose another --model_dir or pass --overwrite."
        )
    with open(config_path) as f:
        saved = json.load(f)
    unresumable = {k for k in config_json if k not in ("data_dir",)
                   and saved.get(k) != config_json[k]}
    if unresumable:
        changes = ", ".join(f"{k}: {saved.get(k)!r} -> {config_json[k]!r}"
                            for k in sorted(unresumable))
        raise ValueError(
            f"{model_dir} holds an unfinished run with other settings ({changes}). "
            "Rerun with the same settings to resume it, or pass --overwrite."
        )
    return state


def train(config, model_dir, *, overwrite=False, verbose="auto"):
    """Trains, evaluates and saves one run; resumes an interrupted one.

    Args:
        config: `TrainConfig`.
        model_dir: str. Output folder (see the module docstring).
        overwrite: bool. Delete what `model_dir` holds first.
        verbose: Keras `fit` verbosity ("auto": a progress bar).

    Returns:
        dict. The metrics also written to `metrics.json`.
    """
    from tat_keras.data import pipeline  # Data sits on a higher floor.

    config = config.resolved()
    train_labels = pipeline.load_labels(config.data_dir, "train",
                                        image_size=config.image_size)
    if config.max_train_examples:
        train_labels = train_labels[: config.max_train_examples]
    x_low, x_high, y_low, y_high = label_range(config, train_labels)
    config = dataclasses.replace(config, x_low=x_low, x_high=x_high,
                                 y_low=y_low, y_high=y_high)
    config_json = dataclasses.asdict(config)
    state = _prepare_model_dir(model_dir, config_json, overwrite)
    with open(os.path.join(model_dir, "config.json"), "w") as f:
        json.dump(config_json, f, indent=2)

    keras.utils.set_random_seed(config.seed)
    student = models.GazeNet(
        image_size=config.image_size,
        width_multiplier=config.width_multiplier,
        x_bins=config.x_bins,
        y_bins=config.y_bins,
        share_eye_weights=config.share_eye_weights,
        batch_norm_momentum=config.batch_norm_momentum,
        x_low=x_low,
        x_bin_size=(x_high - x_low) / (config.x_bins + 1),
        y_low=y_low,
        y_bin_size=(y_high - y_low) / (config.y_bins + 1),
    )
    outside = student.bins["x"].count_outside(train_labels[:, 0]) + student.bins[
        "y"].count_outside(train_labels[:, 1])
    if outside:
        print(f"{outside} training label values lie outside the label range "
              "and are clipped into it.")

    dwo = None
    if config.dwo:
        dwo = {"epsilon": config.dwo_epsilon, "step_size": config.dwo_step,
               "steps": config.dwo_steps, "num_center_bins": config.dwo_center_bins,
               "original_fraction": config.dwo_original_fraction}
    uses_teacher = config.teacher != "none" and config.scheme != "standard"
    trainer = trainer_lib.GazeTrainer(
        student,
        lambda_hard=config.lambda_hard if config.scheme != "standard" else 1.0,
        lambda_mix=config.lambda_mix if config.mixup else 0.0,
        lambda_teacher=config.lambda_teacher if uses_teacher else 0.0,
        dwo=dwo,
        seed=config.seed,
    )

    epochs = config.generation_epochs()
    steps = math.ceil(len(train_labels) / config.batch_size)
    schedule = schedules.RestartingCosineDecay(
        config.learning_rate,
        [e * steps for e in epochs] if config.restart_schedule else [sum(epochs) * steps],
        warmup_steps=min(config.warmup_epochs, epochs[0] - 1) * steps,
    )
    if config.weight_decay:
        optimizer = keras.optimizers.AdamW(schedule, weight_decay=config.weight_decay)
    else:
        optimizer = keras.optimizers.Adam(schedule)
    trainer.compile(optimizer=optimizer, jit_compile=False)

    bank = teachers.TeacherBank(config.teacher if uses_teacher else "none",
                                threshold=config.teacher_threshold, seed=config.seed)
    checkpoint_dir = os.path.join(model_dir, "checkpoints")
    record, history, initial_epoch = generations.GenerationRecord(), [], 0
    if state is not None:
        checkpoint.restore(state, checkpoint_dir, trainer, bank)
        record = generations.GenerationRecord.from_json(state["record"])
        history = state["history"]
        initial_epoch = state["epoch"] + 1
        print(f"Resuming {model_dir} after epoch {initial_epoch} "
              f"({len(bank)} teachers).")

    train_data = pipeline.make_dataset(
        config.data_dir, "train", image_size=config.image_size,
        batch_size=config.batch_size, shuffle=True, augment=config.augment,
        seed=config.seed, max_examples=config.max_train_examples,
    )
    val_data = pipeline.make_dataset(
        config.data_dir, "validation", image_size=config.image_size,
        batch_size=256,
    )
    import tensorflow as tf  # TensorBoard writer.

    log_dir = os.path.join(model_dir, "logs")
    writer = tf.summary.create_file_writer(os.path.join(log_dir, "generations"))
    previous_seconds = float(state.get("train_seconds", 0.0)) if state else 0.0
    saver = checkpoint.RunCheckpoint(checkpoint_dir, trainer, bank, record, history,
                                     seconds_before=previous_seconds)
    callbacks = [
        generations.MiniGenerations(
            trainer, bank, epochs, record,
            pruning_method=config.pruning,
            prune_ratio=config.prune_ratio,
            max_layer_ratio=config.max_layer_prune_ratio,
            reinit_method=config.reinit,
            seed=config.seed,
            writer=writer,
        ),
        keras.callbacks.TensorBoard(log_dir=log_dir, write_graph=False),
        saver,
    ]
    started = time.time()
    total_epochs = sum(epochs)
    if initial_epoch < total_epochs:
        trainer.fit(train_data, validation_data=val_data, epochs=total_epochs,
                    initial_epoch=initial_epoch, callbacks=callbacks,
                    verbose=verbose)
    train_seconds = previous_seconds + time.time() - started
    if saver.stopped_on_nan:
        raise FloatingPointError(
            "Training stopped: the loss became NaN or infinite. The last good "
            f"checkpoint is kept in {checkpoint_dir}; lower --learning_rate and "
            "rerun the same command to resume from it."
        )

    student.save(os.path.join(model_dir, "model.keras"))
    record.save(os.path.join(model_dir, "generations.json"))
    with open(os.path.join(model_dir, "history.json"), "w") as f:
        json.dump(history, f, indent=2)
    if history:
        # The loss panel compares like with like: the hard ordinal loss.
        plots.plot_curves(
            {"error_cm": [h["error_cm"] for h in history],
             "val_error_cm": [h.get("val_error_cm") for h in history],
             "loss": [h["hard_loss"] for h in history],
             "val_loss": [h.get("val_hard_loss") for h in history]},
            os.path.join(model_dir, "curves.png"),
            generation_boundaries=list(np.cumsum(epochs)[:-1]),
            title=f"{config.scheme}{' + DwO' if config.dwo else ''}, seed {config.seed}",
        )

    results = evaluate_model(student, config.data_dir, image_size=config.image_size,
                             msd_min_length=config.msd_min_length,
                             max_train_examples=config.max_train_examples)
    results.update({
        "scheme": config.scheme,
        "dwo": config.dwo,
        "seed": config.seed,
        "epochs": total_epochs,
        "train_seconds": round(train_seconds, 1),
    })
    with open(os.path.join(model_dir, "metrics.json"), "w") as f:
        json.dump(results, f, indent=2)
    return results


def evaluate_model(model, data_dir, *, image_size=64, msd_min_length=5,
                   max_train_examples=None):
    """Errors on train, validation and test, per device type, and test MSD.

    The training error counts the examples the run trained on (the first
    `max_train_examples` when set)."""
    results = {}

    def predict_fn(inputs):
        return np.asarray(model.decode(model(inputs, training=False)))

    for split, prefix in (("train", "train"), ("validation", "val"), ("test", "test")):
        gaze_true, gaze_pred, metadata = evaluation.predict_split(
            predict_fn, data_dir, split,
            image_size=image_size,
            max_examples=max_train_examples if split == "train" else None,
        )
        summary = evaluation.summarize(gaze_true, gaze_pred, metadata, prefix=prefix,
                                       msd_min_length=msd_min_length)
        if prefix != "test":
            summary = {k: v for k, v in summary.items()
                       if k in (f"{prefix}_error_cm", f"{prefix}_examples")}
        results.update(summary)
    return results
