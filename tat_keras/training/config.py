"""`TrainConfig`: everything that defines a run, validated before anything runs.

A setting that cannot work (a pruning ratio of 20, a teacher threshold
below 1, odd DwO center bins, a regression head with TAT) is refused by
`TrainConfig.resolved()` with a message that names the setting and what it
received, before any data is read or any model built, not at the first
rebirth hours into a run.

No TensorFlow or Keras here: importing this module is instant.

Example:

>>> config = TrainConfig(scheme="sd").resolved()
>>> config.teacher, config.pruning, config.mixup
('last', 'none', False)
>>> TrainConfig(prune_ratio=20).resolved()
Traceback (most recent call last):
...
ValueError: prune_ratio must be in [0, 1) (a fraction of all filters). Received: prune_ratio=20
"""

import dataclasses
import math

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
# `jit_compile` left unset: XLA on an accelerator only. On 2 CPU cores it was
# slower at one-eighth and at quarter width, for every scheme
# (recipes/benchmark_training.py; BUILD_NOTES.md "Input path, XLA and threads").


@dataclasses.dataclass
class TrainConfig:
    """Everything that defines a run.

    `None` fields take the scheme's default (`teacher`, `pruning`, `mixup`),
    come from the data (the label range `x_low` .. `y_high`) or from the
    machine (`jit_compile`). Field meanings are those of the flags of
    `recipes/train_tat.py`. The fields after `seed` change how fast a run
    goes, not what it learns (`deterministic` aside, which also fixes the
    order of floating-point sums).
    """

    data_dir: str = "data/quick/tfds"
    image_size: int = 64
    scheme: str = "tat"
    width_multiplier: float = 1.0
    share_eye_weights: bool = True
    batch_norm_momentum: float = 0.9
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
    rebirth_moments: str = "zero"
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
    head: str = "ordinal"
    deterministic: bool = False
    jit_compile: bool | None = None
    input_cache: str = "memory"
    cache_dir: str | None = None

    def resolved(self):
        """A validated copy with the scheme's defaults filled in.

        Raises:
            ValueError: a setting out of range, or settings that do not go
                together; the message names them and what was received.
        """
        _check_choice("scheme", self.scheme, SCHEMES)
        _check_choice("head", self.head, HEADS)
        defaults = SCHEME_DEFAULTS[self.scheme]
        config = dataclasses.replace(
            self,
            teacher=self.teacher if self.teacher is not None else defaults["teacher"],
            pruning=self.pruning if self.pruning is not None else defaults["pruning"],
            mixup=self.mixup if self.mixup is not None else defaults["mixup"],
        )
        config._validate()
        return config

    def _validate(self):
        _check_choice("teacher", self.teacher, TEACHER_POLICIES)
        _check_choice("pruning", self.pruning, PRUNING_METHODS)
        _check_choice("reinit", self.reinit, REINIT_METHODS)
        _check_choice("rebirth_moments", self.rebirth_moments, REBIRTH_MOMENTS)
        _check_choice("input_cache", self.input_cache, INPUT_CACHES)
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
        """
        from tat_keras.training import schedules  # Loads Keras: only when used.

        epochs = schedules.generation_epochs(
            self.mini_generations, self.epochs_per_generation, self.warmup_epochs)
        return epochs if self.scheme != "standard" else [sum(epochs)]

    def uses_jit(self, accelerator=False):
        """`jit_compile`, or when unset the measured default: XLA on an
        accelerator (`accelerator=True`), not on CPU."""
        if self.jit_compile is not None:
            return bool(self.jit_compile)
        return bool(accelerator)


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
