"""Data: the `gaze_capture` TFDS builder, the synthetic twin, the pipeline.

Importing this package registers the `gaze_capture` dataset with TFDS:

>>> import tensorflow_datasets as tfds
>>> import tat_keras.data
>>> "gaze_capture" in tfds.list_builders()
True
"""

from tat_keras.data import gaze_capture  # Registers `gaze_capture`.
