"""From a camera frame to a point on the screen: detect, crop, predict, map, smooth.

`GazeEstimator.estimate(frame, device=..., orientation=...)` runs the whole
path of an app: the face and eye detector (`detector.py`) gives boxes in
GazeCapture's convention, the crops are cut exactly as the data builder cuts
them (`tat_keras.crops.crop_frame`: edge fill, bilinear
resize), the network predicts the gaze in centimetres from the camera, the
gaze becomes a point on the screen of that device and orientation
(`screen.py`), and a One Euro filter steadies it over time. A frame with no
face gives a result with `face_found=False` and resets the filter.

Example:

>>> estimator = GazeEstimator.from_tflite("runs/quick/model_int8.tflite")  # doctest: +SKIP
>>> result = estimator.estimate(frame, device="iPhone 6", orientation=1)  # doctest: +SKIP
>>> x_pts, y_pts = result.screen_points  # doctest: +SKIP
"""

import dataclasses
import time

import numpy as np

from tat_keras import crops as crop_lib
from tat_keras import model_files
from tat_keras import smoothing
from tat_keras.inference import detector as detector_lib
from tat_keras.inference import screen

# The One Euro setting recommended by `recipes/jitter_vs_lag.py` on the
# quick synthetic test recordings (gaze in cm, cutoffs in Hz, beta in Hz per
# cm/s); docs/estimator.md, "Jitter against lag", has the table.
DEFAULT_MIN_CUTOFF = 0.3
DEFAULT_BETA = 0.3
DEFAULT_D_CUTOFF = 1.0

INPUT_NAMES = ("face", "left_eye", "right_eye")


@dataclasses.dataclass
class GazeResult:
    """What the estimator makes of one frame.

    Boxes are `(x, y, w, h)` in frame pixels for the face and relative to the
    face box for the eyes (GazeCapture's convention); points and pixels have
    their origin at the top-left of the screen as the user sees it. Fields
    other than `face_found` and `timestamp` are None when no face was found.

    Args:
      face_found: bool.
      timestamp: float. seconds.
      face_box, left_eye_box, right_eye_box: tuples of 4 floats or None.
      gaze_cm: (x, y) from the camera, the user's right and up, or None.
      screen_points, screen_pixels: (x, y) or None, not clipped to the screen.
      smoothed_cm, smoothed_points: (x, y) after the filter, or None.
      eye_landmarks: float array (2, N, 2) or None. the detector's contour
        of the left and right eye in frame pixels, when it gives one.
    """

    face_found: bool
    timestamp: float
    face_box: tuple = None
    left_eye_box: tuple = None
    right_eye_box: tuple = None
    gaze_cm: tuple = None
    screen_points: tuple = None
    screen_pixels: tuple = None
    smoothed_cm: tuple = None
    smoothed_points: tuple = None
    eye_landmarks: np.ndarray = None


def _pair(values):
    return tuple(float(v) for v in values)


