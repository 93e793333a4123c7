"""The iTracker-style baseline: L2 regression of the gaze in cm.

Same crops and trunk as `GazeNet` (three branches up to the 128-D final
feature); instead of two ordinal heads, one linear layer predicts `(x, y)`
in cm, trained with the squared Euclidean error. It isolates what the
ordinal formulation (Eq. 1-4) adds over plain regression, everything else
held fixed (`TrainConfig(head="regression")`, standard scheme only).

Example:

>>> model = GazeRegressor(width_multiplier=0.125)
>>> batch = {n: np.zeros((2, 64, 64, 3), "float32") for n in models.INPUT_NAMES}
>>> model.predict_cm(batch).shape
(2, 2)
"""

import keras
import numpy as np
from keras import ops

from tat_keras import models


@keras.saving.register_keras_serializable(package="tat_keras")
class GazeRegressor(keras.Model):
    """`GazeNet`'s trunk with a linear `(x, y)` output in cm.

    Args:
        image_size: int. Height and width of each crop.
        width_multiplier: float. Scales every convolution's channel count.
        share_eye_weights: bool. Both eyes go through one eye branch.
        batch_norm_momentum: float. Momentum of the batch-norm statistics.
        center_x: float. Initial output bias of x in cm (the label center).
        center_y: float. Initial output bias of y in cm.
        name: str.

    Inputs: as `GazeNet`. Output: float32 `(batch, 2)`, the gaze in cm.
    """

    def __init__(self, image_size=64, width_multiplier=1.0, share_eye_weights=True,
                 batch_norm_momentum=models.BN_MOMENTUM, center_x=0.0, center_y=0.0,
                 name="gaze_regressor", **kwargs):
        for arg, value in (("center_x", center_x), ("center_y", center_y)):
            if not np.isfinite(value):
                raise ValueError(f"{arg} must be finite. Received: {arg}={value}")
        # === Layers and functional model ===
        trunk = models.GazeNet(
            image_size=image_size, width_multiplier=width_multiplier,
            x_bins=1, y_bins=1, share_eye_weights=share_eye_weights,
            batch_norm_momentum=batch_norm_momentum,
        )
        feature = trunk.get_layer("final_feature").output
        gaze = keras.layers.Dense(
            2, name="gaze_cm",
            bias_initializer=keras.initializers.Constant([center_x, center_y]),
        )(feature)
        super().__init__(inputs=trunk.inputs, outputs=gaze, name=name, **kwargs)

        # === Config ===
        self.image_size = int(image_size)
        self.width_multiplier = float(width_multiplier)
        self.share_eye_weights = bool(share_eye_weights)
        self.batch_norm_momentum = float(batch_norm_momentum)
        self.center_x = float(center_x)
        self.center_y = float(center_y)

    @property
    def conv_layer_names(self):
        """Names of every `Conv2D` layer, in graph order."""
        return [layer.name for layer in self.layers
                if isinstance(layer, keras.layers.Conv2D)]

    def decode(self, outputs):
        """The gaze in cm: the outputs themselves (same API as `GazeNet`)."""
        return outputs

    def predict_cm(self, inputs, batch_size=256):
        """Predicted gaze in cm, a NumPy array `(batch, 2)`."""
        return np.asarray(self.predict(inputs, batch_size=batch_size, verbose=0))

    def get_config(self):
        return {
            "image_size": self.image_size,
            "width_multiplier": self.width_multiplier,
            "share_eye_weights": self.share_eye_weights,
            "batch_norm_momentum": self.batch_norm_momentum,
            "center_x": self.center_x,
            "center_y": self.center_y,
            "name": self.name,
        }

    @classmethod
    def from_config(cls, config):
        return cls(**config)


def squared_error(gaze_true, gaze_pred):
    """Mean over the batch of the squared Euclidean error, in cm^2."""
    return ops.mean(ops.sum(ops.square(gaze_pred - gaze_true), axis=-1))


class RegressionTrainer(keras.Model):
    """Trains a `GazeRegressor` with the squared error; logs like `GazeTrainer`.

    Logs `loss`, `hard_loss` (the same squared error, so that histories and
    curves read alike) and `error_cm` (mean Euclidean error).

    Args:
        student: `GazeRegressor`.
    """

    def __init__(self, student, **kwargs):
        super().__init__(**kwargs)
        if not isinstance(student, GazeRegressor):
            raise ValueError(
                f"student must be a GazeRegressor. Received: {type(student).__name__}")
        self.student = student
        self.loss_tracker = keras.metrics.Mean(name="loss")
        self.hard_tracker = keras.metrics.Mean(name="hard_loss")
        self.error_tracker = keras.metrics.Mean(name="error_cm")

    @property
    def metrics(self):
        return [self.loss_tracker, self.hard_tracker, self.error_tracker]

    def set_teachers(self, weight_lists):
        """The baseline has no teachers: only an empty list is accepted."""
        if weight_lists:
            raise ValueError("The regression baseline trains without teachers. "
                             f"Received: {len(weight_lists)} teachers")

    def call(self, inputs, training=False):
        return self.student(inputs, training=training)

    def _update(self, gaze_cm, gaze_pred, loss):
        self.loss_tracker.update_state(loss)
        self.hard_tracker.update_state(loss)
        self.error_tracker.update_state(
            ops.sqrt(ops.sum(ops.square(gaze_pred - gaze_cm), axis=-1)))
        return {m.name: m.result() for m in self.metrics}

    def train_step(self, data):
        import tensorflow as tf  # The baseline trains on TensorFlow only.

        inputs, gaze_cm = data[0], data[1]
        with tf.GradientTape() as tape:
            gaze_pred = self.student(inputs, training=True)
            loss = squared_error(gaze_cm, gaze_pred)
        variables = self.student.trainable_variables
        self.optimizer.apply(tape.gradient(loss, variables), variables)
        return self._update(gaze_cm, gaze_pred, loss)

    def test_step(self, data):
        inputs, gaze_cm = data[0], data[1]
        gaze_pred = self.student(inputs, training=False)
        return self._update(gaze_cm, gaze_pred, squared_error(gaze_cm, gaze_pred))
