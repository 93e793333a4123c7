"""Per-user calibration: a few dots of one user correct the network's gaze.

People differ in ways a network cannot see in its crops (the angle kappa
between the visual and optical axes of the eye, eye shape, how they hold
the device), so a practical tracker asks each user to look at a few dots
first. The calibrators here are fitted on the samples of those dots (one
user's frames: the network's outputs and the true gaze in cm) and then
correct that user's later predictions. Three methods:

- `AffineCalibrator`: an affine map on the predicted gaze, least squares
  regularized toward the identity, so one dot gives a pure offset and more
  dots a full 2x2 map.
- `RidgeCalibrator`: ridge regression from the 128-D final feature to the
  residual of the prediction (the analogue of iTracker's per-user SVR on
  network features), regularized toward no correction.
- `HeadFineTuning`: a few plain gradient steps on the two ordinal heads
  (the layers `x` and `y` on `final_feature`) with the ordinal loss of
  Eq. 2, on the calibration samples only; the same step runs inside the
  on-device model of `tat_keras.export.personalization`.

All three share one interface: `fit(samples, gaze_cm, subjects=None)`,
`predict(samples)`, `save(path)` and the module's `load(path, model)`.
`samples` is a dict of NumPy arrays named like the outputs of the exported
`.tflite` file, so an app can feed them as they come: `gaze_cm` `(N, 2)`,
the network's prediction, and `final_feature` `(N, 128)`. A point is a
distinct gaze target (a dot); its frames are its samples. Each calibrator
stores the fingerprint of the model it was fitted on (`model_fingerprint`)
and refuses to load onto another model.

The NumPy head step is written out (sigmoid cross-entropy on the logits and
its gradient `sigmoid(z) - t`), which is the gradient of `OrdinalLoss` where
the probabilities are not clipped; `calibration_test.py` checks the two
against each other.

Example:

>>> rng = np.random.default_rng(0)
>>> predicted = rng.uniform(-5, 5, (30, 2))
>>> true = predicted @ np.array([[1.1, 0.0], [0.1, 0.9]]).T + [0.5, -1.0]
>>> affine = AffineCalibrator(alpha=0.0).fit({"gaze_cm": predicted}, true)
>>> bool(np.allclose(affine.predict({"gaze_cm": predicted}), true))
True
"""

import hashlib
import json
import os
import time

import numpy as np

from tat_keras import ordinal

FORMAT = "tat_keras.calibrator.v1"
FEATURE_KEY = "final_feature"
PREDICTION_KEY = "gaze_cm"
HEAD_NAMES = ("x", "y")
HEAD_WEIGHT_NAMES = ("x_kernel", "x_bias", "y_kernel", "y_bias")

# GazeCapture's 13 calibration dots in fractions of the screen (x right,
# y down, as the user sees it): a 3x3 grid and the centres of the four
# quadrants between its rows and columns. The order makes the first k a
# sensible k-point layout: the centre (1), two opposite corners (3), all
# four corners (5), the 3x3 grid (9), everything (13).
GAZECAPTURE_13_POINT_LAYOUT = np.array(
    [
        (0.5, 0.5),
        (0.1, 0.1), (0.9, 0.9), (0.9, 0.1), (0.1, 0.9),
        (0.5, 0.1), (0.5, 0.9), (0.1, 0.5), (0.9, 0.5),
        (0.3, 0.3), (0.7, 0.7), (0.7, 0.3), (0.3, 0.7),
    ]
)
_POINT_RESOLUTION_CM = 1e-3


# Fingerprints and heads ---------------------------------------------------


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


# Checks -------------------------------------------------------------------


def count_points(gaze_cm):
    """Number of distinct gaze targets (dots) among samples `(N, 2)` in cm."""
    gaze_cm = np.asarray(gaze_cm, np.float64).reshape(-1, 2)
    keys = np.round(gaze_cm / _POINT_RESOLUTION_CM).astype(np.int64)
    return int(len(np.unique(keys, axis=0)))


def _check_finite(name, values):
    bad = int(np.size(values) - np.count_nonzero(np.isfinite(values)))
    if bad:
        raise ValueError(
            f"{name} holds {bad} non-finite values (NaN or inf): drop those "
            f"frames (a missed detection or a failed prediction) before "
            f"calibrating. Received: {name} of shape {np.shape(values)}"
        )


