"""The three-branch ordinal gaze network (section 4.1 of Guo et al. 2019).

Each of the three inputs (face, left eye, right eye; 64x64 in the paper) goes
through a branch that follows the CASIA-WebFace network of Yi et al. (2014):
ten 3x3 convolutions `conv11` .. `conv52`, each followed by batch
normalization and ReLU, max pooling between the five stages, global average
pooling and a 128-D fully connected layer. The three 128-D vectors are
concatenated (384-D) and go through a 384x128 fully connected layer, the
"final feature" that feature mixup mixes (Eq. 8). Two ordinal heads (sigmoid)
give the bin probabilities of the horizontal (`x`) and vertical (`y`) gaze
coordinate.

Both eye inputs go through the same eye branch when `share_eye_weights` is
set (the default): the same layers are called twice. Pixels are normalized
inside the model, so inputs are float pixels in [0, 255] and the DwO
perturbation budget (epsilon = 3) is in pixel units.

The graph is written once, in `gaze_net_graph`, against a `layers` module
argument, so that the quantization-aware training bridge can build the very
same architecture with `tf_keras.layers`.
"""

import numbers

import keras
import numpy as np

from tat_keras import ordinal
from tat_keras.crops import INPUT_NAMES

# (name, filters at width 1.0) of the CASIA-WebFace convolutions; a pooling
# layer follows every stage but the last, which is globally averaged.
CASIA_STAGES = (
    (("conv11", 32), ("conv12", 64)),
    (("conv21", 64), ("conv22", 128)),
    (("conv31", 96), ("conv32", 192)),
    (("conv41", 128), ("conv42", 256)),
    (("conv51", 160), ("conv52", 320)),
)
CONV_NAMES = tuple(name for stage in CASIA_STAGES for name, _ in stage)
BRANCH_FEATURES = 128
FINAL_FEATURES = 128
BN_EPSILON = 1e-3
# Pixels in [0, 255] are mapped to [-1, 1]: x * PIXEL_SCALE + PIXEL_OFFSET.
PIXEL_SCALE = 1.0 / 127.5
PIXEL_OFFSET = -1.0
# Keras's default batch-norm momentum (0.99) lets the moving statistics trail
# the weights for a few hundred steps, which is most of a CPU-sized run and
# of each mini-generation after a rebirth; 0.9 (PyTorch's default, 0.1 in its
# convention) keeps them close.
BN_MOMENTUM = 0.9


def scaled_filters(filters, width_multiplier):
    """Channel count of a convolution at `width_multiplier` (at least 4)."""
    return max(4, int(round(filters * width_multiplier)))


def _branch_layers(layers, prefix, width_multiplier, batch_norm_momentum, dtype):
    """The layers of one CASIA-WebFace branch, named `{prefix}_conv11` etc."""
    stages = []
    for stage in CASIA_STAGES:
        blocks = []
        for conv_name, filters in stage:
            suffix = conv_name[len("conv"):]
            blocks.append(
                (
                    layers.Conv2D(
                        scaled_filters(filters, width_multiplier),
                        3,
                        padding="same",
                        use_bias=False,
                        name=f"{prefix}_{conv_name}",
                        **dtype,
                    ),
                    layers.BatchNormalization(
                        momentum=batch_norm_momentum,
                        epsilon=BN_EPSILON,
                        name=f"{prefix}_bn{suffix}",
                        **dtype,
                    ),
                    layers.ReLU(name=f"{prefix}_relu{suffix}", **dtype),
                )
            )
        stages.append(blocks)
    pools = [
        layers.MaxPooling2D(2, name=f"{prefix}_pool{i + 1}", **dtype)
        for i in range(len(CASIA_STAGES) - 1)
    ]
    head = (
        layers.GlobalAveragePooling2D(name=f"{prefix}_gap", **dtype),
        layers.Dense(
            BRANCH_FEATURES, activation="relu", name=f"{prefix}_fc", **dtype
        ),
    )
    return stages, pools, head


def _apply_branch(branch, x):
    stages, pools, (gap, fc) = branch
    for i, blocks in enumerate(stages):
        for conv, bn, relu in blocks:
            x = relu(bn(conv(x)))
        if i < len(pools):
            x = pools[i](x)
    return fc(gap(x))


