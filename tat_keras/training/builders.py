"""The pieces of a training run, each built from a `TrainConfig`.

Each builder reads its settings from a config that `TrainConfig.resolved`
made (the scheme's weights and teacher, and, for a placement, XLA, the
input cache and determinism) and changes none of them, so that the
`config.json` of a run says what ran. `experiment.train` wires them together; `recipes/data_baselines.py` and
`recipes/benchmark_training.py` call the same builders, so that a network
trained by any of them has the same label range, schedule, optimizer and
trainer for the same settings.

- `load_train_labels`, `with_label_range`: the labels a run trains on and
  the one label-range rule (`config.label_range`), turned into bins by
  `ordinal.OrdinalBins.from_range` (`build_bins`);
- `build_student`: a `GazeNet` (ordinal head) or a `GazeRegressor`
  (`head="regression"`);
- `build_schedule`, `build_optimizer`: the restarting cosine schedule and
  Adam (AdamW with weight decay);
- `build_trainer`: the compiled `GazeTrainer` (Eq. 9, DwO) or
  `RegressionTrainer`;
- `build_teacher_bank`, `build_callbacks`: the teacher list, the
  mini-generation callback, TensorBoard and the checkpoint;
- `build_inputs`: the training and validation batches (decoded once and
  held in memory, decoded once into a file cache, or decoded every epoch;
  or, when `data_dir` holds arrays exported by `recipes/export_arrays.py`,
  read from them with NumPy, TensorFlow not needed).

Example:

>>> config = TrainConfig(scheme="standard", width_multiplier=0.125, x_bins=8,
...                      y_bins=8).resolved()
>>> config = with_label_range(config, np.array([[-5., -10.], [5., 0.]]))
>>> student = build_student(config)
>>> trainer = build_trainer(config, student, steps_per_epoch=10)
>>> [round(v, 2) for v in (student.bins["x"].low, student.bins["x"].high)]
[-5.5, 5.5]
"""

import dataclasses
import os

import keras
import numpy as np

from tat_keras import models
from tat_keras import ordinal
from tat_keras.training import checkpoint
from tat_keras.training import generations
from tat_keras.training import optimizers
from tat_keras.training import regression
from tat_keras.training import schedules
from tat_keras.training import teachers
from tat_keras.training import trainer as trainer_lib
from tat_keras.training.config import TrainConfig  # noqa: F401  (the example)
from tat_keras.training.config import label_range


def check_backend(config):
    """Raises unless Keras runs on the backend `config` names."""
    if keras.backend.backend() != config.backend:
        raise ValueError(
            f"The run is set to backend={config.backend!r} but Keras runs on "
            f"{keras.backend.backend()!r}: Keras picks its backend when it is first "
            f"imported. Set KERAS_BACKEND={config.backend} before that "
            "(recipes/train_tat.py --backend does).")


def load_train_labels(config):
    """The `(N, 2)` gaze labels a run trains on (`max_train_examples` first)."""
    from tat_keras.data import arrays

    if arrays.is_array_folder(config.data_dir):
        labels = arrays.ArraySplit.load(config.data_dir, "train").gaze_cm
    else:
        from tat_keras.data import pipeline

        labels = pipeline.load_labels(config.data_dir, "train",
                                      image_size=config.image_size)
    if config.max_train_examples:
        labels = labels[: config.max_train_examples]
    if not len(labels):
        raise ValueError(f"The train split in {config.data_dir} has no examples; "
                         "prepare the data again (recipes/prepare_gazecapture.py).")
    return labels


def with_label_range(config, train_labels):
    """`config` with `x_low` .. `y_high` filled in by `config.label_range`."""
    x_low, x_high, y_low, y_high = label_range(config, train_labels)
    return dataclasses.replace(config, x_low=x_low, x_high=x_high, y_low=y_low,
                               y_high=y_high)


def build_bins(config):
    """`{"x": OrdinalBins, "y": OrdinalBins}` of a config with its label range."""
    if None in (config.x_low, config.x_high, config.y_low, config.y_high):
        raise ValueError("The label range is not set; call with_label_range first. "
                         f"Received: x_low={config.x_low}, x_high={config.x_high}, "
                         f"y_low={config.y_low}, y_high={config.y_high}")
    return {"x": ordinal.OrdinalBins.from_range(config.x_low, config.x_high,
                                                config.x_bins),
            "y": ordinal.OrdinalBins.from_range(config.y_low, config.y_high,
                                                config.y_bins)}


