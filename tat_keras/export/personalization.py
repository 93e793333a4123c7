"""On-device personalization: a TFLite model of the ordinal heads that trains.

The main `.tflite` gives the 128-D final feature beside the gaze
(`tat_keras.export.tflite`); this second, small file holds the two ordinal
heads as variables and lets an app calibrate them on the phone. Its
signatures:

- `infer(final_feature (N, D))` -> `gaze_cm (N, 2)` (Eq. 3) and the bin
  probabilities `x`, `y`;
- `train(final_feature (B, D), gaze_cm (B, 2), sample_weight (B,),
  learning_rate ())` -> `loss`: one plain gradient step of the ordinal loss
  (Eq. 2) on a calibration batch of the fixed size `B` (pad with zero
  weights), returning the loss before the step;
- `get_weights()` -> `x_kernel`, `x_bias`, `y_kernel`, `y_bias`;
- `set_weights(x_kernel, x_bias, y_kernel, y_bias)` -> `num_weights`, the
  count of values written, to restore a user's heads or start over.

Everything is builtin TFLite ops, so it runs under LiteRT on a host exactly
as on a phone (no select-TF ops: LiteRT has no Flex runtime on the host).
The step is written out rather than taken from a tape or a Keras optimizer
(which does not convert): sigmoid cross-entropy on the logits, gradient
`sigmoid(z) - t` per bin, assigned to the variables. It is the step of
`tat_keras.calibration.OrdinalHeads.train_step`.

The variables are plain `tf.Variable`s holding the network's heads, so the
file starts from the trained heads; `set_weights` exists because a
converted training model does not keep the values of Keras variables, and
an app restores a user's calibration through it.

Example:

>>> from tat_keras import calibration, models
>>> net = models.GazeNet(width_multiplier=0.125, x_bins=8, y_bins=8)
>>> heads = calibration.OrdinalHeads.from_model(net)
>>> model = PersonalizationModel(convert(heads, batch_size=16))
>>> model.infer(np.zeros((3, 128), "float32")).shape
(3, 2)
"""

import json
import os
import time

import numpy as np
import tensorflow as tf

from tat_keras import calibration

SIGNATURES = ("infer", "train", "get_weights", "set_weights")
DEFAULT_BATCH_SIZE = 256