def _check_samples(method, requires, samples, num=None):
    """Validated float64 copies of the `requires` entries of `samples`."""
    if not isinstance(samples, dict):
        raise ValueError(
            f"samples must be a dict of arrays ({', '.join(requires)}). "
            f"Received: {type(samples).__name__}"
        )
    missing = [key for key in requires if key not in samples]
    if missing:
        raise ValueError(
            f"{method} needs samples {list(requires)}; missing {missing}. "
            f"Received: keys={sorted(samples)}"
        )
    checked = {}
    for key in requires:
        values = np.asarray(samples[key], np.float64)
        if values.ndim != 2:
            raise ValueError(
                f"samples[{key!r}] must be 2-D (samples, values). "
                f"Received: shape={values.shape}"
            )
        if key == PREDICTION_KEY and values.shape[1] != 2:
            raise ValueError(
                f"samples[{key!r}] must be (N, 2) gaze in cm. "
                f"Received: shape={values.shape}"
            )
        _check_finite(f"samples[{key!r}]", values)
        checked[key] = values
    sizes = {len(values) for values in checked.values()} | ({num} if num else set())
    if len(sizes) > 1:
        raise ValueError(
            "samples and gaze_cm must hold the same number of samples. Received: "
            + ", ".join(f"{k}: {len(v)}" for k, v in checked.items())
            + (f", gaze_cm: {num}" if num else "")
        )
    return checked


# Calibrators --------------------------------------------------------------


class Calibrator:
    """Base of the per-user calibrators: checks, fingerprint, save and load.

    Subclasses set `method`, `requires` (the sample keys they read) and
    implement `_fit`, `_predict`, `get_config` and `_state` /
    `_set_state`.

    Args:
        model_fingerprint: str or None. `model_fingerprint(model)` of the
            network whose outputs are calibrated; needed to save.
        min_points: int. Fewest distinct gaze targets `fit` accepts.
    """

    method = None
    requires = ()

    def __init__(self, model_fingerprint=None, min_points=1):
        if int(min_points) != min_points or min_points < 1:
            raise ValueError(
                f"min_points must be a positive integer. Received: min_points={min_points}"
            )
        if model_fingerprint is not None and not isinstance(model_fingerprint, str):
            raise ValueError(
                "model_fingerprint must be the string from model_fingerprint(model). "
                f"Received: {type(model_fingerprint).__name__}"
            )
        self.model_fingerprint = model_fingerprint
        self.min_points = int(min_points)
        self.num_points = None
        self.num_samples = None

    @property
    def fitted(self):
        return self.num_points is not None

    def fit(self, samples, gaze_cm, subjects=None):
        """Fits the calibrator on one user's calibration samples.

        Args:
            samples: dict of arrays, `(N, ...)` each: the keys in
                `requires` (`gaze_cm`, `final_feature`).
            gaze_cm: array `(N, 2)`. The true gaze (the dots) in cm.
            subjects: array `(N,)` or None. Subject of each sample; more
                than one subject is refused.

        Returns:
            self.
        """
        gaze_cm = np.asarray(gaze_cm, np.float64)
        if gaze_cm.ndim != 2 or gaze_cm.shape[1] != 2 or len(gaze_cm) == 0:
            raise ValueError(
                "gaze_cm must be a non-empty (N, 2) array of true gaze in cm. "
                f"Received: shape={gaze_cm.shape}"
            )
        _check_finite("gaze_cm", gaze_cm)
        if subjects is not None:
            found = np.unique(np.asarray(subjects))
            if len(found) > 1:
                shown = ", ".join(str(s) for s in found[:5])
                raise ValueError(
                    f"calibration points come from {len(found)} subjects "
                    f"({shown}{', ...' if len(found) > 5 else ''}); a calibrator "
                    "belongs to one user: fit one per subject."
                )
        checked = _check_samples(self.method, self.requires, samples, len(gaze_cm))
        num_points = count_points(gaze_cm)
        if num_points < self.min_points:
            raise ValueError(
                f"{self.method} calibration needs at least {self.min_points} "
                f"points (distinct gaze targets), but the samples hold "
                f"{num_points}: show the user more dots or choose a method with "
                f"calibrator_for({num_points})."
            )
        self._fit(checked, gaze_cm)
        self.num_points = num_points
        self.num_samples = len(gaze_cm)
        return self

    def predict(self, samples):
        """Calibrated gaze in cm `(N, 2)` for samples of the same user."""
        if not self.fitted:
            raise ValueError(f"The {self.method} calibrator is not fitted: call fit first.")
        checked = _check_samples(self.method, self.requires, samples)
        return self._predict(checked)

    # Saving ---------------------------------------------------------------

    def to_dict(self):
        """Everything `load` needs, JSON-ready (arrays as nested lists)."""
        if not self.fitted:
            raise ValueError(f"The {self.method} calibrator is not fitted: call fit first.")
        return {
            "format": FORMAT,
            "method": self.method,
            "model_fingerprint": self.model_fingerprint,
            "config": self.get_config(),
            "num_points": self.num_points,
            "num_samples": self.num_samples,
            "state": {k: np.asarray(v).tolist() for k, v in self._state().items()},
        }

    def save(self, path):
        """Writes the fitted calibrator to `path` (JSON); returns `path`."""
        if self.model_fingerprint is None:
            raise ValueError(
                "model_fingerprint is not set: create the calibrator with "
                "model_fingerprint=model_fingerprint(model), so that it cannot "
                "be loaded onto another model."
            )
        path = os.fspath(path)
        if not path.endswith(".json"):
            raise ValueError(f"{self.method} calibrators save to a .json file. Received: path={path!r}")
        _make_parent(path)
        with open(path, "w") as f:
            json.dump(self.to_dict(), f, indent=1)
        return path

    def get_config(self):
        return {"min_points": self.min_points}


