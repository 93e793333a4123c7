"""Data: GazeCapture's layout and TFDS builder, the synthetic twin, the pipeline.

Importing this package is light: it loads neither TensorFlow nor Keras. Its
sub-modules load on first use (`tat_keras.data.pipeline` brings TensorFlow,
`tat_keras.data.synthetic` and `tat_keras.data.gaze_capture.layout` only
NumPy and Pillow). The `gaze_capture` dataset is registered with TFDS when
its builder module is imported:

>>> import tensorflow_datasets as tfds
>>> from tat_keras.data.gaze_capture import gaze_capture_dataset_builder
>>> "gaze_capture" in tfds.list_builders()
True
"""

import importlib

_SUBMODULES = ("devices", "gaze_capture", "pipeline", "synthetic")


def __getattr__(name):
    if name in _SUBMODULES:
        return importlib.import_module(f"{__name__}.{name}")
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | set(_SUBMODULES))
