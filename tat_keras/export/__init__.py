"""TFLite export of GazeNet: serving graph, conversion modes, QAT bridge, runner.

`tat_keras.export.qat` (tf_keras and tfmot) is imported on use only.
"""

from tat_keras.export.runner import TFLiteGazeModel
from tat_keras.export.runner import measure_latency
from tat_keras.export.tflite import INTEGER_MODES
from tat_keras.export.tflite import MODES
from tat_keras.export.tflite import convert
from tat_keras.export.tflite import count_macs
from tat_keras.export.tflite import export_saved_model
from tat_keras.export.tflite import export_tflite
from tat_keras.export.tflite import read_metadata
from tat_keras.export.tflite import representative_dataset_from
from tat_keras.export.tflite import serving_model