class AffineCalibrator(Calibrator):
    """An affine map on the predicted gaze, regularized toward the identity.

    Minimizes `mean_i |A p_i + c - t_i|^2 + alpha |A - I|_F^2` over the 2x2
    matrix `A` and the offset `c` (not penalized), `p` the predictions and
    `t` the true gaze in cm. With centred `P`, `T` (N x 2):
    `A^T = (P^T P / N + alpha I)^-1 (P^T T / N + alpha I)` and
    `c = mean(t) - A mean(p)`. One dot (no spread in `p`) gives `A = I`
    and a pure offset; `alpha = 0` is ordinary least squares and needs three
    points that are not on one line.

    Args:
        alpha: float. Pull toward the identity, in cm^2 (the variance of
            the predictions at which data and prior weigh the same).
        model_fingerprint: str or None. See `Calibrator`.

    Example:

    >>> affine = AffineCalibrator(alpha=1.0)
    >>> affine = affine.fit({"gaze_cm": np.zeros((3, 2))}, np.ones((3, 2)))
    >>> affine.predict({"gaze_cm": np.array([[2.0, 2.0]])}).tolist()
    [[3.0, 3.0]]
    """

    method = "affine"
    requires = (PREDICTION_KEY,)

    def __init__(self, alpha=10.0, model_fingerprint=None):
        if not np.isfinite(alpha) or alpha < 0:
            raise ValueError(f"alpha must be a finite number >= 0. Received: alpha={alpha}")
        super().__init__(model_fingerprint, min_points=1 if alpha > 0 else 3)
        self.alpha = float(alpha)
        self.matrix = np.eye(2)
        self.offset = np.zeros(2)

    def _fit(self, samples, gaze_cm):
        predicted = samples[PREDICTION_KEY]
        n = len(predicted)
        p_mean, t_mean = predicted.mean(axis=0), gaze_cm.mean(axis=0)
        p, t = predicted - p_mean, gaze_cm - t_mean
        gram = p.T @ p / n + self.alpha * np.eye(2)
        if np.linalg.matrix_rank(gram) < 2:
            raise ValueError(
                "The calibration predictions lie on one line, so an affine map "
                "without regularization is undetermined: use alpha > 0 or more "
                "points spread over the screen."
            )
        matrix_t = np.linalg.solve(gram, p.T @ t / n + self.alpha * np.eye(2))
        self.matrix = matrix_t.T
        self.offset = t_mean - self.matrix @ p_mean

    def _predict(self, samples):
        return samples[PREDICTION_KEY] @ self.matrix.T + self.offset

    def _state(self):
        return {"matrix": self.matrix, "offset": self.offset}

    def _set_state(self, state):
        self.matrix = np.asarray(state["matrix"], np.float64).reshape(2, 2)
        self.offset = np.asarray(state["offset"], np.float64).reshape(2)

    def get_config(self):
        return {"alpha": self.alpha}


