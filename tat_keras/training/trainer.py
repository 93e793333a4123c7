"""The training model: Eq. 9 of TAT, with optional DwO perturbations.

`GazeTrainer` wraps a `GazeNet` student. Its `train_step` only wires the
pieces together:

1. ordinal targets from the gaze labels (Eq. 1);
2. with DwO, a share of the batch replaced by PGD perturbations
   (Eq. 13-14, `tat_keras.adversarial`);
3. one forward pass of the student to its 128-D final feature, then the
   ordinal heads on that feature and on its mixup (Eq. 8,
   `tat_keras.mixup`);
4. `lambda_hard * L_hard + lambda_mix * L_mix + lambda_teacher * L_teacher`
   (Eq. 9) with the ordinal loss, the teacher's probabilities as soft
   targets (Eq. 4).

Under a `tf.distribute` strategy with several replicas
(`distributed.fit_in_loop`) the same step runs on every replica and
computes what one device computes on the whole global batch: the random
draws of DwO and mixup are made for the global batch and each replica takes
its rows (mixup partners come from every replica through `all_gather`), and
each replica's loss is weighted by its share of the global batch before the
optimizer sums the gradients (`tat_keras.training.distributed`).

On Keras's JAX backend the same pieces make a stateless step
(`tat_keras.training.jax_step`): the random draws, the adversary, the
teachers and the Eq. 9 losses are the methods below, run on the step's
variable values, with gradients from `jax.value_and_grad`. For the same
weights, batch and draws both backends compute the same step.

The student is what gets saved and exported; the trainer itself is a
training-time wrapper.
"""

import contextlib

import keras
from keras import ops

from tat_keras import adversarial
from tat_keras import metrics as gaze_metrics
from tat_keras import mixup as feature_mixup
from tat_keras import models
from tat_keras import ordinal


