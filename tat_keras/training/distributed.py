"""Training on several devices or machines with `tf.distribute`.

The run's math does not depend on how many replicas compute it: the
`--batch_size` of a run is the global batch of a step, each of the `R`
replicas computes `batch_size / R` rows of it, and `GazeTrainer.train_step`
draws DwO's and mixup's random numbers for the global batch and weights each
replica's loss by its share, so that the summed gradients are those of the
global batch (`trainer.py`). Batch norm statistics are synchronized across
replicas during training (`synchronize_batch_norm`). A run therefore trains
the same network on one device as on two, up to float round-off
(`tests/test_distributed.py` checks it).

Learning rate: since the global batch is the flag, changing the number of
replicas at a fixed `--batch_size` needs no change of `--learning_rate`.
Raising `--batch_size` to fill more accelerators is a change of the run:
with Adam, scale the learning rate by the square root of the batch ratio
(`lr = 1e-3 * sqrt(batch_size / 64)` from the paper's 1e-3 at 64) and keep
the warm-up epoch; nothing scales it automatically.

Strategies (`STRATEGIES`):

- `default`: one device, `Model.fit`;
- `mirrored`: `MirroredStrategy` over the local GPUs (or the logical CPU
  devices of `split_cpu`);
- `multi_worker`: `MultiWorkerMirroredStrategy`, one process per machine,
  the cluster read from the `TF_CONFIG` environment variable.

With one replica a run trains with `Model.fit`. With several, `fit_in_loop`
runs the same `train_step`, callbacks, teacher bank and mini-generations in
a loop of its own: Keras 3's `fit` does not run under
`MultiWorkerMirroredStrategy` (keras issue 20585), and under
`MirroredStrategy` it draws a batch from a fresh iterator to build the
model before training, which advances a reshuffling dataset by one epoch.
Each worker reads its shard of every global batch (`tf.data` autosharding
by data), evaluates the whole validation split (all workers take the same
teacher decisions), and performs the weight surgery of a rebirth itself,
deterministically, in cross-replica context.

Settings: what several replicas or workers change in a run (no XLA step,
one dataset per epoch instead of the memory cache, one order of the data
on every worker, the ordinal head only) is decided by
`TrainConfig.resolved(placement)` and recorded in `config.json`; the code
here reads those settings and changes none.

Outputs: the chief writes the run's outputs into `model_dir`; worker `i`
(not the chief) writes its own under `model_dir/workers/<i>/` (`Placement`).
Every worker resumes from the chief's checkpoint, so a restarted cluster
continues from one epoch, with one teacher list.

Example:

>>> placement = Placement()  # One process: the chief.
>>> placement.output_dir("runs/x"), placement.is_chief
('runs/x', True)
"""

import contextlib
import dataclasses
import json
import math
import os

STRATEGIES = ("default", "mirrored", "multi_worker")


def split_cpu(count):
    """Splits the host CPU into `count` logical devices (before TF starts).

    For running `mirrored` on a machine without GPUs (tests, the CPU
    measurements of BUILD_NOTES.md): each logical device is one replica.

    Args:
        count: int >= 1.

    Raises:
        ValueError: `count` below 1.
        RuntimeError: TensorFlow has already initialized its devices.
    """
    if isinstance(count, bool) or not isinstance(count, int) or count < 1:
        raise ValueError(f"count must be an integer >= 1. Received: count={count!r}")
    import tensorflow as tf

    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(
        cpu, [tf.config.LogicalDeviceConfiguration() for _ in range(count)])


def make_strategy(name):
    """The `tf.distribute.Strategy` called `name` (one of `STRATEGIES`).

    `mirrored` takes every local GPU, or, on a machine without one, every
    logical CPU device (`split_cpu`). `multi_worker` reads the cluster from
    `TF_CONFIG` and must be created before any other TensorFlow operation
    of the process. On Keras's JAX backend there is no strategy: `default`
    gives None (one device).

    Raises:
        ValueError: an unknown name, `multi_worker` without `TF_CONFIG`, or
            a strategy other than `default` on the JAX backend.
    """
    if name not in STRATEGIES:
        raise ValueError(f"strategy must be one of {STRATEGIES}. Received: "
                         f"strategy={name!r}")
    import keras

    if keras.backend.backend() != "tensorflow":
        if name == "default":
            return None
        raise ValueError(
            f"strategy={name!r} runs through tf.distribute, on the tensorflow backend "
            f"only; Keras runs on {keras.backend.backend()}. Train on one device "
            "(--strategy=default) or with --backend=tensorflow.")
    import tensorflow as tf

    if name == "default":
        return tf.distribute.get_strategy()
    if name == "mirrored":
        devices = tf.config.list_logical_devices("GPU") or tf.config.list_logical_devices(
            "CPU")
        return tf.distribute.MirroredStrategy([d.name for d in devices])
    cluster = _tf_config()
    if not cluster.get("cluster"):
        raise ValueError(
            "strategy='multi_worker' reads the cluster from the TF_CONFIG environment "
            "variable, which is not set. Set it on every machine, e.g. TF_CONFIG="
            '\'{"cluster": {"worker": ["host0:12345", "host1:12345"]}, '
            '"task": {"type": "worker", "index": 0}}\' (see BUILD_NOTES.md).')
    return tf.distribute.MultiWorkerMirroredStrategy()