def build_student(config):
    """The network a run trains: `GazeNet`, or `GazeRegressor` for the L2 head.

    Seeds Keras with `config.seed` first, so the initial weights are a
    function of the seed.
    """
    keras.utils.set_random_seed(config.seed)
    bins = build_bins(config)
    if config.head == "regression":
        return regression.GazeRegressor(
            image_size=config.image_size,
            width_multiplier=config.width_multiplier,
            share_eye_weights=config.share_eye_weights,
            batch_norm_momentum=config.batch_norm_momentum,
            center_x=0.5 * (config.x_low + config.x_high),
            center_y=0.5 * (config.y_low + config.y_high),
        )
    return models.GazeNet(
        image_size=config.image_size,
        width_multiplier=config.width_multiplier,
        x_bins=config.x_bins,
        y_bins=config.y_bins,
        share_eye_weights=config.share_eye_weights,
        batch_norm_momentum=config.batch_norm_momentum,
        x_low=bins["x"].low,
        x_bin_size=bins["x"].bin_size,
        y_low=bins["y"].low,
        y_bin_size=bins["y"].bin_size,
    )


def count_outside(config, train_labels):
    """How many training label values the bins clip (0 for regression)."""
    if config.head == "regression":
        return 0
    bins = build_bins(config)
    return sum(bins[axis].count_outside(np.asarray(train_labels)[:, i])
               for i, axis in enumerate(("x", "y")))


def build_schedule(config, steps_per_epoch):
    """`RestartingCosineDecay`: one cycle per mini-generation (one for
    `standard`), a linear warm-up over `warmup_epochs` of the first."""
    epochs = config.generation_epochs()
    cycles = epochs if config.restart_schedule else [sum(epochs)]
    return schedules.RestartingCosineDecay(
        config.learning_rate,
        [e * steps_per_epoch for e in cycles],
        warmup_steps=min(config.warmup_epochs, epochs[0] - 1) * steps_per_epoch,
    )


def build_optimizer(config, steps_per_epoch):
    """Adam on `build_schedule`; AdamW when `weight_decay` is set;
    `optimizers.RebirthAdam` (either) with `rebirth_moments="fresh"`."""
    schedule = build_schedule(config, steps_per_epoch)
    if config.rebirth_moments == "fresh":
        return optimizers.RebirthAdam(schedule, weight_decay=config.weight_decay or None)
    if config.weight_decay:
        return keras.optimizers.AdamW(schedule, weight_decay=config.weight_decay)
    return keras.optimizers.Adam(schedule)


def build_trainer(config, student, steps_per_epoch):
    """The compiled training model of `student`, with the Eq. 9 weights and
    XLA setting of `config` (`jit_compile`; when unset, as `uses_jit` says)."""
    if config.head == "regression":
        trainer = regression.RegressionTrainer(student)
    else:
        dwo = None
        if config.dwo:
            dwo = {"epsilon": config.dwo_epsilon, "step_size": config.dwo_step,
                   "steps": config.dwo_steps, "num_center_bins": config.dwo_center_bins,
                   "original_fraction": config.dwo_original_fraction}
        trainer = trainer_lib.GazeTrainer(
            student,
            lambda_hard=config.lambda_hard,
            lambda_mix=config.lambda_mix,
            lambda_teacher=config.lambda_teacher,
            dwo=dwo,
            seed=config.seed,
        )
    trainer.compile(optimizer=build_optimizer(config, steps_per_epoch),
                    jit_compile=config.uses_jit(accelerator=has_accelerator()))
    return trainer


def has_accelerator():
    """Whether Keras's backend sees a GPU (XLA's default follows it)."""
    if keras.backend.backend() == "jax":
        import jax

        return jax.default_backend() != "cpu"
    import tensorflow as tf

    return bool(tf.config.list_physical_devices("GPU"))


def build_teacher_bank(config):
    """The teacher list of the run's policy (`none` for `standard`)."""
    return teachers.TeacherBank(config.teacher, threshold=config.teacher_threshold,
                                seed=config.seed)


def build_callbacks(config, model_dir, trainer, bank, record, history, *,
                    seconds_before=0.0, generation_error_fn=None):
    """`(callbacks, saver)`: mini-generations, TensorBoard, the checkpoint.

    `saver` is the `RunCheckpoint` among the callbacks (it knows whether the
    run stopped on a NaN). With `generation_error_fn` (`model -> test error
    in cm`) and more than one mini-generation, the error after every
    mini-generation is written into the record (Tables 2-4). TensorBoard's
    logs need TensorFlow; without it (Keras's JAX backend on its own) there
    are none.
    """
    log_dir = os.path.join(model_dir, "logs")
    try:
        import tensorflow as tf
    except ImportError:
        tf = None
    tensorboard = tf is not None
    writer = None
    if tensorboard:
        writer = tf.summary.create_file_writer(os.path.join(log_dir, "generations"))
    saver = checkpoint.RunCheckpoint(os.path.join(model_dir, "checkpoints"), trainer,
                                     bank, record, history,
                                     seconds_before=seconds_before)
    callbacks = []
    if generation_error_fn is not None and len(config.generation_epochs()) > 1:
        # Before MiniGenerations: the mini-generation's model, not the re-born one.
        callbacks.append(generations.GenerationErrors(
            trainer.student, config.generation_epochs(), record, generation_error_fn))
    callbacks += [
        generations.MiniGenerations(
            trainer, bank, config.generation_epochs(), record,
            pruning_method=config.pruning,
            prune_ratio=config.prune_ratio,
            max_layer_ratio=config.max_layer_prune_ratio,
            reinit_method=config.reinit,
            seed=config.seed,
            writer=writer,
        ),
        *([keras.callbacks.TensorBoard(log_dir=log_dir, write_graph=False)]
          if tensorboard else []),
        saver,
    ]
    return callbacks, saver