class RidgeCalibrator(Calibrator):
    """Ridge regression from the final feature to the prediction's residual.

    The analogue of iTracker's per-user SVR on network features, written as
    a correction of the network's prediction so that strong regularization
    falls back on the uncalibrated model: with `f` the final feature, `r =
    t - p` the residual of the prediction `p` against the truth `t`, and
    centred `F`, `R`: `W = (F^T F / N + alpha s I)^-1 F^T R / N`,
    `b = mean(r) - W^T mean(f)`, where `s = mean_i |f_i|^2 / D` makes
    `alpha` independent of the feature's scale. Prediction: `p + W^T f + b`.

    Args:
        alpha: float. Strength of the ridge penalty, relative to the mean
            squared feature value; positive.
        min_points: int. Fewest distinct gaze targets accepted (3 by
            default: fewer points cannot tell how the error varies over the
            screen, and the affine map does better there).
        model_fingerprint: str or None. See `Calibrator`.

    Example:

    >>> rng = np.random.default_rng(0)
    >>> samples = {"final_feature": rng.normal(size=(9, 4)), "gaze_cm": np.zeros((9, 2))}
    >>> ridge = RidgeCalibrator(alpha=1e-9).fit(samples, samples["final_feature"][:, :2])
    >>> bool(np.allclose(ridge.predict(samples), samples["final_feature"][:, :2]))
    True
    """

    method = "ridge"
    requires = (FEATURE_KEY, PREDICTION_KEY)

    def __init__(self, alpha=1.0, min_points=3, model_fingerprint=None):
        if not np.isfinite(alpha) or not alpha > 0:
            raise ValueError(f"alpha must be a positive number. Received: alpha={alpha}")
        super().__init__(model_fingerprint, min_points=min_points)
        self.alpha = float(alpha)
        self.kernel = None
        self.bias = None

    def _fit(self, samples, gaze_cm):
        features = samples[FEATURE_KEY]
        residual = gaze_cm - samples[PREDICTION_KEY]
        n, d = features.shape
        f_mean, r_mean = features.mean(axis=0), residual.mean(axis=0)
        f, r = features - f_mean, residual - r_mean
        scale = float(np.mean(np.sum(features**2, axis=1))) / d
        penalty = self.alpha * (scale if scale > 0 else 1.0)
        self.kernel = np.linalg.solve(f.T @ f / n + penalty * np.eye(d), f.T @ r / n)
        self.bias = r_mean - f_mean @ self.kernel

    def _predict(self, samples):
        features = samples[FEATURE_KEY]
        if features.shape[1] != self.kernel.shape[0]:
            raise ValueError(
                f"The calibrator was fitted on {self.kernel.shape[0]}-D features. "
                f"Received: {features.shape[1]}-D"
            )
        return samples[PREDICTION_KEY] + features @ self.kernel + self.bias

    def _state(self):
        return {"kernel": self.kernel, "bias": self.bias}

    def _set_state(self, state):
        self.kernel = np.asarray(state["kernel"], np.float64)
        self.bias = np.asarray(state["bias"], np.float64).reshape(2)

    def get_config(self):
        return {"alpha": self.alpha, "min_points": self.min_points}