def _tf_config():
    try:
        return json.loads(os.environ.get("TF_CONFIG") or "{}")
    except json.JSONDecodeError as e:
        raise ValueError(f"TF_CONFIG is not valid JSON ({e}). "
                         f"Received: {os.environ['TF_CONFIG']!r}") from None


@dataclasses.dataclass(frozen=True)
class Placement:
    """Where this process stands in a run: which worker, how many replicas.

    Attributes:
        task_type: str. `chief` or `worker` (`worker` for one process).
        task_id: int. Index of the task within its type.
        is_chief: bool. The chief writes the run's outputs and checkpoints.
        num_workers: int. Processes in the cluster.
        num_replicas: int. Replicas in sync, over all workers.
        accelerator: bool. This machine has a GPU (XLA's default follows it).

    `TrainConfig.resolved(placement)` turns these into the run's settings.
    """

    task_type: str = "worker"
    task_id: int = 0
    is_chief: bool = True
    num_workers: int = 1
    num_replicas: int = 1
    accelerator: bool = False

    @classmethod
    def of(cls, strategy):
        """The placement of this process under `strategy` (None: one device
        of Keras's JAX backend)."""
        if strategy is None:
            import jax

            return cls(accelerator=jax.default_backend() != "cpu")
        import tensorflow as tf

        accelerator = bool(tf.config.list_physical_devices("GPU"))
        resolver = getattr(strategy, "cluster_resolver", None)
        replicas = int(strategy.num_replicas_in_sync)
        if resolver is None or not resolver.cluster_spec().as_dict():
            return cls(num_replicas=replicas, accelerator=accelerator)
        spec = resolver.cluster_spec().as_dict()
        task_type, task_id = resolver.task_type, int(resolver.task_id)
        is_chief = task_type == "chief" or (
            task_type == "worker" and task_id == 0 and "chief" not in spec)
        workers = sum(len(spec.get(kind, [])) for kind in ("chief", "worker"))
        return cls(task_type, task_id, is_chief, workers, replicas, accelerator)

    @property
    def multi_worker(self):
        return self.num_workers > 1

    def output_dir(self, model_dir):
        """`model_dir` for the chief, `model_dir/workers/<i>` for worker `i`."""
        if self.is_chief:
            return model_dir
        return os.path.join(model_dir, "workers", str(self.task_id))


def scope(strategy):
    """`strategy.scope()`, or a scope that does nothing for None (JAX)."""
    return contextlib.nullcontext() if strategy is None else strategy.scope()


def steps_per_epoch(num_examples, batch_size, placement):
    """Training steps per epoch: a last partial batch counts on one replica
    only (with several, it is dropped; see `full_batches`).

    Example:

    >>> steps_per_epoch(150, 16, Placement()), steps_per_epoch(150, 16, Placement(num_replicas=2))
    (10, 9)
    """
    if placement.num_replicas == 1:
        return math.ceil(num_examples / batch_size)
    if num_examples < batch_size:
        raise ValueError(
            f"With {placement.num_replicas} replicas every step takes a full global "
            f"batch, but the training set has {num_examples} examples for "
            f"batch_size={batch_size}. Lower --batch_size.")
    return num_examples // batch_size


def synchronize_batch_norm(model, synchronized=True):
    """Sets whether the batch norms of `model` share batch statistics.

    With several replicas, training-mode batch norm then normalizes with
    the global batch's mean and variance (an all-reduce per layer) instead
    of each replica's, as on one device. The setting is not part of the
    saved model.

    Args:
        model: Keras model; nested models are searched too.
        synchronized: bool.

    Returns:
        int. Number of batch-norm layers set.
    """
    import keras

    count = 0
    for layer in model._flatten_layers(include_self=False, recursive=True):
        if isinstance(layer, keras.layers.BatchNormalization):
            layer.synchronized = bool(synchronized)
            count += 1
    return count


