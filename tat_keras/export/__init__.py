"""TFLite export of GazeNet: serving graph, conversion modes, QAT bridge, runner.

The names below load their module on first use, so that importing
`tat_keras.export.modes` (which `tflite/export.py` reads before it parses
its flags) loads neither TensorFlow nor Keras. `tat_keras.export.qat`
(tf_keras and tfmot) is imported on use only.
"""

import importlib

_PUBLIC = {
    "TFLiteGazeModel": "runner",
    "measure_latency": "runner",
    "INTEGER_MODES": "modes",
    "MODES": "modes",
    "convert": "tflite",
    "count_macs": "tflite",
    "export_saved_model": "tflite",
    "export_tflite": "tflite",
    "read_metadata": "tflite",
    "representative_dataset_from": "tflite",
    "serving_model": "tflite",
}
__all__ = sorted(_PUBLIC)


def __getattr__(name):
    if name not in _PUBLIC:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    module = importlib.import_module(f"{__name__}.{_PUBLIC[name]}")
    return getattr(module, name)