class HeadFineTuning(Calibrator):
    """A few plain gradient steps on the two ordinal heads (Eq. 2 loss).

    Starts from the network's own heads and takes `steps` full-batch
    gradient steps on the calibration samples; the backbone, and so the
    final feature, stays fixed. The same step runs on the phone in the
    `train` signature of `tat_keras.export.personalization`.

    Args:
        heads: OrdinalHeads. The network's heads (`OrdinalHeads.from_model`).
        steps: int. Gradient steps.
        learning_rate: float. Step size of the plain gradient update.
        model_fingerprint: str or None. See `Calibrator`.

    Example:

    >>> bins = {"x": ordinal.OrdinalBins(-5, 1.0, 9), "y": ordinal.OrdinalBins(-5, 1.0, 9)}
    >>> zeros = {"x_kernel": np.zeros((4, 9)), "x_bias": np.zeros(9),
    ...          "y_kernel": np.zeros((4, 9)), "y_bias": np.zeros(9)}
    >>> tuning = HeadFineTuning(OrdinalHeads(zeros, bins), steps=200, learning_rate=1.0)
    >>> tuning = tuning.fit({"final_feature": np.ones((2, 4))}, np.ones((2, 2)))
    >>> tuning.predict({"final_feature": np.ones((1, 4))}).tolist()
    [[1.5, 1.5]]
    """

    method = "heads"
    requires = (FEATURE_KEY,)

    def __init__(self, heads, steps=100, learning_rate=0.01, model_fingerprint=None):
        if not isinstance(heads, OrdinalHeads):
            raise ValueError(
                "heads must be an OrdinalHeads (OrdinalHeads.from_model(model)). "
                f"Received: {type(heads).__name__}"
            )
        if int(steps) != steps or steps < 1:
            raise ValueError(f"steps must be a positive integer. Received: steps={steps}")
        if not np.isfinite(learning_rate) or not learning_rate > 0:
            raise ValueError(
                f"learning_rate must be a positive number. Received: learning_rate={learning_rate}"
            )
        super().__init__(model_fingerprint, min_points=1)
        self.initial_heads = heads
        self.heads = heads
        self.steps = int(steps)
        self.learning_rate = float(learning_rate)
        self.losses = []
        self.seconds_per_step = None

    def _fit(self, samples, gaze_cm):
        features = samples[FEATURE_KEY]
        if features.shape[1] != self.initial_heads.feature_size:
            raise ValueError(
                f"The heads read {self.initial_heads.feature_size}-D features. "
                f"Received: {features.shape[1]}-D"
            )
        heads, self.losses = self.initial_heads, []
        start = time.perf_counter()
        for _ in range(self.steps):
            loss, heads = heads.train_step(features, gaze_cm, self.learning_rate)
            self.losses.append(loss)
        self.seconds_per_step = (time.perf_counter() - start) / self.steps
        self.losses.append(heads.loss_and_gradients(features, gaze_cm)[0])
        self.heads = heads

    def _predict(self, samples):
        return self.heads.predict_cm(samples[FEATURE_KEY])

    def _state(self):
        return dict(self.heads.weights)

    def _set_state(self, state):
        self.heads = self.heads.with_weights(
            {name: np.asarray(state[name], np.float64) for name in HEAD_WEIGHT_NAMES}
        )

    def get_config(self):
        return {
            "steps": self.steps,
            "learning_rate": self.learning_rate,
            **self.heads.get_config(),
        }

    def save(self, path):
        """Writes the tuned head weights to `path` (`.npz`); returns `path`.

        The arrays are stored under their names (`x_kernel` ...) with the
        rest of `to_dict()` as JSON in the entry `header`.
        """
        path = os.fspath(path)
        if not path.endswith(".npz"):
            raise ValueError(f"heads calibrators save weights to a .npz file. Received: path={path!r}")
        if self.model_fingerprint is None:
            super().save(path)  # Raises the message about the fingerprint.
        header = self.to_dict()
        header.pop("state")
        _make_parent(path)
        with open(path, "wb") as f:
            np.savez(f, header=np.array(json.dumps(header)), **self.heads.weights)
        return path


def _make_parent(path):
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)


def _read(path):
    path = os.fspath(path)
    if path.endswith(".npz"):
        with np.load(path) as data:
            header = json.loads(str(data["header"]))
            header["state"] = {name: data[name] for name in HEAD_WEIGHT_NAMES}
        return header
    with open(path) as f:
        return json.load(f)


def load(path, model):
    """Loads a saved calibrator for `model`, refusing one fitted on another.

    Args:
        path: str. A `.json` (affine, ridge) or `.npz` (heads) file from
            `save`.
        model: keras.Model or str. The network the calibrator will correct,
            or its `model_fingerprint`.

    Returns:
        The fitted calibrator.

    Raises:
        ValueError: the file was written for another model, or is not a
            calibrator.
    """
    data = _read(path)
    if data.get("format") != FORMAT:
        raise ValueError(
            f"{path} is not a calibrator file (format {data.get('format')!r}, "
            f"expected {FORMAT!r})."
        )
    expected = model if isinstance(model, str) else model_fingerprint(model)
    if data["model_fingerprint"] != expected:
        raise ValueError(
            f"{path} was fitted on another model (fingerprint "
            f"{data['model_fingerprint'][:19]}..., this model "
            f"{expected[:19]}...): calibrate again for this model."
        )
    config = data["config"]
    method = data["method"]
    if method == AffineCalibrator.method:
        calibrator = AffineCalibrator(config["alpha"], model_fingerprint=expected)
    elif method == RidgeCalibrator.method:
        calibrator = RidgeCalibrator(
            config["alpha"], config["min_points"], model_fingerprint=expected
        )
    elif method == HeadFineTuning.method:
        bins = {h: ordinal.OrdinalBins.from_config(c) for h, c in config["bins"].items()}
        heads = OrdinalHeads(data["state"], bins)
        calibrator = HeadFineTuning(
            heads, config["steps"], config["learning_rate"], model_fingerprint=expected
        )
    else:
        raise ValueError(f"{path} holds an unknown method {method!r}.")
    calibrator._set_state(data["state"])
    calibrator.num_points = int(data["num_points"])
    calibrator.num_samples = int(data["num_samples"])
    return calibrator


