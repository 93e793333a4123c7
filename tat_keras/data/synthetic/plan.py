"""The recording plan: dots, orientations, and what changes frame by frame.

A recording shows `dots_per_recording` dots spread over the screen,
`frames_per_dot` frames each; a test subject also stares at
`stare_dots_per_recording` more dots for `stare_frames_per_dot` valid frames
each (one `DotNum` per sequence), which the MSD robustness metric (Eq. 10-12)
reads. The label of every frame is the dot, as in GazeCapture, even where the
eye is elsewhere: while it still travels from the previous dot (latency and
saccade), during microsaccades and fixational drift, and in occasional
glances away from the screen.

Nuisances that change from frame to frame are drawn as slow (correlated)
processes: head motion, exposure and white balance, detector errors of the
boxes (with occasional gross failures that box an eyebrow). With
`config.nuisances == "sensor_noise_only"` every draw is made all the same and
only the sensor noise is kept, so both modes render the same subjects, dots
and frames.

Example:

>>> import numpy as np
>>> from tat_keras.data.synthetic import config as config_lib
>>> from tat_keras.data.synthetic import scene, subjects
>>> rng = np.random.default_rng(0)
>>> config = config_lib.SyntheticConfig(dots_per_recording=2, frames_per_dot=3)
>>> subject = subjects.sample_subject(rng)
>>> conditions = scene.sample_conditions(rng, config)
>>> len(plan_recording(rng, config, "train", subject, conditions))
6
"""

import dataclasses
import math

import numpy as np

from tat_keras.data import devices as devices_lib
from tat_keras.data.synthetic import geometry
from tat_keras.data.synthetic import roster
from tat_keras.data.synthetic import scene

NOISE_TILE = 704  # Side of the per-recording noise tile (>= 640).

# Blink profile: upper-lid opening per frame (1 open, 0 closed). Eyes with an
# opening below OPENING_VALID are missed by the detector; half-closed eyes
# above it are kept.
BLINK = (0.55, 0.1, 0.0, 0.25, 0.7)
OPENING_VALID = 0.35

MAX_TURN_TO_CAMERA = 35.0  # Degrees of yaw or pitch away from the camera.
_DETECTOR_MEMORY = 0.8  # Frame-to-frame correlation of detector errors.
_EXPOSURE_MEMORY = 0.95


@dataclasses.dataclass
class Frame:
    """Everything needed to render one frame and write its labels."""

    dot_num: int
    orientation: int
    x_pts: float
    y_pts: float
    x_cm: float
    y_cm: float
    time: float
    eye_mid: np.ndarray  # (3,) eye midpoint, cm.
    head_angles: tuple  # (yaw, pitch, roll) degrees.
    look_at: np.ndarray  # (3,) the point the eyes look at (the label's dot,
    # unless the eye travels, glances away or makes a microsaccade).
    drift: tuple  # Fixational offset (yaw, pitch) of the eyes, degrees.
    opening: float  # Upper-lid opening, 1 open, 0 closed.
    face_detected: bool
    shake: tuple  # (length px, axis) of a whole-frame motion blur, or None.
    exposure: float  # Gain of the frame (drift times the recording's).
    white_balance: tuple  # Per-channel gain drift.
    noise_offset: tuple
    face_error: np.ndarray  # (3,) detector error, unit variance: dx, dy, scale.
    eye_errors: np.ndarray  # (2, 3), right eye then left eye.
    gross_eye: int  # -1, or the eye (0 right, 1 left) whose box is on the brow.


def _sample_dot(rng, config, device, orientation):
    """Draws a dot on the screen whose label lies in the label range."""
    width, height = devices_lib.screen_size_points(device, orientation)
    x_low, x_high = config.gaze_x_range_cm
    y_low, y_high = config.gaze_y_range_cm
    for _ in range(200):
        x_pts = rng.uniform(0.05, 0.95) * width
        y_pts = rng.uniform(0.05, 0.95) * height
        x_cm, y_cm = devices_lib.screen_to_camera_cm(device, x_pts, y_pts, orientation)
        if x_low <= x_cm <= x_high and y_low <= y_cm <= y_high:
            return x_pts, y_pts, x_cm, y_cm
    return None


