"""`TrainConfig`: every setting of a run, validated and resolved before anything runs.

A setting that cannot work (a pruning ratio of 20, a teacher threshold
below 1, odd DwO center bins, a regression head with TAT) is refused by
`TrainConfig.resolved()` with a message that names the setting and what it
received, before any data is read or any model built, not at the first
rebirth hours into a run.

`resolved()` also states what a run will actually do: the scheme's
teacher, pruning and mixup, the Eq. 9 weights its trainer uses, and, given
the run's `distributed.Placement`, what several replicas or workers change
(XLA, the input cache, determinism). The builders and the distribution code
read these settings and change none of them; `config.json` records them.

Each field carries the help text of its flag (`recipes/train_tat.py` builds
its flags from the fields).

No TensorFlow or Keras here: importing this module is instant.

Example:

>>> config = TrainConfig(scheme="sd").resolved()
>>> config.teacher, config.pruning, config.mixup, config.lambda_mix
('last', 'none', False, 0.0)
>>> TrainConfig(prune_ratio=20).resolved()
Traceback (most recent call last):
...
ValueError: prune_ratio must be in [0, 1) (a fraction of all filters). Received: prune_ratio=20
"""

import dataclasses
import math
import os

import numpy as np

from tat_keras.reinit import METHODS as REINIT_METHODS
from tat_keras.training.teachers import TEACHER_POLICIES

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
# How filters are chosen for a rebirth (`rebirth.apply_rebirth`); defined
# here, where validating a configuration needs it without loading Keras.
PRUNING_METHODS = ("csp", "repr", "scratch", "none")
# What Adam does with the moments of re-born weights (docs/interpretation.md,
# "Optimizer state at a rebirth"): `zero` them under the run's global bias
# correction, or restart them as for `fresh` weights (`optimizers.RebirthAdam`).
REBIRTH_MOMENTS = ("zero", "fresh")
HEADS = ("ordinal", "regression")
INPUT_CACHES = ("memory", "file", "none")
IMAGE_SIZES = (64, 128)
# Keras backends a run trains on (`GazeTrainer` has a step for each).
BACKENDS = ("tensorflow", "jax")
# `jit_compile` left unset: XLA on an accelerator only. On 2 CPU cores it was
# slower at one-eighth and at quarter width, for every scheme
# (recipes/benchmark_training.py; BUILD_NOTES.md "Input path, XLA and threads").


def setting(default, help, *, choices=None, unset=None):
    """A field of `TrainConfig` with the help text of its flag.

    Args:
        default: the field's default.
        help: str. What the setting does, as its flag's help says it.
        choices: tuple of str or None. The values a text setting takes.
        unset: str or None. The flag's word for None (`--jit_compile=auto`,
            `--dwo_center_bins=all`).

    Example:

    >>> field = [f for f in dataclasses.fields(TrainConfig) if f.name == "scheme"][0]
    >>> field.metadata["choices"]
    ('standard', 'sd', 'tat')
    """
    return dataclasses.field(default=default, metadata={
        "help": help, "choices": choices, "unset": unset})


_LABEL_EDGE = "Label range edge in cm; unset: from the training split with a margin."


