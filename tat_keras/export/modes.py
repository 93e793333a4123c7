"""The TFLite export modes and the input dtype of each.

One definition for the export library (`tat_keras.export.tflite`) and the
command line (`tflite/export.py`, which lists the modes before it loads
TensorFlow). This module imports nothing.

- `float32`: plain conversion.
- `float16`: float16 weights, float32 compute.
- `dynamic`: int8 weights, activations quantized on the fly.
- `int8`: full integer, calibrated on training data; uint8 pixel inputs.
- `qat`: full integer from quantization-aware fine-tuning on training data;
  uint8 pixel inputs.
"""

MODES = ("float32", "float16", "dynamic", "int8", "qat")
# Full-integer modes: uint8 inputs, and both need training data (calibration
# for `int8`, fine-tuning for `qat`).
INTEGER_MODES = ("int8", "qat")


def check_mode(mode):
    """Raises a ValueError unless `mode` is one of `MODES`.

    Example:

    >>> check_mode("int8")
    >>> check_mode("int4")
    Traceback (most recent call last):
    ...
    ValueError: mode must be one of float32, float16, dynamic, int8, qat. Received: mode='int4'
    """
    if mode not in MODES:
        raise ValueError(
            f"mode must be one of {', '.join(MODES)}. Received: mode={mode!r}"
        )


def input_dtype_of(mode):
    """The input dtype of a `.tflite` of `mode`: "uint8" or "float32".

    Example:

    >>> input_dtype_of("qat")
    'uint8'
    """
    check_mode(mode)
    return "uint8" if mode in INTEGER_MODES else "float32"
