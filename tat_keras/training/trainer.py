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

The student is what gets saved and exported; the trainer itself is a
training-time wrapper.
"""

import keras
import tensorflow as tf
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
            with self.distribute_strategy.scope():
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
        replicas = tf.distribute.get_strategy().num_replicas_in_sync
        return loss if replicas == 1 else loss * float(replicas)

    def _global_rows(self, batch_size):
        """`(global batch size, first row)` of this replica's part of the step.

        The global batch is the replicas' batches in replica order; on one
        replica it is the batch itself, `(batch_size, 0)`.
        """
        context = _replica_context()
        if context is None:
            return batch_size, 0
        sizes = context.all_gather(tf.reshape(batch_size, [1]), axis=0)
        first = tf.reduce_sum(sizes[: context.replica_id_in_sync_group])
        return tf.reduce_sum(sizes), first

    def _perturb(self, inputs, targets, rows):
        """DwO: the samples drawn out of the global batch, PGD-perturbed."""
        total, first = rows
        batch_size = tf.shape(targets["x"])[0]
        is_original = adversarial.original_sample_mask(
            total, self.dwo["original_fraction"], seed=self.adversary_seed
        )[first: first + batch_size]
        replaced = tf.where(tf.logical_not(is_original))
        inputs = {name: tf.cast(value, tf.float32) for name, value in inputs.items()}
        # Every sample of the subset is perturbed (Org.% 0 within it).
        perturbed, _ = adversarial.dwo_batch(
            self.student,
            {name: tf.gather_nd(value, replaced) for name, value in inputs.items()},
            {key: tf.gather_nd(value, replaced) for key, value in targets.items()},
            epsilon=self.dwo["epsilon"],
            step_size=self.dwo["step_size"],
            steps=self.dwo["steps"],
            num_center_bins=self.dwo["num_center_bins"],
            original_fraction=0.0,
            seed=0,
        )
        return {name: tf.tensor_scatter_nd_update(value, replaced, perturbed[name])
                for name, value in inputs.items()}

    def _mix(self, features, targets, rows):
        """Feature mixup (Eq. 8) over the global batch, this replica's rows."""
        context = _replica_context()
        if context is None:
            return self.mixup(features, targets, training=True)
        total, first = rows
        alpha, permutation = self.mixup.sample(total)
        mixed = feature_mixup.mix(
            *(context.all_gather(t, axis=0) for t in (features, targets["x"],
                                                       targets["y"])),
            alpha, permutation,
        )
        last = first + tf.shape(features)[0]
        return mixed[0][first:last], {"x": mixed[1][first:last],
                                      "y": mixed[2][first:last]}

    def train_step(self, data):
        inputs, gaze_cm = data[0], data[1]
        targets = self._targets(gaze_cm)
        batch_size = tf.shape(gaze_cm)[0]
        rows = self._global_rows(batch_size)
        if self.dwo is not None and self.dwo["original_fraction"] < 1.0:
            inputs = self._perturb(inputs, targets, rows)
        teacher_probs = self._teacher_probs(inputs) if self.active_teachers else None

        with tf.GradientTape() as tape:
            features = self.feature_extractor(inputs, training=True)
            probs = {key: head(features) for key, head in self.heads.items()}
            hard_loss = self._ordinal(targets, probs)
            loss = self.lambda_hard * hard_loss
            if self.mixup is not None:
                mixed_features, mixed_targets = self._mix(features, targets, rows)
                mixed_probs = {k: head(mixed_features) for k, head in self.heads.items()}
                mix_loss = self._ordinal(mixed_targets, mixed_probs)
                loss = loss + self.lambda_mix * mix_loss
            if teacher_probs is not None and self.lambda_teacher > 0:
                teacher_loss = self._ordinal(teacher_probs, probs)
                loss = loss + self.lambda_teacher * teacher_loss
            # The optimizer sums the replicas' gradients: weighting each
            # replica's mean loss by its share gives the global batch's mean.
            scaled_loss = loss if _replica_context() is None else (
                loss * tf.cast(batch_size, loss.dtype) / tf.cast(rows[0], loss.dtype))

        variables = self.student.trainable_variables
        gradients = tape.gradient(scaled_loss, variables)
        self.optimizer.apply(gradients, variables)

        self.loss_tracker.update_state(loss)
        self.hard_tracker.update_state(hard_loss)
        if self.mixup is not None:
            self.mix_tracker.update_state(mix_loss)
        if self.lambda_teacher > 0:
            self.teacher_tracker.update_state(
                teacher_loss if teacher_probs is not None else 0.0
            )
        self.error_tracker.update_state(gaze_cm, probs)
        return {m.name: m.result() for m in self.metrics}

    def test_step(self, data):
        inputs, gaze_cm = data[0], data[1]
        probs = self.student(inputs, training=False)
        hard_loss = self._ordinal(self._targets(gaze_cm), probs)
        self.loss_tracker.update_state(hard_loss)
        self.hard_tracker.update_state(hard_loss)
        self.error_tracker.update_state(gaze_cm, probs)
        return {m.name: m.result() for m in (self.loss_tracker, self.hard_tracker,
                                             self.error_tracker)}


def _replica_context():
    """The replica context of a step run by several replicas, else None."""
    context = tf.distribute.get_replica_context()
    if context is None or context.num_replicas_in_sync == 1:
        return None
    return context