# Choice by number of points -------------------------------------------------

METHODS = (AffineCalibrator.method, RidgeCalibrator.method, HeadFineTuning.method)
RIDGE_FROM_POINTS = 5


def method_for(num_points):
    """The method to use with `num_points` calibration dots.

    The affine map below `RIDGE_FROM_POINTS` points (strongly pulled toward
    the identity, so one to four dots change little), ridge on the final
    feature from there on, where it can learn how the error varies over the
    screen. The threshold and the default strengths were chosen on
    synthetic subjects with 16 dots each, rendered apart from the ones the
    README reports (see its calibration section).
    """
    if int(num_points) != num_points or num_points < 1:
        raise ValueError(
            f"num_points must be a positive integer. Received: num_points={num_points}"
        )
    return RidgeCalibrator.method if num_points >= RIDGE_FROM_POINTS else AffineCalibrator.method



def calibrator_for(num_points, model=None, **kwargs):
    """A new calibrator of the method `method_for(num_points)` chooses.

    Args:
        num_points: int. Number of calibration dots.
        model: keras.Model or None. Sets the fingerprint (and the heads,
            should the choice be head fine-tuning).
        **kwargs: passed to the calibrator's constructor.

    Example:

    >>> calibrator_for(1).method
    'affine'
    """
    return make_calibrator(method_for(num_points), model, **kwargs)


def make_calibrator(method, model=None, **kwargs):
    """A new calibrator of `method` (one of `METHODS`) for `model`."""
    fingerprint = model_fingerprint(model) if model is not None else None
    if method == AffineCalibrator.method:
        return AffineCalibrator(model_fingerprint=fingerprint, **kwargs)
    if method == RidgeCalibrator.method:
        return RidgeCalibrator(model_fingerprint=fingerprint, **kwargs)
    if method == HeadFineTuning.method:
        if model is None:
            raise ValueError("Head fine-tuning starts from the model's heads: pass model.")
        return HeadFineTuning(OrdinalHeads.from_model(model), model_fingerprint=fingerprint, **kwargs)
    raise ValueError(f"method must be one of {', '.join(METHODS)}. Received: method={method!r}")


# Choosing the calibration dots ---------------------------------------------


def choose_calibration_dots(dot_cm, k, layout_cm=None):
    """Indices of the `k` dots a user calibrates on; the others test.

    With `layout_cm` (the target positions of a calibration layout, such as
    `GAZECAPTURE_13_POINT_LAYOUT` placed on the user's screen, in order),
    each of its first `k` targets takes the nearest dot not taken yet.
    Without, the dots are spread over the screen: first the dot nearest the
    centre of all dots, then each time the dot farthest from those taken.

    Args:
        dot_cm: array `(M, 2)`. Position of each of the user's dots, cm.
        k: int. How many to calibrate on; at most `M - 1`, so that at
            least one dot is left to test on.
        layout_cm: array `(L, 2)` or None, `L >= k`.

    Returns:
        list of `k` indices into `dot_cm`.

    Example:

    >>> dots = np.array([[0.0, 0.0], [1.0, 1.0], [5.0, 5.0], [9.0, 0.0]])
    >>> choose_calibration_dots(dots, 2)
    [1, 3]
    """
    dot_cm = np.asarray(dot_cm, np.float64).reshape(-1, 2)
    if int(k) != k or k < 1:
        raise ValueError(f"k must be a positive integer. Received: k={k}")
    if k >= len(dot_cm):
        raise ValueError(
            f"Calibrating on {k} dots needs at least {k + 1} (one left to test "
            f"on). Received: {len(dot_cm)} dots"
        )
    if layout_cm is not None:
        layout_cm = np.asarray(layout_cm, np.float64).reshape(-1, 2)
        if len(layout_cm) < k:
            raise ValueError(f"The layout has {len(layout_cm)} targets, fewer than k={k}.")
        free = list(range(len(dot_cm)))
        chosen = []
        for target in layout_cm[:k]:
            distances = np.linalg.norm(dot_cm[free] - target, axis=1)
            chosen.append(free.pop(int(np.argmin(distances))))
        return chosen
    centre = dot_cm.mean(axis=0)
    chosen = [int(np.argmin(np.linalg.norm(dot_cm - centre, axis=1)))]
    while len(chosen) < k:
        distance = np.min(
            np.linalg.norm(dot_cm[:, None, :] - dot_cm[None, chosen, :], axis=-1), axis=1
        )
        distance[chosen] = -1.0
        chosen.append(int(np.argmax(distance)))
    return chosen