@dataclasses.dataclass
class TrainConfig:
    """Every setting of a run.

    `None` fields take the scheme's default (`teacher`, `pruning`, `mixup`),
    come from the data (the label range `x_low` .. `y_high`) or from the
    machine (`jit_compile`); `resolved()` fills them in. Each field's
    `metadata["help"]` says what it does. The fields after `seed` change how
    fast a run goes, not what it learns (`deterministic` aside, which also
    fixes the order of floating-point sums).
    """

    data_dir: str = setting(
        "data/quick/tfds", "TFDS data directory holding the prepared gaze_capture set.")
    image_size: int = setting(64, "Crop size of the data (64 or 128).")
    scheme: str = setting("tat", "Training scheme.", choices=SCHEMES)
    width_multiplier: float = setting(1.0, "Scales the channels of every convolution.")
    share_eye_weights: bool = setting(True, "Both eyes go through one branch.")
    batch_norm_momentum: float = setting(
        0.9, "Momentum of the batch-norm moving statistics.")
    x_bins: int = setting(133, "Ordinal bins, horizontal.")
    y_bins: int = setting(133, "Ordinal bins, vertical.")
    x_low: float | None = setting(None, _LABEL_EDGE)
    x_high: float | None = setting(None, _LABEL_EDGE)
    y_low: float | None = setting(None, _LABEL_EDGE)
    y_high: float | None = setting(None, _LABEL_EDGE)
    label_margin: float = setting(
        0.05, "Margin added to the data's label range, as a share of it.")
    batch_size: int = setting(
        64, "Training batch size: the global batch, split over the replicas.")
    learning_rate: float = setting(1e-3, "Peak learning rate.")
    weight_decay: float = setting(0.0, "AdamW weight decay.")
    mini_generations: int = setting(5, "Number of mini-generations K.")
    epochs_per_generation: int = setting(7, "Epochs per mini-generation L.")
    warmup_epochs: int = setting(1, "Warm-up epochs added to the first mini-generation.")
    lambda_hard: float = setting(
        0.2, "Weight of the hard loss (1 under the standard scheme).")
    lambda_mix: float = setting(0.4, "Weight of the mixup loss (0 without mixup).")
    lambda_teacher: float = setting(
        0.6, "Weight of the teacher loss (0 without a teacher).")
    teacher: str | None = setting(
        None, "Teacher policy (Table 2); unset: the scheme's. The standard scheme "
        "has none.", choices=TEACHER_POLICIES)
    teacher_threshold: float | None = setting(
        1.05, "Drop teachers above this times the best validation error "
        "(chosen where TAT's premise holds; docs/interpretation.md).")
    pruning: str | None = setting(
        None, "Pruning method (Table 3); unset: the scheme's. The standard scheme "
        "has no rebirth to prune at.", choices=PRUNING_METHODS)
    prune_ratio: float = setting(0.2, "Pruning ratio p.")
    max_layer_prune_ratio: float = setting(0.5, "Per-layer pruning cap p_max.")
    reinit: str = setting("aoi", "Re-initialization method (Table 4).",
                          choices=REINIT_METHODS)
    rebirth_moments: str = setting(
        "zero", "Adam moments of re-born weights: zeroed (zero) or restarted with "
        "their own bias correction, as for new weights (fresh).",
        choices=REBIRTH_MOMENTS)
    mixup: bool | None = setting(None, "Feature mixup; unset: the scheme's.")
    dwo: bool = setting(False, "DwO adversarial training.")
    dwo_epsilon: float = setting(3.0, "PGD epsilon (pixels).")
    dwo_step: float = setting(1.0, "PGD step gamma (pixels).")
    dwo_steps: int = setting(1, "PGD iterations T.")
    dwo_center_bins: int | None = setting(
        8, "Center bins of the DwO loss (even number), or 'all'.", unset="all")
    dwo_original_fraction: float = setting(
        0.9, "Share of original samples per batch (Org.%).")
    augment: bool = setting(True, "Photometric augmentation.")
    max_train_examples: int | None = setting(
        None, "Use only this many training examples.")
    msd_min_length: int = setting(5, "Shortest stare sequence counted by MSD.")
    seed: int = setting(0, "Random seed.")
    head: str = setting(
        "ordinal", "ordinal: the paper's bins; regression: the L2 baseline on the same "
        "trunk (standard scheme only).", choices=HEADS)
    deterministic: bool = setting(
        False, "Deterministic kernels and data order: a rerun repeats to the last "
        "digit (slower). On across several workers.")
    backend: str | None = setting(
        None, "Keras backend: tensorflow or jax; unset: the KERAS_BACKEND "
        "environment variable's (tensorflow when it is unset too). JAX trains on one "
        "device, its step compiled with XLA.", choices=BACKENDS)
    jit_compile: bool | None = setting(
        None, "XLA compilation of the train step; auto (the default): on with a "
        "GPU, off on CPU (where it measured slower; BUILD_NOTES.md) and on several "
        "replicas.", unset="auto")
    input_cache: str = setting(
        "memory", "Decoded crops: memory (decode once, keep in RAM), file (decode "
        "once into --cache_dir), none (decode every epoch). On several replicas, "
        "memory becomes none.", choices=INPUT_CACHES)
    cache_dir: str | None = setting(
        None, "Folder of the file cache; default: model_dir/input_cache.")

    def resolved(self, placement=None):
        """A validated copy holding the settings a run actually uses.

        - `teacher`, `pruning`, `mixup`: the scheme's when unset
          (`SCHEME_DEFAULTS`); `standard` has no teacher and no pruning.
        - The Eq. 9 weights the trainer uses: `lambda_hard` is 1 under
          `standard` (the hard loss alone), `lambda_mix` is 0 without
          mixup (and mixup is off at `lambda_mix=0`), `lambda_teacher` is 0
          without a teacher.
        - With `placement`: `backend` (when unset: `KERAS_BACKEND`'s),
          `jit_compile` (when unset: on with an accelerator or on JAX, off
          for TensorFlow on CPU), and what several replicas or workers
          need. Several replicas compile no XLA step (their all-gathers and
          synchronized batch norms run as collective operations), read one
          dataset per epoch (`input_cache="memory"` becomes `"none"`), and
          take the ordinal head only; several workers read their shards of
          one ordered dataset (`deterministic`).

        Resolving a resolved config changes nothing.

        Args:
            placement: `distributed.Placement` of this process (anything
                with `num_replicas`, `num_workers` and `accelerator`), or
                None: validate and fill in the scheme only, leaving what
                depends on the machine unset.

        Raises:
            ValueError: a setting out of range, or settings that do not go
                together; the message names them and what was received.

        Example:

        >>> config = TrainConfig(scheme="standard").resolved()
        >>> config.lambda_hard, config.lambda_mix, config.lambda_teacher
        (1.0, 0.0, 0.0)
        """
        _check_choice("scheme", self.scheme, SCHEMES)
        _check_choice("head", self.head, HEADS)
        defaults = SCHEME_DEFAULTS[self.scheme]
        config = dataclasses.replace(self, **{
            name: defaults[name] if getattr(self, name) is None else getattr(self, name)
            for name in ("teacher", "pruning", "mixup")})
        config._validate()
        if config.scheme == "standard":
            config = dataclasses.replace(config, teacher="none", pruning="none",
                                         lambda_hard=1.0)
        if not config.mixup or config.lambda_mix == 0:
            config = dataclasses.replace(config, mixup=False, lambda_mix=0.0)
        if config.teacher == "none":
            config = dataclasses.replace(config, lambda_teacher=0.0)
        if placement is not None:
            config = config._placed(placement)
        return config

    def _placed(self, placement):
        """The settings that depend on where the run trains (`resolved`)."""
        config = self
        if config.backend is None:
            config = dataclasses.replace(
                config, backend=os.environ.get("KERAS_BACKEND", "tensorflow"))
            _check_choice("backend", config.backend, BACKENDS)
        if config.jit_compile is None:
            # JAX runs a step it does not compile op by op: slow everywhere.
            config = dataclasses.replace(config, jit_compile=bool(
                placement.accelerator or config.backend == "jax"))
        if config.backend != "tensorflow" and config.head == "regression":
            raise ValueError(
                "head='regression' (the L2 baseline) trains on the tensorflow backend "
                f"only. Received: backend={config.backend!r}")
        if config.backend != "tensorflow" and placement.num_replicas > 1:
            raise ValueError(
                "Several replicas train through tf.distribute, on the tensorflow "
                f"backend only. Received: backend={config.backend!r}, "
                f"replicas={placement.num_replicas}")
        if placement.num_replicas > 1:
            if config.head != "ordinal":
                raise ValueError(
                    "Training on several replicas supports the ordinal head only. "
                    f"Received: head={config.head!r}, replicas={placement.num_replicas}")
            if config.batch_size % placement.num_replicas:
                raise ValueError(
                    "batch_size is the global batch and must be a multiple of the "
                    f"{placement.num_replicas} replicas. Received: "
                    f"batch_size={config.batch_size}")
            config = dataclasses.replace(config, jit_compile=False)
            if config.input_cache == "memory":
                config = dataclasses.replace(config, input_cache="none")
        if placement.num_workers > 1:
            config = dataclasses.replace(config, deterministic=True)
        return config

    def _validate(self):
        _check_choice("teacher", self.teacher, TEACHER_POLICIES)
        _check_choice("pruning", self.pruning, PRUNING_METHODS)
        _check_choice("reinit", self.reinit, REINIT_METHODS)
        _check_choice("rebirth_moments", self.rebirth_moments, REBIRTH_MOMENTS)
        _check_choice("input_cache", self.input_cache, INPUT_CACHES)
        if self.backend is not None:
            _check_choice("backend", self.backend, BACKENDS)
        _check_choice("image_size", self.image_size, IMAGE_SIZES)
        for name in ("x_bins", "y_bins", "batch_size", "mini_generations",
                     "epochs_per_generation", "dwo_steps", "msd_min_length"):
            _check_int(name, getattr(self, name), minimum=1)
        _check_int("warmup_epochs", self.warmup_epochs, minimum=0)
        _check_int("seed", self.seed, minimum=0)
        if self.max_train_examples is not None:
            _check_int("max_train_examples", self.max_train_examples, minimum=1)
        for name in ("width_multiplier", "learning_rate", "dwo_epsilon", "dwo_step"):
            _check_number(name, getattr(self, name), low=0.0, low_open=True)
        for name in ("weight_decay", "label_margin", "lambda_hard", "lambda_mix",
                     "lambda_teacher"):
            _check_number(name, getattr(self, name), low=0.0)
        _check_number("batch_norm_momentum", self.batch_norm_momentum, low=0.0,
                      high=1.0, high_open=True)
        _check_number("dwo_original_fraction", self.dwo_original_fraction,
                      low=0.0, high=1.0)
        _check_number("max_layer_prune_ratio", self.max_layer_prune_ratio,
                      low=0.0, high=1.0)
        if not _is_number(self.prune_ratio) or not 0.0 <= self.prune_ratio < 1.0:
            raise ValueError(
                "prune_ratio must be in [0, 1) (a fraction of all filters). "
                f"Received: prune_ratio={self.prune_ratio!r}"
            )
        if self.teacher_threshold is not None and (
                not _is_number(self.teacher_threshold) or self.teacher_threshold < 1.0):
            raise ValueError(
                "teacher_threshold multiplies the best teacher's validation error "
                "and must be >= 1 (or None to keep every teacher). "
                f"Received: teacher_threshold={self.teacher_threshold!r}"
            )
        if self.dwo and self.dwo_center_bins is not None:
            _check_int("dwo_center_bins", self.dwo_center_bins, minimum=2)
            if self.dwo_center_bins % 2 or self.dwo_center_bins > min(
                    self.x_bins, self.y_bins):
                raise ValueError(
                    "dwo_center_bins must be an even number no larger than the bins "
                    f"of either axis (or None for all bins). Received: "
                    f"dwo_center_bins={self.dwo_center_bins}, x_bins={self.x_bins}, "
                    f"y_bins={self.y_bins}"
                )
        for axis in ("x", "y"):
            low, high = getattr(self, f"{axis}_low"), getattr(self, f"{axis}_high")
            if low is not None and high is not None and not high > low:
                raise ValueError(
                    f"{axis}_high must be above {axis}_low. Received: "
                    f"{axis}_low={low}, {axis}_high={high}"
                )
        if self.scheme != "standard" and self.mini_generations < 2:
            raise ValueError(
                f"scheme={self.scheme!r} distils from earlier mini-generations and "
                "needs mini_generations >= 2 (use scheme='standard' for one block). "
                f"Received: mini_generations={self.mini_generations}"
            )
        if self.head == "regression":
            wrong = {name: value for name, value in (
                ("scheme", self.scheme), ("dwo", self.dwo), ("mixup", self.mixup),
            ) if value not in ("standard", False)}
            if wrong:
                received = ", ".join(f"{k}={v!r}" for k, v in wrong.items())
                raise ValueError(
                    "head='regression' (the L2 baseline) trains with the standard "
                    "scheme only, without DwO or mixup: those act on ordinal bins. "
                    f"Received: {received}"
                )

    @property
    def restart_schedule(self):
        return SCHEME_DEFAULTS[self.scheme]["restart_schedule"]

    def generation_epochs(self):
        """Epochs per mini-generation; `standard` runs them as one block.

        Example:

        >>> TrainConfig(mini_generations=3, epochs_per_generation=2).generation_epochs()
        [3, 2, 2]
        >>> TrainConfig(scheme="standard", mini_generations=3,
        ...             epochs_per_generation=2).generation_epochs()
        [7]
        """
        epochs = generation_epochs(self.mini_generations, self.epochs_per_generation,
                                   self.warmup_epochs)
        return epochs if self.scheme != "standard" else [sum(epochs)]

    def uses_jit(self, accelerator=False):
        """`jit_compile`, or when unset (a config resolved without a
        placement) the measured default: XLA on an accelerator
        (`accelerator=True`), not on CPU."""
        if self.jit_compile is not None:
            return bool(self.jit_compile)
        return bool(accelerator)


