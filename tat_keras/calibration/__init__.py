"""Per-user calibration: a few dots of one user correct the network's gaze.

People differ in ways a network cannot see in its crops (the angle kappa
between the visual and optical axes of the eye, eye shape, how they hold
the device), so a practical tracker asks each user to look at a few dots
first. The calibrators are fitted on the samples of those dots (one user's
frames: the network's outputs and the true gaze in cm) and then correct
that user's later predictions. Three methods:

- `AffineCalibrator`: an affine map on the predicted gaze, least squares
  regularized toward the identity, so one dot gives a pure offset and more
  dots a full 2x2 map.
- `RidgeCalibrator`: ridge regression from the 128-D final feature to the
  residual of the prediction (the analogue of iTracker's per-user SVR on
  network features), regularized toward no correction.
- `HeadFineTuning`: a few plain gradient steps on the two ordinal heads
  (the layers `x` and `y` on `final_feature`) with the ordinal loss of
  Eq. 2, on the calibration samples only; the same step runs inside the
  on-device model of `tat_keras.export.personalization`.

The package has three modules:

- `heads`: the network's side: its heads in NumPy (`OrdinalHeads`), its
  fingerprint (`model_fingerprint`) and its final feature
  (`outputs_with_feature`).
- `calibrators`: the three calibrators, their checks, `load`, and the
  choice of a method by the number of dots (`method_for`).
- `evaluation`: measuring calibration on test subjects (which dots to
  calibrate on, each method fitted and tested per subject, mean errors with
  their intervals, a Markdown table).

Their public names are also names of this package (`calibration.X`).

Example (the method for one dot, and for nine):

>>> calibrator_for(1).method, calibrator_for(9).method
('affine', 'ridge')
"""

from tat_keras.calibration.calibrators import FORMAT
from tat_keras.calibration.calibrators import METHODS
from tat_keras.calibration.calibrators import RIDGE_FROM_POINTS
from tat_keras.calibration.calibrators import AffineCalibrator
from tat_keras.calibration.calibrators import Calibrator
from tat_keras.calibration.calibrators import HeadFineTuning
from tat_keras.calibration.calibrators import RidgeCalibrator
from tat_keras.calibration.calibrators import calibrator_for
from tat_keras.calibration.calibrators import count_points
from tat_keras.calibration.calibrators import load
from tat_keras.calibration.calibrators import make_calibrator
from tat_keras.calibration.calibrators import method_for
from tat_keras.calibration.evaluation import GAZECAPTURE_13_POINT_LAYOUT
from tat_keras.calibration.evaluation import choose_calibration_dots
from tat_keras.calibration.evaluation import evaluate_subjects
from tat_keras.calibration.evaluation import format_table
from tat_keras.calibration.evaluation import mean_errors
from tat_keras.calibration.heads import FEATURE_KEY
from tat_keras.calibration.heads import HEAD_NAMES
from tat_keras.calibration.heads import HEAD_WEIGHT_NAMES
from tat_keras.calibration.heads import PREDICTION_KEY
from tat_keras.calibration.heads import OrdinalHeads
from tat_keras.calibration.heads import model_fingerprint
from tat_keras.calibration.heads import outputs_with_feature