def full_batches(dataset, batch_size, steps):
    """Full global batches of `dataset`, ready to split over replicas and workers.

    The last partial batch is dropped, so every replica gets
    `batch_size / replicas` rows each step. Across workers each reads the
    same (ordered) dataset and keeps its part of every batch (autosharding
    by data: the inputs need not be split into as many files as workers).

    Args:
        dataset: `tf.data.Dataset` of batches, the same order on every worker.
        batch_size: int. The global batch.
        steps: int. Full batches in `dataset` (`steps_per_epoch`); stated
            as the cardinality when `dataset` states its own, since Keras's
            epoch iterator makes its iterators according to it.

    Returns:
        `tf.data.Dataset` of full batches, autosharded by data when
        `strategy.experimental_distribute_dataset` distributes it.
    """
    import tensorflow as tf

    known = int(dataset.cardinality()) >= 0
    dataset = dataset.rebatch(batch_size, drop_remainder=True)
    if known:
        dataset = dataset.apply(tf.data.experimental.assert_cardinality(steps))
    options = tf.data.Options()
    options.experimental_distribute.auto_shard_policy = (
        tf.data.experimental.AutoShardPolicy.DATA)
    return dataset.with_options(options)


def fit_in_loop(trainer, train_dataset, validation_data, *, batch_size, epochs,
                initial_epoch, steps_per_epoch, callbacks, verbose=1):
    """`trainer.fit` on several replicas: the same step, in a loop.

    Runs `trainer.train_step` on every replica (`strategy.run`) with the
    callbacks of `fit` (mini-generations, checkpoint, TensorBoard) called at
    the same points, and evaluates `trainer.test_step` on the whole
    validation split on every worker after each epoch (`val_` logs).

    Args:
        trainer: `GazeTrainer`, built and compiled under its strategy.
        train_dataset: `tf.data.Dataset` of training batches, ordered alike
            on every worker (`full_batches`).
        validation_data: `tf.data.Dataset` of validation batches.
        batch_size: int. The global batch.
        epochs: int. Last epoch (exclusive), as `fit`'s `epochs`.
        initial_epoch: int. First epoch to run.
        steps_per_epoch: int. Full global batches per epoch.
        callbacks: list of `keras.callbacks.Callback`.
        verbose: 0 or 1. A progress bar.

    Returns:
        dict. The last epoch's logs.
    """
    import keras
    import tensorflow as tf

    strategy = trainer.distribute_strategy
    if not trainer.optimizer.built:
        # Variables are created outside the traced step (as `fit` does).
        with strategy.scope():
            trainer.optimizer.build(trainer.student.trainable_variables)
    # `fit`'s own epoch iterator (Keras 3.15): it makes its iterators of the
    # (reshuffling) dataset at the same points as `fit`, so that a run on
    # several replicas sees the batches a run on one device sees.
    from keras.src.backend.tensorflow.trainer import TFEpochIterator

    epoch_iterator = TFEpochIterator(
        x=full_batches(train_dataset, batch_size, steps_per_epoch),
        distribute_strategy=strategy)
    callback_list = keras.callbacks.CallbackList(
        callbacks, add_progbar=bool(verbose), model=trainer, verbose=verbose,
        epochs=epochs, steps=steps_per_epoch)
    # One traced step per teacher count (the count is part of the step).
    steps = {}

    def step_function():
        if trainer.active_teachers not in steps:
            @tf.function
            def step(iterator):
                strategy.run(trainer.train_step, args=(next(iterator),))
                return {m.name: m.result() for m in trainer.metrics}

            steps[trainer.active_teachers] = step
        return steps[trainer.active_teachers]

    test_step = tf.function(trainer.test_step)
    trainer.stop_training = False
    logs = {}
    callback_list.on_train_begin()
    for epoch in range(initial_epoch, epochs):
        _reset(trainer)
        callback_list.on_epoch_begin(epoch)
        step = step_function()
        with epoch_iterator.catch_stop_iteration():
            for batch, _, iterator in epoch_iterator:
                callback_list.on_train_batch_begin(batch)
                logs = _floats(step(iterator))
                callback_list.on_train_batch_end(batch, logs)
                if trainer.stop_training:
                    break
        _reset(trainer)
        val_logs = {}
        for batch in validation_data:
            val_logs = test_step(batch)
        logs = {**logs, **{f"val_{k}": v for k, v in _floats(val_logs).items()}}
        _reset(trainer)
        callback_list.on_epoch_end(epoch, logs)
        if trainer.stop_training:
            break
    callback_list.on_train_end(logs)
    return logs


def _reset(trainer):
    for metric in trainer.metrics:
        metric.reset_state()


def _floats(logs):
    return {name: float(value) for name, value in logs.items()}