def gaze_net_graph(
    layers,
    *,
    image_size=64,
    width_multiplier=1.0,
    x_bins=133,
    y_bins=133,
    share_eye_weights=True,
    normalize_pixels=True,
    batch_norm_momentum=BN_MOMENTUM,
    dtype=None,
    head_dtype=None,
):
    """Builds the network's graph with the given `layers` module.

    Args:
        layers: module. `keras.layers`, or `tf_keras.layers` for the
            quantization-aware training bridge.
        image_size: int. Height and width of each crop.
        width_multiplier: float. Scales every convolution's channel count.
        x_bins: int. Number of ordinal bins of the horizontal coordinate.
        y_bins: int. Number of ordinal bins of the vertical coordinate.
        share_eye_weights: bool. Whether both eyes use the same branch.
        normalize_pixels: bool. Whether a `Rescaling` layer maps [0, 255] to
            [-1, 1] at the start of every branch.
        batch_norm_momentum: float. Momentum of the batch-norm moving
            statistics.
        dtype: dtype policy or None. Policy of every layer but the heads;
            None leaves the layers at the global policy.
        head_dtype: dtype policy or None. Policy of the two ordinal heads.

    Returns:
        `(inputs, outputs)`: dicts of symbolic tensors keyed by
        `INPUT_NAMES` and by `"x"`, `"y"`.
    """
    body = {} if dtype is None else {"dtype": dtype}
    head = {} if head_dtype is None else {"dtype": head_dtype}
    inputs = {
        name: layers.Input((image_size, image_size, 3), name=name)
        for name in INPUT_NAMES
    }
    rescale = (
        layers.Rescaling(PIXEL_SCALE, offset=PIXEL_OFFSET, name="rescaling", **body)
        if normalize_pixels
        else None
    )

    def branch(prefix):
        return _branch_layers(
            layers, prefix, width_multiplier, batch_norm_momentum, body
        )

    face_branch = branch("face")
    if share_eye_weights:
        left_branch = right_branch = branch("eye")
    else:
        left_branch = branch("left_eye")
        right_branch = branch("right_eye")

    features = []
    for name, branch in (
        ("face", face_branch),
        ("left_eye", left_branch),
        ("right_eye", right_branch),
    ):
        x = inputs[name]
        if rescale is not None:
            x = rescale(x)
        features.append(_apply_branch(branch, x))

    x = layers.Concatenate(name="concat", **body)(features)
    x = layers.Dense(
        FINAL_FEATURES, activation="relu", name="final_feature", **body
    )(x)
    outputs = {
        "x": layers.Dense(x_bins, activation="sigmoid", name="x", **head)(x),
        "y": layers.Dense(y_bins, activation="sigmoid", name="y", **head)(x),
    }
    return inputs, outputs


def _dtype_policy(dtype):
    """The `keras.DTypePolicy` of `dtype` (None: the global policy)."""
    if dtype is None:
        return keras.config.dtype_policy()
    try:
        return keras.dtype_policies.get(dtype)
    except (TypeError, ValueError) as error:
        raise ValueError(
            "dtype must be a dtype policy name such as 'float32' or "
            f"'mixed_float16', or a keras.DTypePolicy. Received: dtype={dtype!r}"
        ) from error


def _check_number(name, value, *, integer=False):
    """Raises a ValueError that says what was received unless `value` is a
    real number (an integral one when `integer`)."""
    if (
        isinstance(value, bool)
        or not isinstance(value, numbers.Real)
        or not np.isfinite(value)
        or (integer and int(value) != value)
    ):
        kind = "an integer" if integer else "a finite number"
        raise ValueError(f"{name} must be {kind}. Received: {name}={value!r}")