class GazeTrainer(keras.Model):
    """Trains a `GazeNet` with hard, mixup and teacher ordinal losses (Eq. 9).

    Args:
        student: `GazeNet`. The network being trained.
        lambda_hard: float. Weight of the ordinal loss on the labels.
        lambda_mix: float. Weight of the ordinal loss on mixed features and
            labels; 0 turns mixup off.
        lambda_teacher: float. Weight of the ordinal loss against the
            teacher's probabilities; used only while a teacher is set.
        dwo: dict or None. DwO settings: `epsilon`, `step_size`, `steps`,
            `num_center_bins` (None for all bins) and `original_fraction`.
        seed: int. Seed of mixup and of the choice of perturbed samples.

    Example:

    >>> import numpy as np
    >>> student = models.GazeNet(width_multiplier=0.125, x_bins=8, y_bins=8)
    >>> trainer = GazeTrainer(student, lambda_mix=0.4)
    >>> trainer.compile(optimizer="adam")
    >>> batch = {n: np.zeros((4, 64, 64, 3), "float32") for n in models.INPUT_NAMES}
    >>> history = trainer.fit(batch, np.zeros((4, 2), "float32"), verbose=0)
    """

    def __init__(self, student, *, lambda_hard=1.0, lambda_mix=0.0,
                 lambda_teacher=0.0, dwo=None, seed=0, **kwargs):
        super().__init__(**kwargs)
        for name, value in (("lambda_hard", lambda_hard), ("lambda_mix", lambda_mix),
                            ("lambda_teacher", lambda_teacher)):
            if value < 0:
                raise ValueError(f"{name} must be >= 0. Received: {name}={value}")
        if dwo is not None:
            missing = {"epsilon", "step_size", "steps", "num_center_bins",
                       "original_fraction"} - set(dwo)
            if missing:
                raise ValueError(f"dwo settings miss {sorted(missing)}. Received: {dwo}")
        self.student = student
        self.bins = student.bins
        self.lambda_hard = float(lambda_hard)
        self.lambda_mix = float(lambda_mix)
        self.lambda_teacher = float(lambda_teacher)
        self.dwo = dict(dwo) if dwo else None
        # The final feature and the heads, for one backbone pass per step.
        self.feature_extractor = keras.Model(
            student.inputs, student.get_layer("final_feature").output,
            name="final_feature_extractor",
        )
        self.heads = {"x": student.get_layer("x"), "y": student.get_layer("y")}
        self.mixup = feature_mixup.FeatureMixup(seed=seed) if lambda_mix > 0 else None
        self.adversary_seed = keras.random.SeedGenerator(seed + 1)
        self.ordinal_loss = ordinal.OrdinalLoss()
        # Teachers: models holding the drawn teachers' weights, never trained
        # nor saved with the trainer. A plain list, out of Keras's tracking:
        # teachers join after the trainer is built (under a strategy, `fit`
        # builds it first and then refuses new state).
        object.__setattr__(self, "teacher_models", [])
        self.active_teachers = 0

        self.loss_tracker = keras.metrics.Mean(name="loss")
        self.hard_tracker = keras.metrics.Mean(name="hard_loss")
        self.mix_tracker = keras.metrics.Mean(name="mix_loss")
        self.teacher_tracker = keras.metrics.Mean(name="teacher_loss")
        self.error_tracker = gaze_metrics.GazeErrorCm(
            self.bins["x"], self.bins["y"], name="error_cm"
        )

    def build(self, input_shape=None):
        # Every variable exists from the constructor on (the student is
        # built; teachers join later, outside Keras's tracking).
        self.built = True

    @property
    def metrics(self):
        trackers = [self.loss_tracker, self.hard_tracker]
        if self.mixup is not None:
            trackers.append(self.mix_tracker)
        if self.lambda_teacher > 0:
            trackers.append(self.teacher_tracker)
        return trackers + [self.error_tracker]

    # Teachers ------------------------------------------------------------

    def set_teachers(self, weight_lists):
        """Loads the teachers that supervise the next epoch.

        Args:
            weight_lists: list of weight lists (from `get_weights()`); their
                mean probabilities are the soft targets. Empty: no teacher.
        """
        while len(self.teacher_models) < len(weight_lists):
            # Under a strategy, teacher weights are mirrored like the
            # student's, and teacher passes run on every replica.
            with _strategy_scope(self):
                teacher = models.GazeNet.from_config(
                    {**self.student.get_config(),
                     "name": f"teacher{len(self.teacher_models)}"}
                )
            teacher.trainable = False
            self.teacher_models.append(teacher)
        for teacher, weights in zip(self.teacher_models, weight_lists):
            teacher.set_weights(weights)
        if len(weight_lists) != self.active_teachers:
            self.active_teachers = len(weight_lists)
            # The number of teachers is part of the traced step.
            self.make_train_function(force=True)

    def _teacher_probs(self, inputs):
        teachers = self.teacher_models[: self.active_teachers]
        outputs = [teacher(inputs, training=False) for teacher in teachers]
        return {
            key: ops.stop_gradient(ops.mean(ops.stack([o[key] for o in outputs]), axis=0))
            for key in ("x", "y")
        }

    # Steps ---------------------------------------------------------------

    def call(self, inputs, training=False):
        return self.student(inputs, training=training)

    def _targets(self, gaze_cm):
        return {
            "x": self.bins["x"].encode(gaze_cm[:, 0]),
            "y": self.bins["y"].encode(gaze_cm[:, 1]),
        }

    def _ordinal(self, targets, probs):
        loss = self.ordinal_loss(targets["x"], probs["x"]) + self.ordinal_loss(
            targets["y"], probs["y"]
        )
        # Under a strategy a Keras `Loss` divides its value by the number of
        # replicas (for `compile`'s summed losses); this step weights the
        # replicas itself (`train_step`), so it takes the plain mean back.
        replicas = _num_replicas()
        return loss if replicas == 1 else loss * float(replicas)

    def _global_rows(self, batch_size):
        """`(global batch size, first row)` of this replica's part of the step.

        The global batch is the replicas' batches in replica order; on one
        replica it is the batch itself, `(batch_size, 0)`.
        """
        context = _replica_context()
        if context is None:
            return batch_size, 0
        sizes = context.all_gather(ops.reshape(batch_size, (1,)), axis=0)
        first = ops.sum(sizes[: context.replica_id_in_sync_group])
        return ops.sum(sizes), first

    def draw_step_randomness(self, batch_size):
        """The random draws of one step, for its (global) batch.

        The one place a step draws random numbers: DwO's original samples
        (`is_original`, from the trainer's adversary generator) and mixup's
        weights and partners (`alpha`, `permutation`, from the mixup
        layer's generator), each present only when its part of the scheme
        is on. Keras draws other numbers from the same seeds on TensorFlow
        and on JAX; a step given the same draws computes the same values
        on both.

        Args:
            batch_size: int or scalar int tensor. The global batch size.

        Returns:
            dict of tensors `(batch_size,)`.
        """
        draws = {}
        if self._perturbs():
            draws["is_original"] = adversarial.original_sample_mask(
                batch_size, self.dwo["original_fraction"], seed=self.adversary_seed)
        if self.mixup is not None:
            draws["alpha"], draws["permutation"] = self.mixup.sample(batch_size)
        return draws

    def _perturbs(self):
        return self.dwo is not None and self.dwo["original_fraction"] < 1.0

    def _perturb(self, inputs, targets, draws, rows):
        """DwO: the samples drawn out of the global batch, PGD-perturbed."""
        inputs = {name: ops.cast(value, "float32") for name, value in inputs.items()}
        if not self._perturbs():
            return inputs
        total, first = rows
        batch_size = ops.shape(targets["x"])[0]
        is_original = draws["is_original"][first: first + batch_size]
        num_replaced = None  # Counted from the mask (several replicas).
        if isinstance(total, int):
            # The shape is static (always on JAX): so is the subset's.
            num_replaced = total - adversarial.num_original_samples(
                total, self.dwo["original_fraction"])
        return adversarial.perturb_replaced(
            self.student, inputs, targets, is_original, num_replaced=num_replaced,
            epsilon=self.dwo["epsilon"], step_size=self.dwo["step_size"],
            steps=self.dwo["steps"], num_center_bins=self.dwo["num_center_bins"])

    def _mix(self, features, targets, draws, rows):
        """Feature mixup (Eq. 8) over the global batch, this replica's rows."""
        alpha, permutation = draws["alpha"], draws["permutation"]
        context = _replica_context()
        if context is None:
            mixed = feature_mixup.mix(ops.cast(features, self.mixup.compute_dtype),
                                      targets["x"], targets["y"], alpha, permutation)
            return mixed[0], {"x": mixed[1], "y": mixed[2]}
        total, first = rows
        mixed = feature_mixup.mix(
            *(context.all_gather(t, axis=0) for t in (features, targets["x"],
                                                       targets["y"])),
            alpha, permutation,
        )
        last = first + ops.shape(features)[0]
        return mixed[0][first:last], {"x": mixed[1][first:last],
                                      "y": mixed[2][first:last]}

    def compute_step_losses(self, inputs, targets, draws, teacher_probs, rows):
        """Eq. 9 on one batch: what the gradient of a train step is taken of.

        Runs the student in training mode (batch-norm statistics update).

        Args:
            inputs: dict of float32 inputs (after DwO).
            targets: dict `{"x", "y"}` of ordinal label vectors.
            draws: dict from `draw_step_randomness`.
            teacher_probs: dict `{"x", "y"}` of teacher probabilities, or None.
            rows: `(global batch size, first row)` of this replica.

        Returns:
            `(loss, terms, probs)`: the weighted sum, a dict of its terms
            (`hard_loss`, `mix_loss`, `teacher_loss` where present) and the
            student's probabilities.
        """
        features = self.feature_extractor(inputs, training=True)
        probs = {key: head(features) for key, head in self.heads.items()}
        terms = {"hard_loss": self._ordinal(targets, probs)}
        loss = self.lambda_hard * terms["hard_loss"]
        if self.mixup is not None:
            mixed_features, mixed_targets = self._mix(features, targets, draws, rows)
            mixed_probs = {k: head(mixed_features) for k, head in self.heads.items()}
            terms["mix_loss"] = self._ordinal(mixed_targets, mixed_probs)
            loss = loss + self.lambda_mix * terms["mix_loss"]
        if teacher_probs is not None and self.lambda_teacher > 0:
            terms["teacher_loss"] = self._ordinal(teacher_probs, probs)
            loss = loss + self.lambda_teacher * terms["teacher_loss"]
        return loss, terms, probs

    def prepare_step(self, data):
        """What a train step computes before its gradient.

        Returns:
            `(inputs, gaze_cm, targets, draws, teacher_probs, rows)`: the
            inputs after DwO, the labels and their ordinal vectors, the
            step's random draws, the teachers' probabilities (None without
            a teacher) and this replica's rows of the global batch.
        """
        inputs, gaze_cm = data[0], data[1]
        targets = self._targets(gaze_cm)
        rows = self._global_rows(ops.shape(gaze_cm)[0])
        draws = self.draw_step_randomness(rows[0])
        inputs = self._perturb(inputs, targets, draws, rows)
        teacher_probs = self._teacher_probs(inputs) if self.active_teachers else None
        return inputs, gaze_cm, targets, draws, teacher_probs, rows

    def update_trackers(self, loss, terms, gaze_cm, probs):
        """Updates the loss and error trackers; returns the logs."""
        self.loss_tracker.update_state(loss)
        self.hard_tracker.update_state(terms["hard_loss"])
        if self.mixup is not None:
            self.mix_tracker.update_state(terms["mix_loss"])
        if self.lambda_teacher > 0:
            self.teacher_tracker.update_state(terms.get("teacher_loss", 0.0))
        self.error_tracker.update_state(gaze_cm, probs)
        return {m.name: m.result() for m in self.metrics}

    def train_step(self, *args):
        if keras.backend.backend() == "jax":
            from tat_keras.training import jax_step

            return jax_step.train_step(self, *args)
        import tensorflow as tf

        (data,) = args
        inputs, gaze_cm, targets, draws, teacher_probs, rows = self.prepare_step(data)
        with tf.GradientTape() as tape:
            loss, terms, probs = self.compute_step_losses(
                inputs, targets, draws, teacher_probs, rows)
            # The optimizer sums the replicas' gradients: weighting each
            # replica's mean loss by its share gives the global batch's mean.
            scaled_loss = loss if _replica_context() is None else (
                loss * tf.cast(tf.shape(gaze_cm)[0], loss.dtype)
                / tf.cast(rows[0], loss.dtype))

        variables = self.student.trainable_variables
        gradients = tape.gradient(scaled_loss, variables)
        self.optimizer.apply(gradients, variables)
        return self.update_trackers(loss, terms, gaze_cm, probs)

    def make_train_function(self, force=False):
        if keras.backend.backend() != "jax":
            return super().make_train_function(force)
        if self.train_function is not None and not force:
            return None
        from tat_keras.training import jax_step

        self.train_function = jax_step.make_train_function(self)
        return None

    def test_logs(self, data):
        """Updates the trackers with one validation batch; returns the logs."""
        inputs, gaze_cm = data[0], data[1]
        probs = self.student(inputs, training=False)
        hard_loss = self._ordinal(self._targets(gaze_cm), probs)
        self.loss_tracker.update_state(hard_loss)
        self.hard_tracker.update_state(hard_loss)
        self.error_tracker.update_state(gaze_cm, probs)
        return {m.name: m.result() for m in (self.loss_tracker, self.hard_tracker,
                                             self.error_tracker)}

    def test_step(self, *args):
        if keras.backend.backend() == "jax":
            from tat_keras.training import jax_step

            return jax_step.test_step(self, *args)
        (data,) = args
        return self.test_logs(data)


def _tensorflow():
    """TensorFlow when it is Keras's backend, else None (nothing to import)."""
    if keras.backend.backend() != "tensorflow":
        return None
    import tensorflow as tf

    return tf


def _num_replicas():
    tf = _tensorflow()
    return 1 if tf is None else tf.distribute.get_strategy().num_replicas_in_sync


def _replica_context():
    """The replica context of a step run by several replicas, else None."""
    tf = _tensorflow()
    context = None if tf is None else tf.distribute.get_replica_context()
    if context is None or context.num_replicas_in_sync == 1:
        return None
    return context


def _strategy_scope(model):
    """The scope of the model's `tf.distribute` strategy (TensorFlow only)."""
    strategy = getattr(model, "distribute_strategy", None)
    return contextlib.nullcontext() if strategy is None else strategy.scope()
