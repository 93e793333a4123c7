"""The network's side of per-user calibration: its heads in NumPy, its
fingerprint and its final feature.

`OrdinalHeads` holds the two ordinal heads of a GazeNet (the layers `x` and
`y` on the 128-D `final_feature`) as NumPy arrays, with the ordinal loss of
Eq. 2 and its gradient written out (sigmoid cross-entropy on the logits,
gradient `sigmoid(z) - t`), which is the gradient of `OrdinalLoss` where
the probabilities are not clipped; `heads_test.py` checks the two against
each other. The same step runs on the phone in
`tat_keras.export.personalization`. `model_fingerprint` names a network, so
that a calibrator fitted on one is never applied to another.

Example:

>>> from tat_keras import ordinal
>>> bins = {"x": ordinal.OrdinalBins(-5, 1.0, 9), "y": ordinal.OrdinalBins(-5, 1.0, 9)}
>>> weights = {"x_kernel": np.zeros((4, 9)), "x_bias": np.zeros(9),
...            "y_kernel": np.zeros((4, 9)), "y_bias": np.zeros(9)}
>>> OrdinalHeads(weights, bins).feature_size
4
"""

import hashlib
import json

import numpy as np

# The names of the samples a calibrator reads: the outputs of the exported
# `.tflite` file, so that an app feeds them as they come.
FEATURE_KEY = "final_feature"
PREDICTION_KEY = "gaze_cm"
HEAD_NAMES = ("x", "y")
HEAD_WEIGHT_NAMES = ("x_kernel", "x_bias", "y_kernel", "y_bias")


def model_fingerprint(model):
    """SHA-256 of a model's configuration and weights, as a hex string.

    Two models share a fingerprint only when they have the same architecture
    and label range (the configuration, without the name) and the same
    weight values, so a calibrator fitted on one cannot be applied to
    another by mistake.

    Args:
        model: keras.Model (a `GazeNet`).

    Returns:
        str. `sha256:` and 64 hex digits.

    Example:

    >>> from tat_keras import models
    >>> net = models.GazeNet(width_multiplier=0.125, x_bins=8, y_bins=8)
    >>> model_fingerprint(net).startswith("sha256:")
    True
    """
    config = dict(model.get_config())
    config.pop("name", None)
    digest = hashlib.sha256()
    digest.update(type(model).__name__.encode())
    digest.update(json.dumps(config, sort_keys=True, default=str).encode())
    for weights in model.get_weights():
        weights = np.ascontiguousarray(weights)
        digest.update(f"{weights.dtype.str}{weights.shape}".encode())
        digest.update(weights.tobytes())
    return "sha256:" + digest.hexdigest()


def _sigmoid(logits):
    return np.exp(-np.logaddexp(0.0, -logits))