@keras.saving.register_keras_serializable(package="tat_keras")
class GazeNet(keras.Model):
    """Three-branch CASIA-WebFace gaze network with two ordinal heads.

    The label range of each axis is part of the model's configuration, so a
    saved model decodes its outputs to cm on its own (`bins`, `predict_cm`).

    Args:
        image_size: int. Height and width of each input crop (64 in the
            paper).
        width_multiplier: float. Scales every convolution's channel count;
            below 1 for CPU-sized runs.
        x_bins: int. Number of ordinal bins of the horizontal coordinate
            (133 on GazeCapture).
        y_bins: int. Number of ordinal bins of the vertical coordinate.
        share_eye_weights: bool. Both eyes go through one eye branch.
        x_low: float. Lower edge of the horizontal label range, in cm.
        x_bin_size: float. Bin width of the horizontal axis, in cm.
        y_low: float. Lower edge of the vertical label range, in cm.
        y_bin_size: float. Bin width of the vertical axis, in cm.
        batch_norm_momentum: float. Momentum of the batch-norm moving
            statistics (see `BN_MOMENTUM`).
        name: str. Name of the model.
        dtype: str or `keras.DTypePolicy`, or None for the global policy.
            Under a mixed policy (`"mixed_float16"`) every layer computes in
            float16 and keeps float32 variables, except the two ordinal
            heads, which compute in the variable dtype (float32): their
            probabilities feed the ordinal loss and the decoding to cm, and
            a float16 sigmoid rounds to exactly 1 above a logit of about 8.
        trainable: bool. Whether the weights are trained.

    Inputs: a dict with `face`, `left_eye` and `right_eye`, each float32
    `(batch, image_size, image_size, 3)` pixels in [0, 255].
    Outputs: a dict with `x` `(batch, x_bins)` and `y` `(batch, y_bins)`
    bin probabilities, in the policy's variable dtype (float32).

    Example:

    >>> model = GazeNet(width_multiplier=0.125, x_bins=10, y_bins=12)
    >>> batch = {n: np.zeros((2, 64, 64, 3), "float32") for n in INPUT_NAMES}
    >>> model.predict_cm(batch).shape
    (2, 2)
    """

    def __init__(
        self,
        image_size=64,
        width_multiplier=1.0,
        x_bins=133,
        y_bins=133,
        share_eye_weights=True,
        x_low=-20.0,
        x_bin_size=0.3,
        y_low=-25.0,
        y_bin_size=0.3,
        batch_norm_momentum=BN_MOMENTUM,
        name="gaze_net",
        dtype=None,
        **kwargs,
    ):
        _check_number("image_size", image_size, integer=True)
        if image_size < 32:
            raise ValueError(
                "image_size must be an integer of at least 32 (the network "
                f"pools four times). Received: image_size={image_size}"
            )
        _check_number("width_multiplier", width_multiplier)
        if not width_multiplier > 0:
            raise ValueError(
                "width_multiplier must be positive. "
                f"Received: width_multiplier={width_multiplier}"
            )
        _check_number("batch_norm_momentum", batch_norm_momentum)
        if not 0.0 <= batch_norm_momentum < 1.0:
            raise ValueError(
                "batch_norm_momentum must be in [0, 1). "
                f"Received: batch_norm_momentum={batch_norm_momentum}"
            )
        if not isinstance(share_eye_weights, (bool, np.bool_)):
            raise ValueError(
                "share_eye_weights must be True or False. "
                f"Received: share_eye_weights={share_eye_weights!r}"
            )
        bins = {
            "x": ordinal.OrdinalBins(x_low, x_bin_size, x_bins),
            "y": ordinal.OrdinalBins(y_low, y_bin_size, y_bins),
        }
        policy = _dtype_policy(dtype)

        # === Functional model ===
        inputs, outputs = gaze_net_graph(
            keras.layers,
            image_size=int(image_size),
            width_multiplier=width_multiplier,
            x_bins=int(x_bins),
            y_bins=int(y_bins),
            share_eye_weights=share_eye_weights,
            batch_norm_momentum=batch_norm_momentum,
            dtype=policy,
            head_dtype=policy.variable_dtype,
        )
        super().__init__(inputs=inputs, outputs=outputs, name=name, **kwargs)
        # A functional model drops `dtype`; the policy is set here so that
        # `compile` wraps the optimizer for loss scaling under float16.
        self.dtype_policy = policy

        # === Config ===
        self.image_size = int(image_size)
        self.width_multiplier = float(width_multiplier)
        self.x_bins = int(x_bins)
        self.y_bins = int(y_bins)
        self.share_eye_weights = bool(share_eye_weights)
        self.x_low = float(x_low)
        self.x_bin_size = float(x_bin_size)
        self.y_low = float(y_low)
        self.y_bin_size = float(y_bin_size)
        self.batch_norm_momentum = float(batch_norm_momentum)
        self._bins = bins

    @property
    def bins(self):
        """`{"x": OrdinalBins, "y": OrdinalBins}`: the label range per axis."""
        return self._bins

    @property
    def conv_layer_names(self):
        """Names of every `Conv2D` layer, in graph order."""
        return [
            layer.name
            for layer in self.layers
            if isinstance(layer, keras.layers.Conv2D)
        ]

    def batch_norm_of(self, conv_name):
        """The `BatchNormalization` layer that follows convolution `conv_name`."""
        prefix, conv = conv_name.rsplit("_conv", 1)
        return self.get_layer(f"{prefix}_bn{conv}")

    def decode(self, outputs):
        """Gaze in cm, `(batch, 2)`, from a dict of bin probabilities."""
        x = self._bins["x"].decode(outputs["x"])
        y = self._bins["y"].decode(outputs["y"])
        if isinstance(x, np.ndarray):
            return np.stack([x, y], axis=-1)
        return keras.ops.stack([x, y], axis=-1)

    def predict_cm(self, inputs, batch_size=256):
        """Predicted gaze in cm, a NumPy array `(batch, 2)`."""
        outputs = self.predict(inputs, batch_size=batch_size, verbose=0)
        return self.decode(outputs)

    def get_config(self):
        return {
            "image_size": self.image_size,
            "width_multiplier": self.width_multiplier,
            "x_bins": self.x_bins,
            "y_bins": self.y_bins,
            "share_eye_weights": self.share_eye_weights,
            "x_low": self.x_low,
            "x_bin_size": self.x_bin_size,
            "y_low": self.y_low,
            "y_bin_size": self.y_bin_size,
            "batch_norm_momentum": self.batch_norm_momentum,
            "name": self.name,
            "trainable": self.trainable,
            "dtype": keras.dtype_policies.serialize(self.dtype_policy),
        }

    @classmethod
    def from_config(cls, config):
        return cls(**config)