class HeadsModule(tf.Module):
    """The ordinal heads as variables, with the four signatures above.

    Args:
        heads: calibration.OrdinalHeads. Initial weights and label range.
        batch_size: int. Fixed size of the calibration batch of `train`.
    """

    def __init__(self, heads, batch_size=DEFAULT_BATCH_SIZE):
        super().__init__(name="ordinal_heads")
        if int(batch_size) != batch_size or batch_size < 1:
            raise ValueError(f"batch_size must be a positive integer. Received: batch_size={batch_size}")
        self.bins = heads.bins
        self.variables_by_name = {
            name: tf.Variable(heads.weights[name].astype(np.float32), name=name)
            for name in calibration.HEAD_WEIGHT_NAMES
        }
        feature_size = heads.feature_size
        weight_specs = [
            tf.TensorSpec(self.variables_by_name[name].shape, tf.float32, name=name)
            for name in calibration.HEAD_WEIGHT_NAMES
        ]
        # The signature keys are the functions' names.
        def infer(final_feature):
            return self._infer(final_feature)

        def train(final_feature, gaze_cm, sample_weight, learning_rate):
            return self._train(final_feature, gaze_cm, sample_weight, learning_rate)

        def get_weights():
            return {name: tf.identity(v) for name, v in self.variables_by_name.items()}

        def set_weights(x_kernel, x_bias, y_kernel, y_bias):
            return self._set_weights(x_kernel, x_bias, y_kernel, y_bias)

        self.infer = tf.function(
            infer,
            input_signature=[tf.TensorSpec((None, feature_size), tf.float32, name="final_feature")],
        )
        self.train = tf.function(
            train,
            input_signature=[
                tf.TensorSpec((batch_size, feature_size), tf.float32, name="final_feature"),
                tf.TensorSpec((batch_size, 2), tf.float32, name="gaze_cm"),
                tf.TensorSpec((batch_size,), tf.float32, name="sample_weight"),
                tf.TensorSpec((), tf.float32, name="learning_rate"),
            ],
        )
        self.get_weights = tf.function(get_weights, input_signature=[])
        self.set_weights = tf.function(set_weights, input_signature=weight_specs)

    def _logits(self, features, head):
        return (
            tf.matmul(features, self.variables_by_name[f"{head}_kernel"])
            + self.variables_by_name[f"{head}_bias"]
        )

    def _infer(self, final_feature):
        outputs = {}
        decoded = []
        for head in calibration.HEAD_NAMES:
            probs = tf.sigmoid(self._logits(final_feature, head))
            bins = self.bins[head]
            count = tf.reduce_sum(tf.cast(probs >= 0.5, tf.float32), axis=-1)
            decoded.append(bins.low + bins.bin_size * (count + 0.5))
            outputs[head] = probs
        outputs["gaze_cm"] = tf.stack(decoded, axis=-1)
        return outputs

    def _targets(self, values, bins):
        """Ordinal labels of Eq. 1, as `OrdinalBins.encode` computes them."""
        clipped = tf.clip_by_value(values, bins.low, bins.high - 0.5 * bins.bin_size)
        edges = (np.arange(bins.num_bins, dtype=np.float32) + 1.0) * np.float32(bins.bin_size)
        return tf.cast(edges <= (clipped - bins.low)[:, None], tf.float32)

    def _train(self, final_feature, gaze_cm, sample_weight, learning_rate):
        share = sample_weight / tf.reduce_sum(sample_weight)
        loss = tf.constant(0.0)
        updates = {}
        for axis, head in enumerate(calibration.HEAD_NAMES):
            logits = self._logits(final_feature, head)
            targets = self._targets(gaze_cm[:, axis], self.bins[head])
            # softplus(z) - z t, written with builtin ops only.
            softplus = tf.maximum(logits, 0.0) + tf.math.log(1.0 + tf.exp(-tf.abs(logits)))
            per_sample = tf.reduce_sum(softplus - logits * targets, axis=-1)
            loss += tf.reduce_sum(share * per_sample)
            d_logits = (tf.sigmoid(logits) - targets) * share[:, None]
            updates[f"{head}_kernel"] = tf.matmul(final_feature, d_logits, transpose_a=True)
            updates[f"{head}_bias"] = tf.reduce_sum(d_logits, axis=0)
        for name, gradient in updates.items():
            self.variables_by_name[name].assign_sub(learning_rate * gradient)
        return {"loss": loss}

    def _set_weights(self, x_kernel, x_bias, y_kernel, y_bias):
        values = {"x_kernel": x_kernel, "x_bias": x_bias, "y_kernel": y_kernel, "y_bias": y_bias}
        count = 0
        for name, value in values.items():
            self.variables_by_name[name].assign(value)
            count += int(np.prod(self.variables_by_name[name].shape))
        return {"num_weights": tf.constant(count, tf.int32)}


def convert(heads, batch_size=DEFAULT_BATCH_SIZE):
    """The personalization `.tflite` of `heads` (bytes), builtin ops only.

    Args:
        heads: calibration.OrdinalHeads. The network's heads.
        batch_size: int. Fixed size of the `train` batch.

    Returns:
        bytes: the flatbuffer.
    """
    module = HeadsModule(heads, batch_size)
    concrete = [getattr(module, name).get_concrete_function() for name in SIGNATURES]
    converter = tf.lite.TFLiteConverter.from_concrete_functions(concrete, module)
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS]
    converter.experimental_enable_resource_variables = True
    return converter.convert()


def metadata_of(heads, batch_size, fingerprint=None):
    """What the personalization file holds, for `FILE.json` beside it."""
    return {
        "format": "tat_keras.personalization_tflite.v1",
        "model_fingerprint": fingerprint,
        "feature_size": heads.feature_size,
        "batch_size": int(batch_size),
        "signatures": {
            "infer": "final_feature (N, D) -> gaze_cm (N, 2), x, y",
            "train": "final_feature (B, D), gaze_cm (B, 2), sample_weight (B,), "
                     "learning_rate () -> loss (before the step)",
            "get_weights": "-> x_kernel, x_bias, y_kernel, y_bias",
            "set_weights": "x_kernel, x_bias, y_kernel, y_bias -> num_weights",
        },
        **heads.get_config(),
    }


