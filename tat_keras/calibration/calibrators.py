"""The per-user calibrators: an affine map, ridge on the final feature, and
head fine-tuning; their checks, saving and loading, and the choice by the
number of dots.

All three share one interface: `fit(samples, gaze_cm, subjects=None)`,
`predict(samples)`, `save(path)` and the module's `load(path, model)`.
`samples` is a dict of NumPy arrays named like the outputs of the exported
`.tflite` file: `gaze_cm` `(N, 2)`, the network's prediction, and
`final_feature` `(N, 128)`. A point is a distinct gaze target (a dot); its
frames are its samples. Each calibrator stores the fingerprint of the model
it was fitted on (`model_fingerprint`) and refuses to load onto another.

Example:

>>> rng = np.random.default_rng(0)
>>> predicted = rng.uniform(-5, 5, (30, 2))
>>> true = predicted @ np.array([[1.1, 0.0], [0.1, 0.9]]).T + [0.5, -1.0]
>>> affine = AffineCalibrator(alpha=0.0).fit({"gaze_cm": predicted}, true)
>>> bool(np.allclose(affine.predict({"gaze_cm": predicted}), true))
True
"""

import json
import os
import time

import numpy as np

from tat_keras import ordinal
from tat_keras.calibration.heads import FEATURE_KEY
from tat_keras.calibration.heads import HEAD_WEIGHT_NAMES
from tat_keras.calibration.heads import OrdinalHeads
from tat_keras.calibration.heads import PREDICTION_KEY
from tat_keras.calibration.heads import model_fingerprint

FORMAT = "tat_keras.calibrator.v1"
_POINT_RESOLUTION_CM = 1e-3


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
    docs/estimator.md reports (its section "Per-user calibration").
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