def _ar(previous, rng, memory, size):
    """One step of a unit-variance first-order autoregressive process."""
    return memory * previous + math.sqrt(1 - memory**2) * rng.standard_normal(size)


def plan_recording(rng, config, split, subject, conditions):
    """Draws the sequence of frames of one recording.

    Args:
      rng: np.random.Generator. the recording's generator.
      config: SyntheticConfig.
      split: str. "train", "val" or "test" (test subjects also stare).
      subject: Subject.
      conditions: Conditions.

    Returns:
      list of `Frame`.
    """
    device = conditions.device
    on = 1.0 if config.geometric_nuisances else 0.0
    num_stares = config.stare_dots_per_recording if split == "test" else 0
    dots = config.dots_per_recording
    if config.dots_per_recording_spread:
        spread = config.dots_per_recording_spread
        dots = int(rng.integers(dots - spread, dots + spread + 1))
    if split == "train" and config.train_dots_per_recording is not None:
        dots = config.train_dots_per_recording
    num_dots = dots + num_stares
    stare_slots = set(
        rng.choice(num_dots, size=num_stares, replace=False).tolist()
    )
    frames = []
    orientation = roster.choose_orientation(rng, config, device)
    head_offset = np.zeros(3)  # Micro head motion, cm.
    head_wobble = np.zeros(3)  # Micro head rotation, degrees.
    drift = np.zeros(2)  # Fixational offset, degrees.
    face_error = rng.standard_normal(3)
    eye_errors = rng.standard_normal((2, 3))
    exposure_drift = 0.0
    white_balance = np.zeros(3)
    gross_left, gross_eye = 0, -1
    blink = []  # Remaining openings of the blink under way.
    previous = None  # Where the eyes looked at the end of the last dot.
    for dot_num in range(num_dots):
        stare = dot_num in stare_slots
        if dot_num and rng.uniform() < 0.12:
            orientation = roster.choose_orientation(rng, config, device)
        dot = _sample_dot(rng, config, device, orientation)
        if dot is None:  # No dot in range in this orientation: fall back.
            orientation = 1
            dot = _sample_dot(rng, config, device, orientation)
        x_pts, y_pts, x_cm, y_cm = dot
        target = np.array([x_cm, y_cm, 0.0])
        eye_mid = scene.place_head(
            rng, config, conditions, orientation, edge=rng.uniform() < config.edge_rate
        )
        # The head faces the screen's centre, turned by the recording's pose
        # and partly towards the target.
        centre = np.array([*scene.screen_centre_cm(device, orientation), 0.0])
        face_yaw, face_pitch = geometry.gaze_angles(centre - eye_mid)
        target_yaw, target_pitch = geometry.gaze_angles(target - eye_mid)
        yaw = (
            face_yaw
            + conditions.head_yaw
            + subject.head_follow * (target_yaw - face_yaw)
            + rng.normal(0, 3)
        )
        pitch = (
            face_pitch
            + conditions.head_pitch
            + subject.head_follow * (target_pitch - face_pitch)
            + rng.normal(0, 3)
        )
        roll = conditions.head_roll + rng.normal(0, 2)
        # The camera sees the face at most MAX_TURN_TO_CAMERA degrees from
        # frontal (beyond, the far eye hides behind the nose).
        camera_yaw, camera_pitch = geometry.gaze_angles(-eye_mid)
        yaw = camera_yaw + np.clip(yaw - camera_yaw, -MAX_TURN_TO_CAMERA, MAX_TURN_TO_CAMERA)
        pitch = camera_pitch + np.clip(
            pitch - camera_pitch, -MAX_TURN_TO_CAMERA, MAX_TURN_TO_CAMERA
        )
        # The eye leaves the previous dot after a latency and lands within a
        # saccade's duration; stare sequences start once it has landed.
        latency = rng.uniform(0.15, 0.3)
        duration = rng.uniform(0.04, 0.07)
        start_time = rng.uniform(0.5, 0.8) if stare else rng.uniform(0.25, 0.75)
        squint = rng.uniform(0.4, 0.65) if rng.uniform() < 0.08 else 1.0
        look_away_start = (
            int(rng.integers(0, config.frames_per_dot + 1))
            if rng.uniform() < config.look_away_rate
            else -1
        )
        look_away_length = int(rng.integers(2, 5))
        away = centre + rng.uniform(15, 35) * np.array(
            [*_unit(rng.uniform(0, 2 * math.pi)), 0.0]
        )
        origin = target if previous is None else previous
        valid_frames = 0
        index = 0
        while True:
            if stare:
                if valid_frames >= config.stare_frames_per_dot or index >= (
                    4 * config.stare_frames_per_dot
                ):
                    break
            elif index >= config.frames_per_dot:
                break
            time = start_time + index / config.frame_rate_hz
            head_offset = 0.9 * head_offset + rng.normal(0, 0.04, 3)
            head_wobble = 0.9 * head_wobble + rng.normal(0, 0.2, 3)
            drift = 0.85 * drift + rng.normal(0, 0.06, 2)
            if rng.uniform() < 0.08:  # A microsaccade.
                drift = drift + rng.uniform(0.15, 0.45) * _unit(rng.uniform(0, 6.3))
            travelled = np.clip((time - latency) / duration, 0.0, 1.0)
            look_at = origin + travelled * (target - origin)
            if 0 <= look_away_start <= index < look_away_start + look_away_length:
                look_at = away
            if on == 0.0:
                look_at = target
            face_error = _ar(face_error, rng, _DETECTOR_MEMORY, 3)
            eye_errors = _ar(eye_errors, rng, _DETECTOR_MEMORY, (2, 3))
            exposure_drift = _EXPOSURE_MEMORY * exposure_drift + rng.normal(0, 0.025)
            white_balance = _EXPOSURE_MEMORY * white_balance + rng.normal(0, 0.012, 3)
            if gross_left == 0 and rng.uniform() < config.gross_failure_rate:
                gross_left, gross_eye = int(rng.integers(2, 7)), int(rng.integers(2))
            gross = gross_eye if gross_left > 0 and on else -1
            gross_left = max(gross_left - 1, 0)
            if not blink and rng.uniform() < config.blink_rate:
                blink = list(BLINK)
            opening = blink.pop(0) if blink else squint
            face_detected = bool(rng.uniform() >= config.face_miss_rate)
            shake = None
            if rng.uniform() < config.shake_rate:
                shake = (int(rng.integers(4, 13)), int(rng.integers(2)))
            frames.append(
                Frame(
                    dot_num=dot_num,
                    orientation=orientation,
                    x_pts=float(x_pts),
                    y_pts=float(y_pts),
                    x_cm=float(x_cm),
                    y_cm=float(y_cm),
                    time=float(time),
                    eye_mid=eye_mid + on * head_offset,
                    head_angles=tuple(
                        float(a) for a in np.array([yaw, pitch, roll]) + on * head_wobble
                    ),
                    look_at=look_at,
                    drift=(float(on * drift[0]), float(on * drift[1])),
                    opening=float(opening),
                    face_detected=face_detected,
                    shake=shake if on else None,
                    exposure=float(conditions.exposure * math.exp(on * exposure_drift)),
                    white_balance=tuple(float(w) for w in 1.0 + on * white_balance),
                    noise_offset=(
                        int(rng.integers(NOISE_TILE - 640 + 1)),
                        int(rng.integers(NOISE_TILE - 640 + 1)),
                    ),
                    face_error=on * face_error,
                    eye_errors=on * eye_errors,
                    gross_eye=gross,
                )
            )
            valid_frames += int(face_detected and opening >= OPENING_VALID)
            index += 1
        previous = frames[-1].look_at if on else target
    return frames


def _unit(angle):
    return np.array([math.cos(angle), math.sin(angle)])