class OrdinalHeads:
    """The two ordinal heads of a GazeNet as NumPy arrays, with their step.

    Each head is a dense layer with a sigmoid on the 128-D final feature
    (`x_kernel` `(D, B_x)`, `x_bias` `(B_x,)`, the same for `y`). The loss
    is the ordinal loss of Eq. 2 (per-sample sum over bins of binary
    cross-entropy, both axes added) averaged over the samples with optional
    weights, computed on the logits so that it stays finite when a
    probability saturates.

    Args:
        weights: dict. `x_kernel`, `x_bias`, `y_kernel`, `y_bias` arrays.
        bins: dict. `{"x": OrdinalBins, "y": OrdinalBins}`, the label range.

    Example:

    >>> from tat_keras import ordinal
    >>> bins = {"x": ordinal.OrdinalBins(-5, 1.0, 9), "y": ordinal.OrdinalBins(-5, 1.0, 9)}
    >>> weights = {"x_kernel": np.zeros((4, 9)), "x_bias": np.zeros(9),
    ...            "y_kernel": np.zeros((4, 9)), "y_bias": np.zeros(9)}
    >>> heads = OrdinalHeads(weights, bins)
    >>> heads.predict_cm(np.ones((1, 4))).tolist()  # p = 0.5 counts: all 9 bins
    [[4.5, 4.5]]
    """

    def __init__(self, weights, bins):
        missing = [name for name in HEAD_WEIGHT_NAMES if name not in weights]
        if missing:
            raise ValueError(
                f"weights miss {missing}; expected {list(HEAD_WEIGHT_NAMES)}. "
                f"Received: keys={sorted(weights)}"
            )
        self.weights = {
            name: np.asarray(weights[name], np.float64) for name in HEAD_WEIGHT_NAMES
        }
        self.bins = dict(bins)
        feature_size = self.weights["x_kernel"].shape[0]
        for head in HEAD_NAMES:
            kernel = self.weights[f"{head}_kernel"]
            bias = self.weights[f"{head}_bias"]
            num_bins = self.bins[head].num_bins
            if kernel.shape != (feature_size, num_bins) or bias.shape != (num_bins,):
                raise ValueError(
                    f"head {head!r} must have a ({feature_size}, {num_bins}) "
                    f"kernel and a ({num_bins},) bias for {num_bins} bins. "
                    f"Received: kernel {kernel.shape}, bias {bias.shape}"
                )

    @classmethod
    def from_model(cls, model):
        """The heads of a GazeNet (the layers `x` and `y`)."""
        weights = {}
        for head in HEAD_NAMES:
            kernel, bias = model.get_layer(head).get_weights()
            weights[f"{head}_kernel"] = kernel
            weights[f"{head}_bias"] = bias
        return cls(weights, model.bins)

    @property
    def feature_size(self):
        """Size of the final feature the heads read (128 in GazeNet)."""
        return self.weights["x_kernel"].shape[0]

    def with_weights(self, weights):
        """The same heads with other weights."""
        return OrdinalHeads(weights, self.bins)

    def logits(self, features):
        """Logits `{"x": (N, B_x), "y": (N, B_y)}` of the heads."""
        features = np.asarray(features, np.float64)
        return {
            head: features @ self.weights[f"{head}_kernel"] + self.weights[f"{head}_bias"]
            for head in HEAD_NAMES
        }

    def probabilities(self, features):
        """Bin probabilities `{"x": (N, B_x), "y": (N, B_y)}`."""
        return {head: _sigmoid(z) for head, z in self.logits(features).items()}

    def predict_cm(self, features):
        """Gaze in cm `(N, 2)`, decoded as in Eq. 3."""
        probs = self.probabilities(features)
        return np.stack(
            [self.bins[head].decode(probs[head]) for head in HEAD_NAMES], axis=-1
        ).astype(np.float64)

    def targets(self, gaze_cm):
        """Ordinal labels (Eq. 1) of gaze in cm, per head."""
        gaze_cm = np.asarray(gaze_cm, np.float32)
        return {
            head: self.bins[head].encode(gaze_cm[:, axis]).astype(np.float64)
            for axis, head in enumerate(HEAD_NAMES)
        }

    def loss_and_gradients(self, features, gaze_cm, sample_weight=None):
        """The ordinal loss of the calibration batch and its gradients.

        Args:
            features: array `(N, D)`. Final features.
            gaze_cm: array `(N, 2)`. True gaze in cm.
            sample_weight: array `(N,)` or None. Non-negative weights
                (0 leaves a sample out); None weighs all samples alike.

        Returns:
            `(loss, gradients)`: the weighted mean over samples of the
            summed binary cross-entropy of both heads, and a dict of arrays
            keyed like `weights`.
        """
        features = np.asarray(features, np.float64)
        if sample_weight is None:
            sample_weight = np.ones(len(features))
        sample_weight = np.asarray(sample_weight, np.float64)
        total_weight = np.sum(sample_weight)
        if not total_weight > 0:
            raise ValueError(
                "sample_weight must have a positive sum. "
                f"Received: sum={total_weight}"
            )
        share = sample_weight / total_weight
        targets = self.targets(gaze_cm)
        loss = 0.0
        gradients = {}
        for head, logits in self.logits(features).items():
            t = targets[head]
            # softplus(z) - z t: binary cross-entropy of sigmoid(z) against t.
            per_bin = np.logaddexp(0.0, logits) - logits * t
            loss += float(np.sum(share * per_bin.sum(axis=-1)))
            d_logits = (_sigmoid(logits) - t) * share[:, None]
            gradients[f"{head}_kernel"] = features.T @ d_logits
            gradients[f"{head}_bias"] = d_logits.sum(axis=0)
        return loss, gradients

    def train_step(self, features, gaze_cm, learning_rate, sample_weight=None):
        """One plain gradient step; returns `(loss before the step, new heads)`."""
        loss, gradients = self.loss_and_gradients(features, gaze_cm, sample_weight)
        weights = {
            name: self.weights[name] - learning_rate * gradients[name]
            for name in HEAD_WEIGHT_NAMES
        }
        return loss, self.with_weights(weights)

    def get_config(self):
        return {
            "bins": {head: self.bins[head].get_config() for head in HEAD_NAMES},
        }


def outputs_with_feature(model):
    """A Keras model giving the bin probabilities and the final feature.

    Args:
        model: GazeNet.

    Returns:
        keras.Model with the inputs of `model` and outputs `x`, `y` and
        `final_feature`.
    """
    import keras

    return keras.Model(
        model.input,
        {
            "x": model.get_layer("x").output,
            "y": model.get_layer("y").output,
            FEATURE_KEY: model.get_layer(FEATURE_KEY).output,
        },
        name=f"{model.name}_with_feature",
    )
