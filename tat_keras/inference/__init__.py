"""From a camera frame to a point on the screen.

`GazeEstimator` (estimator.py) wires the face and eye detector
(detector.py; MediaPipe's models by default, run by `mediapipe_models.py`),
the crops of the data builder, a gaze model and the screen mapping
(screen.py) with a One Euro filter (`tat_keras.smoothing`).
"""

from tat_keras import submodules
from tat_keras.inference.detector import Detection
from tat_keras.inference.detector import HaarFaceEyeDetector
from tat_keras.inference.detector import MediaPipeFaceEyeDetector
from tat_keras.inference.detector import make_detector
from tat_keras.inference.estimator import GazeEstimator
from tat_keras.inference.estimator import GazeResult

__getattr__ = submodules.on_first_use(__name__)