class RunInputs:
    """What `fit` reads: `train`, `validation`, `steps_per_epoch`, the
    splits decoded in memory (`decoded`: split -> `DecodedSplit` or
    `arrays.ArraySplit`, empty unless `input_cache="memory"` or arrays),
    kept for the final evaluation, and the `callbacks` the inputs need."""

    def __init__(self, train, validation, steps_per_epoch, decoded, callbacks=()):
        self.train = train
        self.validation = validation
        self.steps_per_epoch = steps_per_epoch
        self.decoded = decoded
        self.callbacks = list(callbacks)


def _array_inputs(config, first_epoch, validation):
    """`RunInputs` from exported arrays: NumPy batches, no TensorFlow."""
    from tat_keras.data import arrays
    from tat_keras.training import array_inputs

    decoded = {"train": arrays.ArraySplit.load(
        config.data_dir, "train", max_examples=config.max_train_examples)}
    if validation:
        for split in ("validation", "test"):
            decoded[split] = arrays.ArraySplit.load(config.data_dir, split)
    workers = min(8, os.cpu_count() or 1)
    train = array_inputs.ArrayDataset(
        arrays.EpochBatches(decoded["train"], batch_size=config.batch_size,
                            seed=config.seed, augment=config.augment),
        first_epoch=first_epoch, workers=workers)
    val = (array_inputs.ArrayDataset(
        arrays.EpochBatches(decoded["validation"], batch_size=256, seed=config.seed,
                            augment=False, shuffle=False), workers=workers)
           if validation else None)
    return RunInputs(train, val, None, decoded, callbacks=[train.callback()])


# The share of the memory available when a run starts that the memory cache
# may take (the decoded crops; decoding holds a second copy while it joins
# its parts).
MEMORY_CACHE_SHARE = 0.5


def available_memory_bytes():
    """Memory available to a new process (Linux `MemAvailable`), or None."""
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        return None
    return None


def split_sizes(data_dir, image_size=64):
    """Examples per split of the prepared data, from TFDS's
    `dataset_info.json` (no TensorFlow): dict split -> int, or {} when the
    folder holds no prepared dataset."""
    from tat_keras.data.gaze_capture import layout

    prepared = layout.prepared_dataset_info(data_dir, image_size)
    info = prepared[1] if prepared else {}
    return {split["name"]: sum(int(n) for n in split.get("shardLengths", []))
            for split in info.get("splits", [])}


def check_memory_cache(config, validation=True, available=None):
    """Refuses `input_cache="memory"` where the decoded crops would not fit.

    The crops of the training frames (`max_train_examples` of them at most)
    and, with `validation`, of the validation and test splits, as uint8,
    must fit in `MEMORY_CACHE_SHARE` of the available memory.

    Args:
        config: resolved `TrainConfig`.
        validation: bool. Whether the validation and test splits are decoded.
        available: int or None. Bytes available; None: `available_memory_bytes()`
            (when that is unknown, nothing is checked).

    Raises:
        MemoryError: the message gives both sizes and the flags to use.
    """
    sizes = split_sizes(config.data_dir, config.image_size)
    train = sizes.get("train", 0)
    if config.max_train_examples is not None:
        train = min(train, config.max_train_examples)
    frames = train + (sizes.get("validation", 0) + sizes.get("test", 0)
                      if validation else 0)
    needed = frames * 3 * config.image_size ** 2 * 3
    available = available_memory_bytes() if available is None else available
    if available is None or needed <= MEMORY_CACHE_SHARE * available:
        return
    gib = 2.0 ** 30
    raise MemoryError(
        f"input_cache='memory' would hold {needed / gib:.1f} GiB of decoded crops "
        f"({frames:,} frames), over {MEMORY_CACHE_SHARE:.0%} of the "
        f"{available / gib:.1f} GiB of memory available. Train with "
        "--input_cache=file (decoded once into --cache_dir, read from disk) or "
        "--input_cache=none (decoded every epoch), or fewer frames "
        "(--max_train_examples).")