def export_personalization(model, output_path, batch_size=DEFAULT_BATCH_SIZE):
    """Writes the personalization `.tflite` of a GazeNet and `FILE.json`.

    Args:
        model: GazeNet. The trained network (its heads are copied).
        output_path: str. The `.tflite` to write.
        batch_size: int. Fixed size of the `train` batch.

    Returns:
        dict: the metadata written beside the file.
    """
    heads = calibration.OrdinalHeads.from_model(model)
    content = convert(heads, batch_size)
    folder = os.path.dirname(os.path.abspath(output_path))
    os.makedirs(folder, exist_ok=True)
    with open(output_path, "wb") as f:
        f.write(content)
    metadata = metadata_of(heads, batch_size, calibration.model_fingerprint(model))
    with open(output_path + ".json", "w") as f:
        json.dump({**metadata, "file_bytes": len(content)}, f, indent=2)
    return metadata


class PersonalizationModel:
    """Runs a personalization `.tflite` with LiteRT: infer, train, weights.

    Args:
        model: bytes or str. The flatbuffer, or the path of the file.
        num_threads: int or None. Interpreter threads.

    Example:

    >>> runner = PersonalizationModel("heads.tflite")  # doctest: +SKIP
    >>> losses = runner.fit(features, gaze_cm, steps=50, learning_rate=0.01)  # doctest: +SKIP
    """

    def __init__(self, model, num_threads=None):
        from ai_edge_litert.interpreter import Interpreter

        if isinstance(model, (bytes, bytearray)):
            self._interpreter = Interpreter(model_content=bytes(model), num_threads=num_threads)
        else:
            if not os.path.isfile(model):
                raise FileNotFoundError(
                    f"No personalization .tflite at {model}. Write one with "
                    "tat_keras.export.personalization.export_personalization."
                )
            self._interpreter = Interpreter(model_path=os.fspath(model), num_threads=num_threads)
        found = set(self._interpreter.get_signature_list())
        if not set(SIGNATURES) <= found:
            raise ValueError(
                f"Not a personalization model: it needs signatures {list(SIGNATURES)}. "
                f"Received: signatures={sorted(found)}"
            )
        self._runners = {name: self._interpreter.get_signature_runner(name) for name in SIGNATURES}
        train_inputs = self._runners["train"].get_input_details()
        self.batch_size, self.feature_size = (int(d) for d in train_inputs["final_feature"]["shape"])

    def infer(self, final_feature):
        """Gaze in cm `(N, 2)` from final features `(N, D)`."""
        features = np.asarray(final_feature, np.float32)
        if len(features) == 0:
            return np.zeros((0, 2), np.float32)
        return self._runners["infer"](final_feature=features)["gaze_cm"]

    def train_step(self, final_feature, gaze_cm, learning_rate, sample_weight=None):
        """One step on up to `batch_size` samples; returns the loss before it.

        Fewer samples are padded with zero weights; more are refused (the
        batch size is fixed in the file).
        """
        features = np.asarray(final_feature, np.float32)
        n = len(features)
        if n == 0 or n > self.batch_size:
            raise ValueError(
                f"The train signature takes 1 to {self.batch_size} samples. "
                f"Received: {n}"
            )
        weight = np.ones(n, np.float32) if sample_weight is None else np.asarray(sample_weight, np.float32)
        pad = self.batch_size - n
        feeds = {
            "final_feature": np.pad(features, ((0, pad), (0, 0))),
            "gaze_cm": np.pad(np.asarray(gaze_cm, np.float32), ((0, pad), (0, 0))),
            "sample_weight": np.pad(weight, (0, pad)),
            "learning_rate": np.asarray(learning_rate, np.float32),
        }
        return float(self._runners["train"](**feeds)["loss"])

    def fit(self, final_feature, gaze_cm, steps, learning_rate):
        """`steps` train steps on one batch; returns the losses before each."""
        return [self.train_step(final_feature, gaze_cm, learning_rate) for _ in range(steps)]

    def get_weights(self):
        """The current head weights, a dict of float32 arrays."""
        return {k: np.array(v) for k, v in self._runners["get_weights"]().items()}

    def set_weights(self, weights):
        """Writes head weights (a dict like `get_weights`' output)."""
        feeds = {name: np.asarray(weights[name], np.float32) for name in calibration.HEAD_WEIGHT_NAMES}
        return int(self._runners["set_weights"](**feeds)["num_weights"])