# Measuring calibration on test subjects -------------------------------------


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


def _evenly_spaced(indices, limit):
    if limit is None or len(indices) <= limit:
        return indices
    return indices[np.linspace(0, len(indices) - 1, limit).round().astype(int)]


def evaluate_subjects(
    samples,
    gaze_cm,
    subjects,
    dots,
    points,
    methods,
    *,
    layouts=None,
    max_calibration_samples=None,
    progress=None,
):
    """Calibrates each subject on k of their dots and tests on the others.

    For every subject and every k in `points`, the calibration dots are
    chosen by `choose_calibration_dots` (the subject's layout where one is
    given, else spread over their dots), every method is fitted on those
    dots' frames and tested on the frames of the remaining dots; the error
    before is the network's own error on the same test frames. A subject
    with fewer than `k + 1` dots is listed in `skipped` for that k; a
    method that needs more than k points is not run for that k.

    Args:
        samples: dict of arrays `(N, ...)`: `gaze_cm` (the network's
            prediction) and `final_feature`.
        gaze_cm: array `(N, 2)`. True gaze in cm.
        subjects: array `(N,)`. Subject of each frame.
        dots: array `(N,)`. Dot of each frame (unique within a subject).
        points: list of int. The values of k.
        methods: dict. Name -> callable taking k and returning a new,
            unfitted calibrator.
        layouts: dict or None. Subject -> `(L, 2)` target positions in cm
            (a calibration layout on that subject's screen), or None for
            the subject.
        max_calibration_samples: int or None. At most this many frames
            (evenly spaced) to calibrate on.
        progress: callable or None. Wraps the loop over subjects (tqdm).

    Returns:
        `(records, skipped)`: a list of dicts (subject, k, method,
        error_before, error_after, num_calibration_samples,
        num_test_samples, calibration_dots, layout, seconds_per_step for
        step-based methods), and a list of dicts (subject, k, num_dots).
    """
    gaze_cm = np.asarray(gaze_cm, np.float64)
    subjects = np.asarray(subjects)
    dots = np.asarray(dots)
    layouts = layouts or {}
    records, skipped = [], []
    subject_ids = np.unique(subjects)
    for subject in progress(subject_ids) if progress else subject_ids:
        rows = np.flatnonzero(subjects == subject)
        dot_ids = np.unique(dots[rows])
        dot_cm = np.stack([gaze_cm[rows[dots[rows] == d]].mean(axis=0) for d in dot_ids])
        for k in points:
            if len(dot_ids) < k + 1:
                skipped.append({"subject": subject.item(), "k": int(k), "num_dots": len(dot_ids)})
                continue
            layout = layouts.get(subject.item())
            use_layout = layout is not None and len(layout) >= k
            chosen = dot_ids[choose_calibration_dots(dot_cm, k, layout if use_layout else None)]
            is_calibration = np.isin(dots[rows], chosen)
            calibration_rows = _evenly_spaced(rows[is_calibration], max_calibration_samples)
            test_rows = rows[~is_calibration]
            before = np.linalg.norm(samples[PREDICTION_KEY][test_rows] - gaze_cm[test_rows], axis=1)
            for name, make in methods.items():
                calibrator = make(k)
                if calibrator.min_points > k:
                    continue  # The method needs more dots; `summarize` has no row.
                calibrator.fit(
                    {key: values[calibration_rows] for key, values in samples.items()},
                    gaze_cm[calibration_rows],
                    subjects[calibration_rows],
                )
                predicted = calibrator.predict({key: values[test_rows] for key, values in samples.items()})
                after = np.linalg.norm(predicted - gaze_cm[test_rows], axis=1)
                record = {
                    "subject": subject.item(),
                    "k": int(k),
                    "method": name,
                    "error_before": float(np.mean(before)),
                    "error_after": float(np.mean(after)),
                    "num_calibration_samples": int(len(calibration_rows)),
                    "num_test_samples": int(len(test_rows)),
                    "calibration_dots": [d.item() for d in chosen],
                    "layout": bool(use_layout),
                }
                if getattr(calibrator, "seconds_per_step", None) is not None:
                    record["seconds_per_step"] = float(calibrator.seconds_per_step)
                if getattr(calibrator, "losses", None):
                    record["loss_first"] = float(calibrator.losses[0])
                    record["loss_last"] = float(calibrator.losses[-1])
                records.append(record)
    return records, skipped


