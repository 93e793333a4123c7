"""TFLite export of a trained GazeNet: decoding in the graph, five modes.

The exported file is ready for an app. Its inputs are `face`, `left_eye`
and `right_eye`, each `1 x S x S x 3` (raw uint8 pixels for the integer
modes, float32 pixels in [0, 255] otherwise); its main output `gaze_cm`
(float32, `1 x 2`) is the ordinal decoding of Eq. 3 run inside the graph,
and the bin probabilities are the extra outputs `x` and `y`. The 128-D final
feature is the output `final_feature`, so an app can calibrate on it
(`tat_keras.calibration`, `tat_keras.export.personalization`); the `qat`
mode's serving graph does not have it yet. The label range, bin size, input
size and mode are stored in the file (flatbuffer metadata named
`METADATA_NAME`, JSON) and in `FILE.json` beside it.

Export goes through `model.export(dir, format="tf_saved_model")` of a
serving model (`serving_model`) and one `convert(saved_model_dir, mode)`:

- `float32`: plain conversion.
- `float16`: float16 weights, float32 compute.
- `dynamic`: int8 weights, activations quantized on the fly.
- `int8`: full integer, calibrated on a representative dataset at batch
  size 1. The serving graph takes uint8 pixels and casts them to float, so
  the file's inputs are plain uint8 (no scale, no zero point) and the
  network runs in int8. The decoding after the heads (count of bins >= 0.5
  times the bin size plus the offset) is kept in float32: quantizing it
  would round `gaze_cm` to the int8 grid of the calibrated range and clip
  predictions outside that range.
- `qat`: a SavedModel written by `tat_keras.export.qat` from a
  quantization-aware fine-tuned `tf_keras` model, converted to int8 with
  its learned ranges (uint8 inputs, float32 decoding, as for `int8`).
"""

import json
import os
import tempfile

import keras
import numpy as np
import tensorflow as tf
from keras import ops

from tat_keras import models
from tat_keras import ordinal
from tat_keras.export.modes import INTEGER_MODES  # noqa: F401  (public name)
from tat_keras.export.modes import MODES
from tat_keras.export.modes import check_mode as _check_mode
from tat_keras.export.modes import input_dtype_of

METADATA_NAME = "tat_keras_metadata"
OUTPUT_NAMES = ("gaze_cm", "x", "y", "final_feature")
FEATURE_LAYER = "final_feature"
DECODING_PREFIX = "gaze_decoding"


def serving_model(model, input_dtype="float32"):
    """A batch-1 Keras model around `model` that outputs gaze in cm.

    Args:
        model: GazeNet. The trained network (pixels in [0, 255] in).
        input_dtype: str. "float32" or "uint8"; uint8 pixels are cast to
            float32 inside the graph.

    Returns:
        keras.Model with inputs `face`, `left_eye`, `right_eye`
        `(1, S, S, 3)` and outputs `gaze_cm` `(1, 2)` (Eq. 3), the bin
        probabilities `x`, `y` and the final feature `final_feature`
        `(1, 128)`.

    Example:

    >>> net = models.GazeNet(width_multiplier=0.125, x_bins=8, y_bins=8)
    >>> serving = serving_model(net, "uint8")
    >>> batch = {n: np.zeros((1, 64, 64, 3), "uint8") for n in models.INPUT_NAMES}
    >>> tuple(serving(batch)["gaze_cm"].shape)
    (1, 2)
    """
    if input_dtype not in ("float32", "uint8"):
        raise ValueError(
            "input_dtype must be 'float32' or 'uint8'. "
            f"Received: input_dtype={input_dtype!r}"
        )
    size = model.image_size
    inputs = {
        name: keras.Input((size, size, 3), batch_size=1, dtype=input_dtype, name=name)
        for name in models.INPUT_NAMES
    }
    pixels = {name: ops.cast(tensor, "float32") for name, tensor in inputs.items()}
    with_feature = keras.Model(
        model.inputs,
        {
            "x": model.get_layer("x").output,
            "y": model.get_layer("y").output,
            FEATURE_LAYER: model.get_layer(FEATURE_LAYER).output,
        },
        name=f"{model.name}_with_feature",
    )
    probs = with_feature(pixels)
    gaze_x = ordinal.OrdinalDecoding(
        model.x_low, model.x_bin_size, name=f"{DECODING_PREFIX}_x"
    )(probs["x"])
    gaze_y = ordinal.OrdinalDecoding(
        model.y_low, model.y_bin_size, name=f"{DECODING_PREFIX}_y"
    )(probs["y"])
    gaze_cm = ops.stack([gaze_x, gaze_y], axis=-1)
    outputs = {
        "gaze_cm": gaze_cm,
        "x": probs["x"],
        "y": probs["y"],
        FEATURE_LAYER: probs[FEATURE_LAYER],
    }
    return keras.Model(inputs, outputs, name="gaze_net_serving")


