"""TFLite export of GazeNet: serving graph, conversion modes, QAT bridge, runner.

- `modes`: the conversion modes (no TensorFlow: `tflite/export.py` reads it
  before it parses its flags);
- `tflite`: the serving graph, `convert`, `export_tflite`, the metadata;
- `runner`: `TFLiteGazeModel` and `measure_latency` (LiteRT);
- `qat`: the tf_keras and tfmot quantization-aware training bridge;
- `personalization`: the on-device personalization model.

The modules import on first use, so importing the package loads neither
TensorFlow nor Keras.
"""

from tat_keras import submodules

__getattr__ = submodules.on_first_use(__name__)