def generation_epochs(mini_generations, epochs_per_generation, warmup_epochs=1):
    """Epoch count of each mini-generation: `L + warmup` first, then `L`.

    Args:
        mini_generations: int >= 1. K.
        epochs_per_generation: int >= 1. L.
        warmup_epochs: int >= 0. Added to the first mini-generation.

    Example:

    >>> generation_epochs(3, 2)
    [3, 2, 2]
    """
    if mini_generations < 1:
        raise ValueError(
            f"mini_generations must be at least 1. Received: {mini_generations}"
        )
    if epochs_per_generation < 1:
        raise ValueError(
            "epochs_per_generation must be at least 1. "
            f"Received: {epochs_per_generation}"
        )
    if warmup_epochs < 0:
        raise ValueError(f"warmup_epochs must be >= 0. Received: {warmup_epochs}")
    return [epochs_per_generation + warmup_epochs] + [epochs_per_generation] * (
        mini_generations - 1
    )


def label_range(config, train_labels):
    """`(x_low, x_high, y_low, y_high)` of a run: the one label-range rule.

    Each edge is the config's where set, else the training labels' min or
    max widened by `label_margin` of the span. `ordinal.OrdinalBins.from_range`
    turns each axis's pair into bins.

    Args:
        config: `TrainConfig` (or anything with `x_low` .. `y_high` and
            `label_margin`).
        train_labels: array `(N, 2)` of gaze targets in cm.

    Example:

    >>> label_range(TrainConfig(label_margin=0.5), np.array([[0., 0.], [2., 4.]]))
    (-1.0, 3.0, -2.0, 6.0)
    """
    values = []
    for axis, (low, high) in enumerate(
        ((config.x_low, config.x_high), (config.y_low, config.y_high))
    ):
        column = np.asarray(train_labels, np.float64).reshape(-1, 2)[:, axis]
        if not len(column) and (low is None or high is None):
            raise ValueError("No training labels to take the label range from; "
                             "set x_low, x_high, y_low and y_high.")
        if len(column):
            span = float(column.max() - column.min()) or 1.0
        low = (float(column.min()) - config.label_margin * span if low is None
               else float(low))
        high = (float(column.max()) + config.label_margin * span if high is None
                else float(high))
        if not high > low:
            raise ValueError(f"Empty label range on axis {axis}: low={low}, high={high}")
        values += [low, high]
    return tuple(values)


def _is_number(value):
    return isinstance(value, (int, float)) and not isinstance(value, bool) and (
        math.isfinite(value))


def _check_choice(name, value, choices):
    if value not in choices:
        raise ValueError(f"{name} must be one of {choices}. Received: {name}={value!r}")


def _check_int(name, value, *, minimum):
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ValueError(
            f"{name} must be an integer >= {minimum}. Received: {name}={value!r}")


def _check_number(name, value, *, low=None, high=None, low_open=False,
                  high_open=False):
    ok = _is_number(value)
    if ok and low is not None:
        ok = value > low if low_open else value >= low
    if ok and high is not None:
        ok = value < high if high_open else value <= high
    if not ok:
        interval = (f"{'(' if low_open else '['}{low if low is not None else '-inf'}, "
                    f"{high if high is not None else 'inf'}{')' if high_open or high is None else ']'}")
        raise ValueError(f"{name} must be a number in {interval}. Received: {name}={value!r}")
