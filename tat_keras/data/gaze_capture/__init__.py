"""The `gaze_capture` dataset: GazeCapture's layout and its TFDS builder.

`layout` reads and writes the published on-disk format (NumPy and Pillow
only); `gaze_capture_dataset_builder` is the TFDS builder, registered with
TFDS when it is imported. The builder's names below load it (and TensorFlow)
on first use, so `import tat_keras.data.gaze_capture.layout` stays light.

>>> from tat_keras.data.gaze_capture import layout
>>> layout.face_grid((160., 120., 320., 240.), (640, 480))
(7, 7, 13, 13)
"""

import importlib

_BUILDER_MODULE = f"{__name__}.gaze_capture_dataset_builder"
_BUILDER_NAMES = ("GazeCapture", "GazeCaptureConfig", "SKIPS_FILE_NAME", "format_skips")
_SUBMODULES = ("gaze_capture_dataset_builder", "layout")


def __getattr__(name):
    if name in _BUILDER_NAMES:
        return getattr(importlib.import_module(_BUILDER_MODULE), name)
    if name in _SUBMODULES:
        return importlib.import_module(f"{__name__}.{name}")
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | set(_BUILDER_NAMES) | set(_SUBMODULES))
