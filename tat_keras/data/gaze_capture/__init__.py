"""The `gaze_capture` dataset: GazeCapture's layout and its TFDS builder.

`layout` reads and writes the published on-disk format (NumPy and Pillow
only); `gaze_capture_dataset_builder` is the TFDS builder (it loads
TensorFlow), registered with TFDS when it is imported. Both import on first
use, so `import tat_keras.data.gaze_capture.layout` stays light.

>>> from tat_keras.data.gaze_capture import layout
>>> layout.face_grid((160., 120., 320., 240.), (640, 480))
(7, 7, 13, 13)
"""

from tat_keras import submodules

__getattr__ = submodules.on_first_use(__name__)