def export_saved_model(model, directory, input_dtype="float32"):
    """Writes the serving model of `model` as a TF SavedModel.

    Args:
        model: GazeNet.
        directory: str. Output folder.
        input_dtype: str. "float32" or "uint8".

    Returns:
        `directory`.
    """
    serving = serving_model(model, input_dtype)
    size = model.image_size
    signature = [
        {
            name: tf.TensorSpec((1, size, size, 3), input_dtype, name=name)
            for name in models.INPUT_NAMES
        }
    ]
    serving.export(
        directory, format="tf_saved_model", verbose=False, input_signature=signature
    )
    return directory


def _decoding_tensor_names(saved_model_dir):
    """Names of the decoding tensors, which integer modes keep in float."""
    float_model = tf.lite.TFLiteConverter.from_saved_model(saved_model_dir).convert()
    from ai_edge_litert.interpreter import Interpreter

    interpreter = Interpreter(model_content=float_model)
    outputs = interpreter.get_signature_runner().get_output_details()
    names = {outputs["gaze_cm"]["name"]}
    for tensor in interpreter.get_tensor_details():
        if DECODING_PREFIX in tensor["name"]:
            names.add(tensor["name"])
    return sorted(names)


def convert(saved_model_dir, mode, representative_dataset=None):
    """Converts a serving SavedModel to TFLite in one of `MODES`.

    Args:
        saved_model_dir: str. A SavedModel from `export_saved_model` (or,
            for `qat`, from `tat_keras.export.qat.export_saved_model`).
        mode: str. One of `MODES`.
        representative_dataset: callable or None. For `int8` only: returns
            an iterator of input dicts, batch size 1, uint8 pixels.

    Returns:
        bytes: the `.tflite` flatbuffer (without metadata).
    """
    _check_mode(mode)
    if mode == "int8" and representative_dataset is None:
        raise ValueError(
            "mode='int8' needs calibration data: pass representative_dataset "
            "(see `representative_dataset_from`). Received: "
            "representative_dataset=None"
        )
    converter = tf.lite.TFLiteConverter.from_saved_model(saved_model_dir)
    if mode == "float32":
        return converter.convert()
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    if mode == "float16":
        converter.target_spec.supported_types = [tf.float16]
        return converter.convert()
    if mode in ("dynamic", "qat"):
        # `qat`: the fake-quantization ranges learned in training quantize
        # the network; the decoding after it has none and stays float.
        return converter.convert()
    converter.representative_dataset = representative_dataset
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    options = tf.lite.experimental.QuantizationDebugOptions(
        denylisted_nodes=_decoding_tensor_names(saved_model_dir)
    )
    debugger = tf.lite.experimental.QuantizationDebugger(
        converter=converter,
        debug_dataset=representative_dataset,
        debug_options=options,
    )
    return debugger.get_nondebug_quantized_model()


def representative_dataset_from(dataset, num_samples=300):
    """Calibration data for `convert(..., "int8", ...)` from a tf.data source.

    Args:
        dataset: tf.data.Dataset of `(inputs, ...)` at batch size 1, inputs
            a dict of float32 pixels in [0, 255] (the training pipeline).
        num_samples: int. How many samples to draw.

    Returns:
        A callable returning an iterator of dicts of uint8 `(1, S, S, 3)`.
    """

    def generate():
        for element in dataset.take(num_samples):
            inputs = element[0] if isinstance(element, (tuple, list)) else element
            yield {
                name: np.clip(np.rint(np.asarray(inputs[name])), 0, 255).astype(
                    np.uint8
                )
                for name in models.INPUT_NAMES
            }

    return generate


def count_macs(model):
    """Multiply-accumulates of one forward pass of `model` (batch 1).

    Counts `Conv2D` (output pixels x kernel area x input channels x
    filters) and `Dense` (inputs x units) layers, once per call, so a
    shared eye branch counts twice.

    Args:
        model: keras.Model (e.g. GazeNet).

    Returns:
        int.

    Example:

    >>> net = models.GazeNet(width_multiplier=0.125, x_bins=8, y_bins=8)
    >>> count_macs(net) > 0
    True
    """
    total = 0
    for layer in model.layers:
        if isinstance(layer, keras.Model):
            total += count_macs(layer) * max(1, len(layer._inbound_nodes))
            continue
        if isinstance(layer, keras.layers.Conv2D):
            kernel_h, kernel_w, channels_in, filters = layer.kernel.shape
            for node in layer._inbound_nodes:
                _, height, width, _ = node.output_tensors[0].shape
                total += height * width * kernel_h * kernel_w * channels_in * filters
        elif isinstance(layer, keras.layers.Dense):
            units_in, units = layer.kernel.shape
            total += units_in * units * len(layer._inbound_nodes)
    return int(total)