class _DecodedSplits:
    """The splits decoded for `input_cache="memory"`, kept for the next run
    in the same process (a suite of runs on one dataset decodes it once).

    Entries are keyed by the prepared dataset (its folder, crop size and the
    version and modification time of its `dataset_info.json`, so a dataset
    prepared again is decoded again), the split and `max_examples`; asking
    for another dataset forgets the held one. The arrays are read-only.
    """

    def __init__(self):
        self.dataset = None
        self.splits = {}

    @staticmethod
    def _dataset(data_dir, image_size):
        from tat_keras.data.gaze_capture import layout

        prepared = layout.prepared_dataset_info(data_dir, image_size)
        if prepared is None:
            return None
        path = os.path.join(data_dir, "gaze_capture", f"size{image_size}",
                            prepared[0], "dataset_info.json")
        return (os.path.realpath(data_dir), image_size, prepared[0],
                os.stat(path).st_mtime_ns)

    def get(self, data_dir, image_size, wanted, before_decoding=None):
        """dict split -> `DecodedSplit` for `wanted` (split -> `max_examples`),
        decoding only what is not held; `before_decoding()` runs first when
        something must be decoded."""
        from tat_keras.data import pipeline

        dataset = self._dataset(data_dir, image_size)
        if dataset != self.dataset:
            self.clear()
            self.dataset = dataset
        if before_decoding and any(key not in self.splits for key in wanted.items()):
            before_decoding()
        decoded = {}
        for split, max_examples in wanted.items():
            found = self.splits.get((split, max_examples))
            if found is None:
                found = pipeline.decode_split(data_dir, split, image_size=image_size,
                                              max_examples=max_examples)
                for array in (*found.images.values(), found.gaze_cm,
                              *found.metadata.values()):
                    array.flags.writeable = False
                if dataset is not None:  # Kept only once something was prepared.
                    self.splits[(split, max_examples)] = found
            decoded[split] = found
        return decoded

    def clear(self):
        self.dataset = None
        self.splits = {}


_DECODED = _DecodedSplits()


def clear_decoded():
    """Frees the splits that `build_inputs` keeps decoded in memory for the
    next run in this process (`input_cache="memory"`)."""
    _DECODED.clear()


def build_inputs(config, *, first_epoch=0, validation=True):
    """The run's training batches from `first_epoch` on, and its validation.

    `input_cache="memory"`: train, validation and test decoded once; the
    training batches of epoch `e` depend only on `(seed, e)` (so a resumed
    run sees what an uninterrupted one saw); the decoded splits are kept
    for the next run in the process (`clear_decoded` frees them). `file`:
    decoded once into `cache_dir`. `none`: decoded every epoch.
    `steps_per_epoch` is set for `memory` (one dataset spans every epoch),
    None otherwise. A `data_dir` of exported arrays is read with NumPy
    (`arrays.EpochBatches`: epoch `e` a function of `(seed, e)` too),
    whatever `input_cache` says.
    """
    import math

    from tat_keras.data import arrays

    if arrays.is_array_folder(config.data_dir):
        return _array_inputs(config, first_epoch, validation)
    from tat_keras.data import pipeline

    if config.input_cache == "memory":
        wanted = {"train": config.max_train_examples}
        if validation:
            wanted.update(validation=None, test=None)
        decoded = _DECODED.get(config.data_dir, config.image_size, wanted,
                               lambda: check_memory_cache(config, validation))
        train = pipeline.dataset_from_arrays(
            decoded["train"], batch_size=config.batch_size, shuffle=True,
            augment=config.augment, seed=config.seed, first_epoch=first_epoch,
            epochs=sum(config.generation_epochs()))
        val = (pipeline.dataset_from_arrays(decoded["validation"], batch_size=256)
               if validation else None)
        return RunInputs(train, val,
                         math.ceil(len(decoded["train"]) / config.batch_size), decoded)
    train = pipeline.make_dataset(
        config.data_dir, "train", image_size=config.image_size,
        batch_size=config.batch_size, shuffle=True, augment=config.augment,
        seed=config.seed, max_examples=config.max_train_examples,
        deterministic=config.deterministic, input_cache=config.input_cache,
        cache_dir=config.cache_dir,
    )
    val = pipeline.make_dataset(
        config.data_dir, "validation", image_size=config.image_size, batch_size=256,
        input_cache=config.input_cache, cache_dir=config.cache_dir,
    ) if validation else None
    return RunInputs(train, val, None, {})


def set_determinism(config):
    """Seeds Python, NumPy and the backend; with `deterministic`, also makes
    TensorFlow's kernels deterministic (process-wide, slower)."""
    keras.utils.set_random_seed(config.seed)
    if config.deterministic and keras.backend.backend() == "tensorflow":
        import tensorflow as tf

        tf.config.experimental.enable_op_determinism()
