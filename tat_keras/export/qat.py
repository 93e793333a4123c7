"""Quantization-aware training through tensorflow-model-optimization.

tfmot 0.8.1 quantizes only Keras 2 (`tf_keras`) models, so this module
builds the very same architecture with `tf_keras.layers` from
`tat_keras.models.gaze_net_graph` (no second copy of the network), copies
the trained Keras 3 weights into it, fine-tunes it briefly with the ordinal
loss (Eq. 2) under `tfmot.quantization.keras.quantize_model`, and writes a
serving SavedModel for `tat_keras.export.tflite.convert(..., "qat")`.

The `tf_keras` twin differs from GazeNet in two ways that tfmot needs:

- Three unshared branches: tfmot cannot fold batch normalization into a
  convolution that is called twice, so the left and right eye get their own
  layers, both loaded with the trained eye branch's weights.
- No `Rescaling` layer (tfmot has no quantize config for it): the twin takes
  normalized pixels `x / 127.5 - 1` (`normalize_pixels`). Folding the
  scale into the first convolution would not be exact, because that
  convolution pads with zeros ("same"), and a zero in raw pixels is -1, not
  0, after normalization: the border outputs would change. The serving
  graph therefore normalizes the uint8 pixels in float before the first
  quantized layer (two element-wise ops on the 64x64x3 input).
"""

import numpy as np
import tensorflow as tf

from tat_keras import models
from tat_keras import ordinal

# The per-sample losses of Eq. 2; tf_keras averages them over the batch.
_ORDINAL_LOSS = ordinal.OrdinalLoss()


def normalize_pixels(pixels):
    """Pixels in [0, 255] to [-1, 1], as GazeNet's `Rescaling` does."""
    return tf.cast(pixels, tf.float32) * models.PIXEL_SCALE + models.PIXEL_OFFSET


def _source_layer_name(name, share_eye_weights):
    for side in ("left_eye_", "right_eye_"):
        if share_eye_weights and name.startswith(side):
            return "eye_" + name[len(side):]
    return name


def build_tf_keras_twin(model):
    """The `tf_keras` twin of a GazeNet, with the trained weights copied.

    Args:
        model: GazeNet (Keras 3).

    Returns:
        tf_keras.Model taking normalized pixels (`normalize_pixels`) in a
        dict keyed by `models.INPUT_NAMES`, giving `{"x", "y"}` bin
        probabilities equal to `model`'s.

    Example:

    >>> net = models.GazeNet(width_multiplier=0.125, x_bins=8, y_bins=8)
    >>> twin = build_tf_keras_twin(net)
    >>> len(twin.get_layer("left_eye_conv11").get_weights())
    1
    """
    import tf_keras

    inputs, outputs = models.gaze_net_graph(
        tf_keras.layers,
        image_size=model.image_size,
        width_multiplier=model.width_multiplier,
        x_bins=model.x_bins,
        y_bins=model.y_bins,
        share_eye_weights=False,
        normalize_pixels=False,
        batch_norm_momentum=model.batch_norm_momentum,
    )
    twin = tf_keras.Model(inputs, outputs, name=f"{model.name}_tf_keras")
    for layer in twin.layers:
        if not layer.weights:
            continue
        source = model.get_layer(_source_layer_name(layer.name, model.share_eye_weights))
        weights = source.get_weights()
        if [w.shape for w in weights] != [tuple(w.shape) for w in layer.weights]:
            raise ValueError(
                f"Layer {layer.name} does not match {source.name} of the Keras "
                "model; the twin must be built from the same configuration. "
                f"Received: shapes={[w.shape for w in weights]}"
            )
        layer.set_weights(weights)
    return twin


def ordinal_loss(y_true, y_pred):
    """Ordinal loss for `tf_keras` (Eq. 2), per sample.

    `tat_keras.ordinal.OrdinalLoss.call` itself (written in `keras.ops`,
    which run on the TensorFlow tensors of a `tf_keras` graph): the sum
    over bins of binary cross-entropy; `tf_keras` averages over the batch.
    """
    return _ORDINAL_LOSS.call(y_true, y_pred)