class GazeEstimator:
    """Camera frame to a gaze point on the screen, streaming.

    Args:
      predict_fn: callable. takes a dict of float32 batches `face`,
        `left_eye`, `right_eye` (B, S, S, 3) with pixels in [0, 255] and
        returns gaze in cm (B, 2).
      image_size: int. the crop side `S` the model takes.
      detector: object with `detect(frame)` returning a
        `detector.Detection` or None; default `detector.make_detector()`
        (MediaPipe's BlazeFace and face mesh).
      smoother: a filter of `tat_keras.smoothing` (applied to the gaze in
        cm) or None for none; default the recommended One Euro setting.

    Example:

    >>> import numpy as np
    >>> est = GazeEstimator(lambda x: np.zeros((len(x["face"]), 2)), 64)
    >>> est.estimate(np.zeros((480, 640, 3), np.uint8), device="iPhone 6",
    ...              orientation=1, timestamp=0.0).face_found
    False
    """

    def __init__(self, predict_fn, image_size, *, detector=None, smoother="default"):
        if not callable(predict_fn):
            raise TypeError(f"predict_fn must be callable. Received: {predict_fn!r}")
        if not (isinstance(image_size, (int, np.integer)) and image_size >= 8):
            raise ValueError(
                f"image_size must be an integer >= 8. Received: image_size={image_size!r}"
            )
        self.predict_fn = predict_fn
        self.image_size = int(image_size)
        self.detector = detector if detector is not None else detector_lib.make_detector()
        if isinstance(smoother, str) and smoother == "default":
            smoother = smoothing.OneEuroFilter(
                DEFAULT_MIN_CUTOFF, DEFAULT_BETA, DEFAULT_D_CUTOFF
            )
        self.smoother = smoother
        self._screen = None  # (device name, orientation) the filter state is for.
        self._last_time = None

    @classmethod
    def from_keras(cls, path, **kwargs):
        """An estimator around a saved `.keras` GazeNet.

        Args:
          path: str. the `.keras` file.
          **kwargs: `detector`, `smoother`.

        Raises:
          FileNotFoundError: no file at `path`.
          ValueError: `path` is not a `.keras` archive (the message says
            what was expected).
        """
        model_files.check_keras_file(path)
        import keras

        import tat_keras  # noqa: F401  Registers the model's classes.

        model = keras.models.load_model(path, compile=False)

        def predict(inputs):
            outputs = model.predict_on_batch(
                {name: np.asarray(inputs[name], np.float32) for name in INPUT_NAMES}
            )
            outputs = {k: np.asarray(v) for k, v in outputs.items()}
            return np.asarray(model.decode(outputs), np.float64)

        return cls(predict, int(model.image_size), **kwargs)

    @classmethod
    def from_tflite(cls, path, num_threads=1, **kwargs):
        """An estimator around an exported `.tflite` file (float or int8).

        Args:
          path: str. the `.tflite` file.
          num_threads: int or None. interpreter threads.
          **kwargs: `detector`, `smoother`.

        Raises:
          FileNotFoundError: no file at `path`.
          ValueError: `path` is not a TFLite flatbuffer (the message says
            what was expected), or not a gaze model.
        """
        from tat_keras.export import runner

        model_files.check_tflite_file(path)

        model = runner.TFLiteGazeModel(path, num_threads=num_threads)
        return cls(model, model.image_size, **kwargs)

    def reset(self):
        """Forgets the filter's past (a new user, a lost face)."""
        if self.smoother is not None:
            self.smoother.reset()
        self._screen = None

    def _check_call(self, frame, device, orientation, timestamp):
        detector_lib.check_frame(frame)
        device = screen.get_device(device)
        orientation = screen.check_orientation(orientation)
        timestamp = time.monotonic() if timestamp is None else float(timestamp)
        if self._last_time is not None and timestamp <= self._last_time:
            raise ValueError(
                "timestamps must increase from frame to frame (seconds); a "
                "timestamp that goes backwards or repeats is refused. Call "
                f"reset_time() to start a new stream. Received: timestamp={timestamp} "
                f"after {self._last_time}"
            )
        return device, orientation, timestamp

    def reset_time(self):
        """Starts a new stream: forgets the filter and the last timestamp."""
        self.reset()
        self._last_time = None

    def estimate(self, frame, *, device, orientation, timestamp=None):
        """Detects the face and eyes in `frame` and estimates the gaze point.

        Args:
          frame: uint8 RGB array (H, W, 3), the front camera's frame.
          device: str. a `DeviceName` of `tat_keras.data.devices.DEVICES`.
          orientation: int. 1-4 as in GazeCapture's `screen.json`.
          timestamp: float or None. seconds, increasing; None takes the clock.

        Returns:
          A `GazeResult`.
        """
        device, orientation, timestamp = self._check_call(
            frame, device, orientation, timestamp
        )
        detection = self.detector.detect(frame)
        if detection is None:
            return self._no_face(timestamp)
        result = self._estimate_boxes(
            frame,
            detection.face_box,
            detection.left_eye_box,
            detection.right_eye_box,
            device,
            orientation,
            timestamp,
        )
        if result.face_found:
            result.eye_landmarks = getattr(detection, "eye_landmarks", None)
        return result

    def estimate_from_boxes(
        self, frame, face_box, left_eye_box, right_eye_box, *, device, orientation,
        timestamp=None,
    ):
        """Like `estimate`, with boxes given in GazeCapture's convention.

        Args:
          frame: uint8 RGB array (H, W, 3).
          face_box: (4,) `X, Y, W, H` in frame pixels.
          left_eye_box, right_eye_box: (4,) relative to the face box.
          device, orientation, timestamp: as in `estimate`.
        """
        device, orientation, timestamp = self._check_call(
            frame, device, orientation, timestamp
        )
        return self._estimate_boxes(
            frame, face_box, left_eye_box, right_eye_box, device, orientation, timestamp
        )

    def _no_face(self, timestamp):
        self._last_time = timestamp
        self.reset()
        return GazeResult(face_found=False, timestamp=timestamp)

    def _estimate_boxes(
        self, frame, face_box, left_eye_box, right_eye_box, device, orientation, timestamp
    ):
        crops = crop_lib.crop_frame(
            frame, face_box, left_eye_box, right_eye_box, self.image_size
        )
        if crops is None:  # A box wholly outside the frame.
            return self._no_face(timestamp)
        inputs = {k: crops[k][None].astype(np.float32) for k in INPUT_NAMES}
        gaze = np.asarray(self.predict_fn(inputs), np.float64).reshape(-1, 2)[0]
        self._last_time = timestamp
        points = screen.camera_cm_to_screen_points(device, gaze[0], gaze[1], orientation)
        scale = screen.pixels_per_point(device)
        smoothed_cm = smoothed_points = None
        if self.smoother is not None:
            if self._screen != (device.name, orientation):
                self.smoother.reset()  # The filter's past is for another screen.
                self._screen = (device.name, orientation)
            smoothed_cm = _pair(self.smoother(gaze, timestamp))
            smoothed_points = screen.camera_cm_to_screen_points(
                device, smoothed_cm[0], smoothed_cm[1], orientation
            )
        return GazeResult(
            face_found=True,
            timestamp=timestamp,
            face_box=_pair(face_box),
            left_eye_box=_pair(left_eye_box),
            right_eye_box=_pair(right_eye_box),
            gaze_cm=_pair(gaze),
            screen_points=_pair(points),
            screen_pixels=(points[0] * scale, points[1] * scale),
            smoothed_cm=smoothed_cm,
            smoothed_points=None if smoothed_points is None else _pair(smoothed_points),
        )