class TFLiteHeadFineTuning(calibration.Calibrator):
    """Head fine-tuning run by the personalization `.tflite` under LiteRT.

    The calibrator of `calibration.HeadFineTuning`, with each step taken by
    the file's `train` signature, as an app would on the phone: `fit`
    writes the network's heads (`set_weights`), takes `steps` steps on the
    calibration samples (at most the file's batch size) and reads the tuned
    weights back (`get_weights`). `save` writes them in the format of
    `HeadFineTuning`, so `calibration.load` reads them back in NumPy.

    Args:
        runner: PersonalizationModel. The file, loaded.
        heads: calibration.OrdinalHeads. The network's heads, the start.
        steps: int. Gradient steps.
        learning_rate: float. Step size.
        model_fingerprint: str or None. See `calibration.Calibrator`.
    """

    method = "heads_tflite"
    requires = (calibration.FEATURE_KEY,)

    def __init__(self, runner, heads, steps=100, learning_rate=0.01, model_fingerprint=None):
        # Validates heads, steps and learning_rate as the NumPy method does.
        self._numpy = calibration.HeadFineTuning(heads, steps, learning_rate, model_fingerprint)
        super().__init__(model_fingerprint, min_points=1)
        if runner.feature_size != heads.feature_size:
            raise ValueError(
                f"The file reads {runner.feature_size}-D features, the heads "
                f"{heads.feature_size}-D. Export the file from the same model."
            )
        self.runner = runner
        self.initial_heads = heads
        self.steps = int(steps)
        self.learning_rate = float(learning_rate)
        self.weights = None
        self.losses = []
        self.seconds_per_step = None

    def _fit(self, samples, gaze_cm):
        features = samples[calibration.FEATURE_KEY]
        self.runner.set_weights(self.initial_heads.weights)
        self.losses = []
        start = time.perf_counter()
        for _ in range(self.steps):
            self.losses.append(self.runner.train_step(features, gaze_cm, self.learning_rate))
        self.seconds_per_step = (time.perf_counter() - start) / self.steps
        # A step of size 0 only reports the loss of the tuned heads.
        self.losses.append(self.runner.train_step(features, gaze_cm, 0.0))
        self.weights = self.runner.get_weights()

    def _predict(self, samples):
        self.runner.set_weights(self.weights)
        return self.runner.infer(samples[calibration.FEATURE_KEY]).astype(np.float64)

    def _state(self):
        return self.weights

    def _set_state(self, state):
        self.weights = {name: np.asarray(state[name], np.float32) for name in calibration.HEAD_WEIGHT_NAMES}

    def get_config(self):
        return {"steps": self.steps, "learning_rate": self.learning_rate,
                "batch_size": self.runner.batch_size}

    def as_head_fine_tuning(self):
        """The tuned heads as a fitted `calibration.HeadFineTuning`."""
        if not self.fitted:
            raise ValueError("The heads_tflite calibrator is not fitted: call fit first.")
        tuned = self._numpy
        tuned._set_state(self.weights)
        tuned.num_points, tuned.num_samples = self.num_points, self.num_samples
        tuned.losses, tuned.seconds_per_step = list(self.losses), self.seconds_per_step
        return tuned

    def save(self, path):
        """Writes the tuned weights as `HeadFineTuning.save` does (`.npz`)."""
        return self.as_head_fine_tuning().save(path)