def training_dataset(dataset, model):
    """Maps `(inputs, gaze_cm)` batches to the twin's inputs and targets."""
    bins = model.bins

    def to_twin(inputs, gaze_cm, *unused):
        features = {name: normalize_pixels(inputs[name]) for name in models.INPUT_NAMES}
        targets = {
            "x": tf.convert_to_tensor(bins["x"].encode(gaze_cm[:, 0])),
            "y": tf.convert_to_tensor(bins["y"].encode(gaze_cm[:, 1])),
        }
        return features, targets

    return dataset.map(to_twin)


def quantization_aware_finetune(model, dataset, *, steps=100, learning_rate=1e-5):
    """Fine-tunes a quantization-aware `tf_keras` twin of `model`.

    Args:
        model: GazeNet (Keras 3), trained.
        dataset: tf.data.Dataset of `(inputs, gaze_cm)` batches, inputs
            float32 pixels in [0, 255] (the training pipeline).
        steps: int. Optimizer steps (the dataset is repeated as needed).
        learning_rate: float. Adam learning rate.

    Returns:
        The quantization-aware tf_keras model (normalized pixels in).
    """
    import tensorflow_model_optimization as tfmot
    import tf_keras

    if int(steps) != steps or steps < 0:
        raise ValueError(f"steps must be a non-negative integer. Received: steps={steps}")
    quantized = tfmot.quantization.keras.quantize_model(build_tf_keras_twin(model))
    if steps:
        quantized.compile(
            optimizer=tf_keras.optimizers.Adam(learning_rate),
            loss={"x": ordinal_loss, "y": ordinal_loss},
        )
        data = training_dataset(dataset, model).repeat()
        quantized.fit(data, steps_per_epoch=int(steps), epochs=1, verbose=0)
    return quantized


def export_saved_model(twin, model, directory):
    """Writes the serving SavedModel of a (quantized) twin.

    The signature takes uint8 pixels `(1, S, S, 3)` and gives `gaze_cm`
    (Eq. 3, label range of `model`) and the bin probabilities `x`, `y`,
    like `tat_keras.export.tflite.serving_model`.

    Args:
        twin: tf_keras.Model from `build_tf_keras_twin` or
            `quantization_aware_finetune`.
        model: GazeNet whose label range decodes the outputs.
        directory: str. Output folder.

    Returns:
        `directory`.
    """
    size = model.image_size

    def serve(*pixels):
        pixels = dict(zip(models.INPUT_NAMES, pixels))
        probs = twin({k: normalize_pixels(v) for k, v in pixels.items()}, training=False)
        with tf.name_scope("gaze_decoding"):
            gaze_cm = model.decode(probs)  # Eq. 3, the model's own bins
        return {"gaze_cm": gaze_cm, "x": probs["x"], "y": probs["y"]}

    signature = [
        tf.TensorSpec((1, size, size, 3), tf.uint8, name=name)
        for name in models.INPUT_NAMES
    ]
    module = tf.Module()
    # Track only the variables: saving the tf_keras model itself would
    # trace every layer of the quantized model (slow, and not needed).
    module.variables_to_save = list(twin.variables)
    module.serve = tf.function(serve, input_signature=signature)
    tf.saved_model.save(module, directory, signatures={"serving_default": module.serve})
    return directory


def max_probability_difference(model, twin, inputs):
    """Largest |p_keras - p_twin| over both heads for a batch of pixels."""
    expected = model.predict(inputs, verbose=0)
    actual = twin.predict(
        {name: normalize_pixels(inputs[name]).numpy() for name in models.INPUT_NAMES},
        verbose=0,
    )
    return float(max(np.max(np.abs(expected[k] - actual[k])) for k in ("x", "y")))
