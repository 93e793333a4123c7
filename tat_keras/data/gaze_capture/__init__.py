"""The `gaze_capture` TFDS dataset (GazeCapture and its synthetic twin)."""

from tat_keras.data.gaze_capture.gaze_capture_dataset_builder import GazeCapture
from tat_keras.data.gaze_capture.gaze_capture_dataset_builder import GazeCaptureConfig
from tat_keras.data.gaze_capture.gaze_capture_dataset_builder import SKIPS_FILE_NAME
from tat_keras.data.gaze_capture.gaze_capture_dataset_builder import format_skips
