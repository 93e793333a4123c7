"""Data: GazeCapture's layout and TFDS builder, the synthetic twin, the pipeline.

Importing this package is light: it loads neither TensorFlow nor Keras. Its
sub-modules import on first use (`tat_keras.data.pipeline` brings TensorFlow,
`tat_keras.data.synthetic` and `tat_keras.data.gaze_capture.layout` only
NumPy and Pillow; `tat_keras.data.arrays`, splits exported as NumPy arrays,
only NumPy). The `gaze_capture` dataset is registered with TFDS when
its builder module is imported:

>>> import tensorflow_datasets as tfds
>>> from tat_keras.data.gaze_capture import gaze_capture_dataset_builder
>>> "gaze_capture" in tfds.list_builders()
True
"""

from tat_keras import submodules

__getattr__ = submodules.on_first_use(__name__)