def metadata_of(model, mode):
    """The dict stored in the file and in `FILE.json`."""
    _check_mode(mode)
    size = model.image_size
    outputs = {
        "gaze_cm": "float32 [1, 2]: (x, y) in cm from the camera (Eq. 3)",
        "x": f"float32 [1, {model.x_bins}]: bin probabilities, x",
        "y": f"float32 [1, {model.y_bins}]: bin probabilities, y",
    }
    if mode != "qat":
        outputs[FEATURE_LAYER] = (
            f"float32 [1, {models.FINAL_FEATURES}]: final feature, for calibration"
        )
    return {
        "format": "tat_keras.gaze_tflite.v1",
        "mode": mode,
        "image_size": size,
        "inputs": {
            name: {"shape": [1, size, size, 3], "dtype": input_dtype_of(mode)}
            for name in models.INPUT_NAMES
        },
        "input_pixels": "RGB in [0, 255]",
        "outputs": outputs,
        "x": {"low": model.x_low, "bin_size": model.x_bin_size, "num_bins": model.x_bins},
        "y": {"low": model.y_low, "bin_size": model.y_bin_size, "num_bins": model.y_bins},
        "width_multiplier": model.width_multiplier,
        "macs": count_macs(model),
    }


def add_metadata(tflite_bytes, metadata):
    """Returns `tflite_bytes` with `metadata` (JSON) in its flatbuffer."""
    from tensorflow.lite.tools import flatbuffer_utils

    model = flatbuffer_utils.convert_bytearray_to_object(bytearray(tflite_bytes))
    schema = flatbuffer_utils.schema_fb
    model.metadata = [m for m in (model.metadata or []) if m.name != METADATA_NAME.encode()]
    buffer = schema.BufferT()
    buffer.data = np.frombuffer(json.dumps(metadata).encode(), np.uint8)
    model.buffers.append(buffer)
    entry = schema.MetadataT()
    entry.name = METADATA_NAME
    entry.buffer = len(model.buffers) - 1
    model.metadata.append(entry)
    return bytes(flatbuffer_utils.convert_object_to_bytearray(model))


def read_metadata(tflite):
    """The metadata dict stored in a `.tflite` (path or bytes), or None."""
    from ai_edge_litert import schema_py_generated as schema

    if isinstance(tflite, (str, os.PathLike)):
        with open(tflite, "rb") as f:
            tflite = f.read()
    model = schema.Model.GetRootAs(bytearray(tflite), 0)
    for i in range(model.MetadataLength()):
        entry = model.Metadata(i)
        if entry.Name().decode() == METADATA_NAME:
            data = model.Buffers(entry.Buffer()).DataAsNumpy()
            return json.loads(bytes(data).decode())
    return None


def write_tflite(tflite_bytes, metadata, output_path):
    """Writes `output_path` (with metadata inside) and `output_path.json`."""
    content = add_metadata(tflite_bytes, metadata)
    folder = os.path.dirname(os.path.abspath(output_path))
    os.makedirs(folder, exist_ok=True)
    with open(output_path, "wb") as f:
        f.write(content)
    with open(output_path + ".json", "w") as f:
        json.dump({**metadata, "file_bytes": len(content)}, f, indent=2)
    return output_path


def export_tflite(
    model,
    output_path,
    mode,
    *,
    representative_dataset=None,
    qat_dataset=None,
    qat_steps=100,
    qat_learning_rate=1e-5,
):
    """Exports a GazeNet to an app-ready `.tflite` and its `.json`.

    Args:
        model: GazeNet. The trained network.
        output_path: str. The `.tflite` to write.
        mode: str. One of `MODES`.
        representative_dataset: callable or None. Calibration data for
            `int8` (see `representative_dataset_from`).
        qat_dataset: tf.data.Dataset or None. For `qat`: batches of
            `(inputs, gaze_cm)` from the training pipeline.
        qat_steps: int. Fine-tuning steps for `qat`.
        qat_learning_rate: float. Learning rate of the `qat` fine-tuning.

    Returns:
        dict: the metadata written.

    Example:

    >>> net = models.GazeNet(width_multiplier=0.125, x_bins=8, y_bins=8)
    >>> path = os.path.join(tempfile.mkdtemp(), "gaze.tflite")
    >>> export_tflite(net, path, "float32")["mode"]
    'float32'
    """
    _check_mode(mode)
    metadata = metadata_of(model, mode)
    with tempfile.TemporaryDirectory() as work_dir:
        saved_model_dir = os.path.join(work_dir, "saved_model")
        if mode == "qat":
            from tat_keras.export import qat

            if qat_dataset is None:
                raise ValueError(
                    "mode='qat' fine-tunes on training data: pass qat_dataset. "
                    "Received: qat_dataset=None"
                )
            twin = qat.quantization_aware_finetune(
                model, qat_dataset, steps=qat_steps, learning_rate=qat_learning_rate
            )
            qat.export_saved_model(twin, model, saved_model_dir)
            metadata["qat_steps"] = int(qat_steps)
        else:
            export_saved_model(model, saved_model_dir, input_dtype_of(mode))
        tflite_bytes = convert(saved_model_dir, mode, representative_dataset)
    write_tflite(tflite_bytes, metadata, output_path)
    return metadata