def mean_interval(values, confidence=0.95):
    """Mean and Student-t confidence interval `(mean, low, high)`.

    One value has no interval: `low` and `high` are NaN.

    Example:

    >>> [round(v, 3) for v in mean_interval([1.0, 2.0, 3.0])]
    [2.0, -0.484, 4.484]
    """
    from scipy import stats

    values = np.asarray(values, np.float64)
    mean = float(np.mean(values))
    if len(values) < 2:
        return mean, float("nan"), float("nan")
    half = stats.t.ppf(0.5 + confidence / 2, len(values) - 1) * np.std(values, ddof=1) / np.sqrt(len(values))
    return mean, float(mean - half), float(mean + half)


def summarize(records, groups=None, confidence=0.95):
    """Mean errors over subjects per method, k and group of subjects.

    Args:
        records: list of dicts from `evaluate_subjects`.
        groups: dict or None. Subject -> group name (device type); every
            subject also counts in the group "all".
        confidence: float. Level of the intervals.

    Returns:
        list of dicts: method, k, group, num_subjects, error_before,
        error_after (means over subjects, cm), error_after_low /
        error_after_high (interval of the mean after; None for one
        subject), reduction (1 - after / before), and ms_per_step where
        measured.
    """
    groups = groups or {}
    table = {}
    for record in records:
        for group in ("all", groups.get(record["subject"])):
            if group is not None:
                table.setdefault((record["method"], record["k"], group), []).append(record)
    rows = []
    for (method, k, group), group_records in sorted(table.items(), key=lambda item: (item[0][0], item[0][1], item[0][2] != "all", item[0][2])):
        before = [r["error_before"] for r in group_records]
        after, low, high = mean_interval([r["error_after"] for r in group_records], confidence)
        if not np.isfinite(low):
            low = high = None  # One subject: no interval (JSON has no NaN).
        row = {
            "method": method,
            "k": k,
            "group": group,
            "num_subjects": len(group_records),
            "error_before": float(np.mean(before)),
            "error_after": after,
            "error_after_low": low,
            "error_after_high": high,
            "reduction": float(1.0 - after / np.mean(before)),
        }
        timed = [r["seconds_per_step"] for r in group_records if "seconds_per_step" in r]
        if timed:
            row["ms_per_step"] = 1000.0 * float(np.mean(timed))
        rows.append(row)
    return rows


def format_table(rows, group="all"):
    """One group's summary as a Markdown table: a row per k, a column per method.

    Each method's cell is the mean error after calibration (cm), its
    confidence interval and the change against the error before; a method
    that needs more points than k shows "n/a".

    Args:
        rows: list of dicts from `summarize`.
        group: str. The group of subjects ("all", or a device type).

    Returns:
        str, or "" when no row belongs to `group`.
    """
    rows = [row for row in rows if row["group"] == group]
    if not rows:
        return ""
    methods = sorted({row["method"] for row in rows})
    by_key = {(row["method"], row["k"]): row for row in rows}
    lines = [
        "| k | subjects | before (cm) | " + " | ".join(methods) + " |",
        "|---:|---:|---:|" + "---|" * len(methods),
    ]
    for k in sorted({row["k"] for row in rows}):
        first = next(row for row in rows if row["k"] == k)
        cells = []
        for method in methods:
            row = by_key.get((method, k))
            if row is None:
                cells.append("n/a")
                continue
            interval = (
                f"{row['error_after_low']:.2f} to {row['error_after_high']:.2f}"
                if row["error_after_low"] is not None
                else "one subject"
            )
            cells.append(f"{row['error_after']:.2f} ({interval}) {-100.0 * row['reduction']:+.0f}%")
        lines.append(
            f"| {k} | {first['num_subjects']} | {first['error_before']:.2f} | "
            + " | ".join(cells) + " |"
        )
    return "\n".join(lines)
