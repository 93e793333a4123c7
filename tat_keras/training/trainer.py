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
        # Teachers: models holding the drawn teachers' weights, never trained.
        self.teacher_models = []
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
        return self.ordinal_loss(targets["x"], probs["x"]) + self.ordinal_loss(
            targets["y"], probs["y"]
        )

    def _perturb(self, inputs, targets):
        batch, _ = adversarial.dwo_batch(
            self.student,
            inputs,
            targets,
            epsilon=self.dwo["epsilon"],
            step_size=self.dwo["step_size"],
            steps=self.dwo["steps"],
            num_center_bins=self.dwo["num_center_bins"],
            original_fraction=self.dwo["original_fraction"],
            seed=self.adversary_seed,
        )
        return batch

    def train_step(self, data):
        inputs, gaze_cm = data[0], data[1]
        targets = self._targets(gaze_cm)
        if self.dwo is not None and self.dwo["original_fraction"] < 1.0:
            inputs = self._perturb(inputs, targets)
        teacher_probs = self._teacher_probs(inputs) if self.active_teachers else None

        with tf.GradientTape() as tape:
            features = self.feature_extractor(inputs, training=True)
            probs = {key: head(features) for key, head in self.heads.items()}
            hard_loss = self._ordinal(targets, probs)
            loss = self.lambda_hard * hard_loss
            if self.mixup is not None:
                mixed_features, mixed_targets = self.mixup(features, targets, training=True)
                mixed_probs = {k: head(mixed_features) for k, head in self.heads.items()}
                mix_loss = self._ordinal(mixed_targets, mixed_probs)
                loss = loss + self.lambda_mix * mix_loss
            if teacher_probs is not None and self.lambda_teacher > 0:
                teacher_loss = self._ordinal(teacher_probs, probs)
                loss = loss + self.lambda_teacher * teacher_loss

        variables = self.student.trainable_variables
        gradients = tape.gradient(loss, variables)
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
