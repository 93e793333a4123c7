"""A synthetic twin of GazeCapture, rendered in its on-disk layout.

The renderer writes recordings exactly as GazeCapture publishes them (one
folder `%05d` per recording, `frames/%05d.jpg` plus `appleFace.json`,
`appleLeftEye.json`, `appleRightEye.json`, `faceGrid.json`, `dotInfo.json`,
`frames.json`, `info.json`, `screen.json`), so the `gaze_capture` TFDS
builder prepares it with no special case. One recording is one subject, and
subjects are split into train, val and test.

The images come from the geometry of a person looking at a phone or tablet,
not from noise around a formula:

- The device (`devices.py`) has a real screen size and camera position. A
  dot is drawn in screen points and labelled in centimetres from the camera
  (`XCam` to the subject's right, `YCam` up), in all four orientations.
- Each subject has an interocular distance, eyeball radius, kappa angle
  (the offset between the visual axis, which points at the dot, and the
  optical axis, which carries the iris), iris size and colour, skin tone,
  eyelid aperture and face shape.
- Each recording has a distance to the device, a head pose, a lighting
  direction and strength, an exposure and a sensor noise level.
- In each frame both eyes rotate so that their visual axes pass through the
  dot; the iris, pupil and corneal glint are projected through a pinhole
  camera into a 640x480 (landscape) or 480x640 (portrait) frame. The upper
  eyelid follows the vertical gaze. Face and eye boxes come from the
  projected geometry plus detector jitter; eye boxes are stored relative to
  the face box and the subject's left eye is on the right of the image.
  Sensor noise, occasional motion blur, blinks (eyes marked invalid),
  missed face detections and faces reaching past the frame edge are part of
  the data.
- Test subjects stare at each dot for at least `stare_frames_per_dot` valid
  frames (one `DotNum` per sequence) while only nuisances change: sensor
  noise, micro head motion, fixational eye drift and box jitter. These
  sequences feed the paper's MSD robustness metric (Eq. 10-12).

The gaze is carried mainly by the eyes: the head pose and position change
from dot to dot independently of the dot (apart from a small per-subject
head-follow gain), so a face crop alone says much less than the eye crops.

Every recording draws from its own generator, seeded by `(seed, recording
index)`, so a dataset is the same byte for byte whatever the number of
worker processes.

Example:

>>> import tempfile
>>> config = SyntheticConfig(num_train_subjects=1, num_val_subjects=0,
...                          num_test_subjects=0, dots_per_recording=1,
...                          frames_per_dot=2)
>>> summary = render_dataset(tempfile.mkdtemp(), config, progress=False)
>>> summary["frames"]
2
"""

import dataclasses
import io
import json
import math
import multiprocessing
import os
import re
import shutil
import tempfile
import time

import numpy as np
from PIL import Image

from tat_keras.data import devices as devices_lib

SPLITS = ("train", "val", "test")
SUMMARY_FILE = "synthetic_summary.json"

# Frame size in pixels (width, height) by orientation class.
_LANDSCAPE_SIZE = (640, 480)
_PORTRAIT_SIZE = (480, 640)
_NOISE_TILE = 704  # Side of the per-recording noise tile (>= 640).
_GRID = 25  # faceGrid.json cells per side.

# Head anatomy in the head frame (cm): origin at the midpoint between the
# eyeball centres, x to the subject's right, y up, z to the back of the head
# (the face looks towards -z).
_HEAD_CENTRE = (0.0, -1.0, 6.0)  # Centre of the face outline.
_HAIR_CENTRE = (0.0, 0.6, 6.5)
_FACE_BOX_CENTRE = (0.0, -2.4, -1.0)
_NOSE_TIP = (0.0, -3.6, -3.2)
_NOSE_BRIDGE = (0.0, -2.0, -2.2)
_NOSTRIL = (0.75, -4.3, -2.4)
_MOUTH = (0.0, -6.7, -2.0)
_CORNER_DEPTH = -0.75  # z of the eye corners.
_LID_DEPTH = -1.1  # z of the eyelid apexes.

# Blink profile: upper-lid opening per frame (1 open, 0 closed). Frames with
# an opening below _BLINK_VALID are marked as missed eye detections.
_BLINK = (0.55, 0.1, 0.0, 0.25, 0.7)
_BLINK_VALID = 0.6

_IRIS_COLOURS = np.array(
    [
        (88, 54, 32),
        (52, 33, 22),
        (120, 92, 52),
        (82, 108, 72),
        (78, 108, 148),
        (108, 114, 120),
    ],
    np.float32,
)
_HAIR_COLOURS = np.array(
    [
        (24, 20, 18),
        (52, 37, 27),
        (92, 64, 40),
        (176, 142, 96),
        (150, 148, 145),
        (128, 64, 36),
    ],
    np.float32,
)
_SKIN_LIGHT = np.array([236, 200, 178], np.float32)
_SKIN_DARK = np.array([92, 60, 44], np.float32)


@dataclasses.dataclass(frozen=True)
class SyntheticConfig:
    """What to render.

    Args:
      num_train_subjects, num_val_subjects, num_test_subjects: int. subjects
        (= recordings) per split.
      dots_per_recording: int. dots shown to a train or val subject.
      frames_per_dot: int. frames per dot for train and val subjects.
      stare_dots_per_recording: int. dots a test subject stares at.
      stare_frames_per_dot: int. valid frames per stare sequence (at least);
        blinks and missed detections add frames on top.
      seed: int. the whole dataset is a function of the seed.
      devices: tuple of str. device names from `devices.DEVICES`.
      tablet_fraction: float. share of subjects on a tablet.
      orientation_weights: 4 floats. how often orientations 1-4 are used.
      distance_range_cm: (float, float). eye-to-device distance.
      gaze_x_range_cm, gaze_y_range_cm: (float, float). dots are kept inside
        this label range (the model's ordinal bins cover -20..20 and -25..15).
      frame_rate_hz: float. frame rate that sets `dotInfo.json` `Time`.
      blink_rate: float. chance per frame that a blink starts.
      face_miss_rate: float. chance per frame that the face detector misses.
      motion_blur_rate: float. chance per frame of a motion-blurred frame.
      edge_rate: float. chance per dot that the face is placed across an edge
        of the frame.
      jpeg_quality: int. JPEG quality of the frames.
    """

    num_train_subjects: int = 24
    num_val_subjects: int = 6
    num_test_subjects: int = 8
    dots_per_recording: int = 8
    frames_per_dot: int = 10
    stare_dots_per_recording: int = 4
    stare_frames_per_dot: int = 30
    seed: int = 0
    devices: tuple = tuple(devices_lib.DEVICES)
    tablet_fraction: float = 0.3
    orientation_weights: tuple = (0.55, 0.05, 0.2, 0.2)
    distance_range_cm: tuple = (20.0, 45.0)
    gaze_x_range_cm: tuple = (-19.5, 19.5)
    gaze_y_range_cm: tuple = (-24.5, 14.5)
    frame_rate_hz: float = 15.0
    blink_rate: float = 0.015
    face_miss_rate: float = 0.015
    motion_blur_rate: float = 0.04
    edge_rate: float = 0.05
    jpeg_quality: int = 90

    def __post_init__(self):
        for name in ("num_train_subjects", "num_val_subjects", "num_test_subjects"):
            if getattr(self, name) < 0:
                raise ValueError(
                    f"{name} must be >= 0. " f"Received: {name}={getattr(self, name)}"
                )
        if self.num_recordings == 0:
            raise ValueError(
                "At least one subject is needed. Received: "
                "num_train_subjects=0, num_val_subjects=0, "
                "num_test_subjects=0"
            )
        for name in (
            "dots_per_recording",
            "frames_per_dot",
            "stare_dots_per_recording",
            "stare_frames_per_dot",
        ):
            if getattr(self, name) < 1:
                raise ValueError(
                    f"{name} must be >= 1. " f"Received: {name}={getattr(self, name)}"
                )
        unknown = [d for d in self.devices if d not in devices_lib.DEVICES]
        if unknown or not self.devices:
            raise ValueError(
                f"devices must name profiles of devices.DEVICES "
                f"({sorted(devices_lib.DEVICES)}). "
                f"Received: devices={self.devices}"
            )
        if (
            len(self.orientation_weights) != 4
            or min(self.orientation_weights) < 0
            or sum(self.orientation_weights) <= 0
        ):
            raise ValueError(
                "orientation_weights must be 4 non-negative weights "
                "with a positive sum. Received: "
                f"orientation_weights={self.orientation_weights}"
            )
        low, high = self.distance_range_cm
        if not 10.0 <= low <= high <= 100.0:
            raise ValueError(
                "distance_range_cm must satisfy 10 <= low <= high "
                "<= 100. Received: "
                f"distance_range_cm={self.distance_range_cm}"
            )
        for name in (
            "tablet_fraction",
            "blink_rate",
            "face_miss_rate",
            "motion_blur_rate",
            "edge_rate",
        ):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ValueError(
                    f"{name} must be in [0, 1]. "
                    f"Received: {name}={getattr(self, name)}"
                )
        if not 1 <= self.jpeg_quality <= 100:
            raise ValueError(
                "jpeg_quality must be in [1, 100]. "
                f"Received: jpeg_quality={self.jpeg_quality}"
            )
        if self.frame_rate_hz <= 0:
            raise ValueError(
                "frame_rate_hz must be positive. "
                f"Received: frame_rate_hz={self.frame_rate_hz}"
            )

    @property
    def num_recordings(self):
        return self.num_train_subjects + self.num_val_subjects + self.num_test_subjects


PRESETS = {
    # The README's main data: about 3,400 frames, under a minute and a
    # half on one core.
    "quick": SyntheticConfig(),
    # A larger run: about 14,000 frames.
    "bench": SyntheticConfig(
        num_train_subjects=60,
        num_val_subjects=10,
        num_test_subjects=16,
        dots_per_recording=12,
        frames_per_dot=12,
        stare_dots_per_recording=6,
        stare_frames_per_dot=40,
    ),
}


# ---------------------------------------------------------------------------
# Subjects, recordings and the per-frame plan.


@dataclasses.dataclass(frozen=True)
class Subject:
    """A person: eyes, face and colours (lengths in cm, angles in degrees)."""

    interocular_cm: float
    eyeball_radius_cm: float
    kappa_horizontal_deg: float
    kappa_vertical_deg: float
    iris_radius_cm: float
    pupil_ratio: float
    eye_half_width_cm: float
    upper_aperture_cm: float
    lower_aperture_cm: float
    face_half_width_cm: float
    face_half_height_cm: float
    mouth_half_width_cm: float
    hairline: float
    hair_length: float
    head_follow: float
    skin_rgb: tuple
    iris_rgb: tuple
    hair_rgb: tuple


def sample_subject(rng):
    """Draws a subject from population statistics.

    Args:
      rng: np.random.Generator.

    Example:

    >>> subject = sample_subject(np.random.default_rng(0))
    >>> 5.0 < subject.interocular_cm < 7.5
    True
    """

    def normal(mean, std, low, high):
        return float(np.clip(rng.normal(mean, std), low, high))

    tone = rng.uniform()
    skin = (1 - tone) * _SKIN_LIGHT + tone * _SKIN_DARK
    skin = skin * rng.normal(1.0, 0.03, 3)
    iris = _IRIS_COLOURS[rng.integers(len(_IRIS_COLOURS))]
    iris = iris * rng.normal(1.0, 0.08, 3)
    hair = _HAIR_COLOURS[rng.integers(len(_HAIR_COLOURS))]
    hair = hair * rng.normal(1.0, 0.06, 3)
    return Subject(
        interocular_cm=normal(6.3, 0.35, 5.4, 7.2),
        eyeball_radius_cm=normal(1.2, 0.05, 1.08, 1.32),
        kappa_horizontal_deg=normal(5.0, 1.5, 1.0, 9.0),
        kappa_vertical_deg=normal(1.0, 1.0, -2.0, 4.0),
        iris_radius_cm=normal(0.59, 0.025, 0.53, 0.65),
        pupil_ratio=float(rng.uniform(0.3, 0.45)),
        eye_half_width_cm=normal(1.4, 0.08, 1.2, 1.6),
        upper_aperture_cm=normal(0.46, 0.06, 0.32, 0.6),
        lower_aperture_cm=normal(0.42, 0.04, 0.32, 0.52),
        face_half_width_cm=normal(7.0, 0.4, 6.0, 8.0),
        face_half_height_cm=normal(10.0, 0.6, 8.8, 11.4),
        mouth_half_width_cm=normal(2.4, 0.2, 1.9, 2.9),
        hairline=float(rng.uniform(0.35, 0.75)),
        hair_length=float(rng.uniform(-0.2, 0.9)),
        head_follow=float(rng.uniform(0.0, 0.12)),
        skin_rgb=tuple(float(c) for c in np.clip(skin, 30, 255)),
        iris_rgb=tuple(float(c) for c in np.clip(iris, 10, 255)),
        hair_rgb=tuple(float(c) for c in np.clip(hair, 5, 255)),
    )


@dataclasses.dataclass(frozen=True)
class Conditions:
    """What stays fixed over a recording (angles in degrees)."""

    device: devices_lib.DeviceProfile
    distance_cm: float
    head_yaw: float
    head_pitch: float
    head_roll: float
    light: tuple  # Unit vector in image axes (x right, y up, z to camera).
    ambient: float
    diffuse: float
    tint: tuple  # Per-channel gain of the light and white balance.
    noise_sigma: float


def sample_conditions(rng, config):
    """Draws the device, distance, head pose, lighting and noise of a recording.

    Args:
      rng: np.random.Generator.
      config: SyntheticConfig.
    """
    tablets = [
        d for d in config.devices if devices_lib.DEVICES[d].device_type == "tablet"
    ]
    phones = [d for d in config.devices if d not in tablets]
    use_tablet = bool(tablets) and (
        not phones or rng.uniform() < config.tablet_fraction
    )
    names = tablets if use_tablet else phones
    device = devices_lib.DEVICES[names[rng.integers(len(names))]]
    low, high = config.distance_range_cm
    if device.device_type == "tablet":
        low = min(max(low, 27.0), high)
    else:
        high = max(min(high, 40.0), low)
    azimuth = rng.uniform(0, 2 * math.pi)
    elevation = rng.uniform(0.3, 0.9)
    planar = math.sqrt(1 - elevation**2)
    return Conditions(
        device=device,
        distance_cm=float(rng.uniform(low, high)),
        head_yaw=float(np.clip(rng.normal(0, 8), -20, 20)),
        head_pitch=float(np.clip(rng.normal(0, 7), -18, 18)),
        head_roll=float(np.clip(rng.normal(0, 5), -15, 15)),
        light=(planar * math.cos(azimuth), planar * math.sin(azimuth), elevation),
        ambient=float(rng.uniform(0.45, 0.7)),
        diffuse=float(rng.uniform(0.25, 0.6)),
        tint=tuple(
            float(t) for t in rng.uniform(0.78, 1.12) * rng.normal(1.0, 0.05, 3)
        ),
        noise_sigma=float(rng.uniform(2.0, 7.0)),
    )


@dataclasses.dataclass
class _Frame:
    """Everything needed to render one frame and write its labels."""

    dot_num: int
    orientation: int
    x_pts: float
    y_pts: float
    x_cm: float
    y_cm: float
    time: float
    eye_mid: np.ndarray  # (3,) world position of the eye midpoint, cm.
    head_angles: tuple  # (yaw, pitch, roll) degrees.
    drift: tuple  # Fixational drift (yaw, pitch) of the eyes, degrees.
    opening: float  # Upper-lid opening, 1 open, 0 closed.
    face_detected: bool
    blur: tuple  # (length px, axis) or None.
    noise_offset: tuple
    face_jitter: np.ndarray  # (3,) standard normal: dx, dy, scale.
    eye_jitter: np.ndarray  # (2, 3) standard normal, right eye then left.


def _frame_size(orientation):
    return _PORTRAIT_SIZE if orientation <= 2 else _LANDSCAPE_SIZE


def _sample_dot(rng, config, device, orientation):
    """Draws a dot on the screen whose label lies in the label range."""
    width, height = devices_lib.screen_size_points(device, orientation)
    x_low, x_high = config.gaze_x_range_cm
    y_low, y_high = config.gaze_y_range_cm
    for _ in range(200):
        x_pts = rng.uniform(0.06, 0.94) * width
        y_pts = rng.uniform(0.06, 0.94) * height
        x_cm, y_cm = devices_lib.screen_to_camera_cm(device, x_pts, y_pts, orientation)
        if x_low <= x_cm <= x_high and y_low <= y_cm <= y_high:
            return x_pts, y_pts, x_cm, y_cm
    return None


def _place_head(rng, config, conditions, orientation):
    """Draws the eye midpoint for one dot: distance, image position, edges."""
    device = conditions.device
    width, height = _frame_size(orientation)
    low, high = config.distance_range_cm
    distance = float(np.clip(conditions.distance_cm + rng.normal(0, 1.5), low, high))
    focal = device.focal_px
    half_face = 0.95 * 7.0 * focal / distance  # About half a face box.
    if rng.uniform() < config.edge_rate:
        # Face box centre inside the frame but its box reaching past one edge.
        inset = half_face * rng.uniform(0.45, 0.8)
        u = rng.uniform(0.3, 0.7) * width
        v = rng.uniform(0.3, 0.7) * height
        side = rng.integers(4)
        if side == 0:
            u = inset
        elif side == 1:
            u = width - inset
        elif side == 2:
            v = inset
        else:
            v = height - inset
    else:
        u = width / 2 + rng.normal(0, 0.1 * width)
        v = height * 0.45 + rng.normal(0, 0.1 * height)
        u = float(
            np.clip(u, min(half_face, width / 2), max(width - half_face, width / 2))
        )
        v = float(
            np.clip(v, min(half_face, height / 2), max(height - half_face, height / 2))
        )
    # (u, v) is where the face box centre lands; the eyes sit 2.4 cm higher.
    x = (width / 2 - u) * distance / focal
    y = (height / 2 - v) * distance / focal + 2.4
    return np.array([x, y, distance])


def _gaze_angles(vector):
    """Yaw and pitch (degrees) of a direction that points towards -z."""
    x, y, z = vector
    return (
        math.degrees(math.atan2(x, -z)),
        math.degrees(math.atan2(y, math.hypot(x, z))),
    )


def _plan_recording(rng, config, split, subject, conditions):
    """Draws the sequence of frames of one recording."""
    device = conditions.device
    weights = np.asarray(config.orientation_weights, np.float64)
    weights = weights / weights.sum()
    stare = split == "test"
    num_dots = config.stare_dots_per_recording if stare else config.dots_per_recording
    frames = []
    orientation = int(rng.choice(4, p=weights)) + 1
    head_offset = np.zeros(3)  # Micro head motion, cm.
    head_wobble = np.zeros(3)  # Micro head rotation, degrees.
    drift = np.zeros(2)  # Fixational eye drift, degrees.
    blink = []  # Remaining openings of the blink under way.
    for dot_num in range(num_dots):
        if dot_num and rng.uniform() > 0.75:
            orientation = int(rng.choice(4, p=weights)) + 1
        dot = _sample_dot(rng, config, device, orientation)
        if dot is None:  # No dot in range in this orientation: fall back.
            orientation = 1
            dot = _sample_dot(rng, config, device, orientation)
        x_pts, y_pts, x_cm, y_cm = dot
        eye_mid = _place_head(rng, config, conditions, orientation)
        target_yaw, target_pitch = _gaze_angles(np.array([x_cm, y_cm, 0.0]) - eye_mid)
        yaw = conditions.head_yaw + rng.normal(0, 3) + subject.head_follow * target_yaw
        pitch = (
            conditions.head_pitch
            + rng.normal(0, 3)
            + subject.head_follow * target_pitch
        )
        roll = conditions.head_roll + rng.normal(0, 2)
        start_time = rng.uniform(0.25, 0.6)
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
            head_offset = 0.9 * head_offset + rng.normal(0, 0.04, 3)
            head_wobble = 0.9 * head_wobble + rng.normal(0, 0.2, 3)
            drift = 0.85 * drift + rng.normal(0, 0.1, 2)
            if not blink and rng.uniform() < config.blink_rate:
                blink = list(_BLINK)
            opening = blink.pop(0) if blink else 1.0
            face_detected = bool(rng.uniform() >= config.face_miss_rate)
            blur = None
            if rng.uniform() < config.motion_blur_rate:
                blur = (int(rng.integers(3, 8)), int(rng.integers(2)))
            frames.append(
                _Frame(
                    dot_num=dot_num,
                    orientation=orientation,
                    x_pts=float(x_pts),
                    y_pts=float(y_pts),
                    x_cm=float(x_cm),
                    y_cm=float(y_cm),
                    time=float(start_time + index / config.frame_rate_hz),
                    eye_mid=eye_mid + head_offset,
                    head_angles=(
                        yaw + head_wobble[0],
                        pitch + head_wobble[1],
                        roll + head_wobble[2],
                    ),
                    drift=(float(drift[0]), float(drift[1])),
                    opening=opening,
                    face_detected=face_detected,
                    blur=blur,
                    noise_offset=(
                        int(rng.integers(_NOISE_TILE - 640 + 1)),
                        int(rng.integers(_NOISE_TILE - 640 + 1)),
                    ),
                    face_jitter=rng.standard_normal(3),
                    eye_jitter=rng.standard_normal((2, 3)),
                )
            )
            valid_frames += int(face_detected and opening >= _BLINK_VALID)
            index += 1
    return frames


# ---------------------------------------------------------------------------
# Geometry.


def _rotation(yaw, pitch, roll):
    """Head (or eye) frame to world: columns are the frame's x, y, z axes.

    The frame's forward direction (-z) points at (yaw, pitch) as measured by
    `_gaze_angles`; roll turns the frame about that direction.
    """
    yaw, pitch, roll = (math.radians(a) for a in (yaw, pitch, roll))
    forward = np.array(
        [
            math.sin(yaw) * math.cos(pitch),
            math.sin(pitch),
            -math.cos(yaw) * math.cos(pitch),
        ]
    )
    z_axis = -forward
    x_axis = np.array([math.cos(yaw), 0.0, math.sin(yaw)])
    y_axis = np.cross(z_axis, x_axis)
    x_rolled = math.cos(roll) * x_axis + math.sin(roll) * y_axis
    y_rolled = -math.sin(roll) * x_axis + math.cos(roll) * y_axis
    return np.stack([x_rolled, y_rolled, z_axis], axis=1)


def _direction(yaw, pitch):
    yaw, pitch = math.radians(yaw), math.radians(pitch)
    return np.array(
        [
            math.sin(yaw) * math.cos(pitch),
            math.sin(pitch),
            -math.cos(yaw) * math.cos(pitch),
        ]
    )


class _Camera:
    """Pinhole camera at the origin looking at the subject (+z).

    The image is not mirrored: the subject's right (+x) appears on the left
    of the image, and up (+y) at the top.
    """

    def __init__(self, focal, width, height):
        self.focal = focal
        self.cx = width / 2
        self.cy = height / 2

    def project(self, point):
        x, y, z = point
        return np.array([self.cx - self.focal * x / z, self.cy - self.focal * y / z])

    def jacobian(self, point):
        """d(u, v) / d(x, y, z) at a point, shape (2, 3)."""
        x, y, z = point
        f = self.focal
        return np.array([[-f / z, 0.0, f * x / z**2], [0.0, -f / z, f * y / z**2]])


# ---------------------------------------------------------------------------
# Drawing (float32 patches, values in 0..255).


def _soft(values, scale):
    """Anti-aliased step: 0 below 0, 1 above 1/scale."""
    return np.clip(values * scale, 0.0, 1.0)


def _ellipse_window(patch_shape, origin, centre, radius):
    """Integer window of the patch that holds a disc, or None."""
    height, width = patch_shape[-2:]
    x0 = max(int(math.floor(centre[0] - radius)) - origin[0], 0)
    x1 = min(int(math.ceil(centre[0] + radius)) + 1 - origin[0], width)
    y0 = max(int(math.floor(centre[1] - radius)) - origin[1], 0)
    y1 = min(int(math.ceil(centre[1] + radius)) + 1 - origin[1], height)
    if x0 >= x1 or y0 >= y1:
        return None
    return x0, x1, y0, y1


def _modulate_ellipse(patch, origin, centre, axes, angle, gain, opacity=1.0):
    """Multiplies the pixels inside a soft ellipse by an RGB gain."""
    a, b = max(float(axes[0]), 0.5), max(float(axes[1]), 0.5)
    cu, cv = float(centre[0]), float(centre[1])
    window = _ellipse_window(patch.shape, origin, (cu, cv), max(a, b) + 1)
    if window is None:
        return
    x0, x1, y0, y1 = window
    xs = np.arange(x0, x1, dtype=np.float32) + (origin[0] - cu)
    ys = np.arange(y0, y1, dtype=np.float32) + (origin[1] - cv)
    c, s = math.cos(float(angle)), math.sin(float(angle))
    p = (xs[None, :] * c + ys[:, None] * s) / a
    q = (ys[:, None] * c - xs[None, :] * s) / b
    alpha = _soft(1.0 - (p * p + q * q), 0.5 * min(a, b)) * opacity
    region = patch[:, y0:y1, x0:x1]
    for channel, value in enumerate(gain):
        region[channel] *= 1.0 + alpha * (float(value) - 1.0)


def _box_blur(patch, length, axis):
    """Motion blur: a moving average of `length` pixels along one axis.

    `patch` is planar (3, H, W); `axis` 0 blurs along rows (vertical motion),
    1 along columns.
    """
    axis += 1
    pad = [(0, 0)] * 3
    pad[axis] = (length // 2, length - 1 - length // 2)
    padded = np.pad(patch, pad, mode="edge")
    total = np.cumsum(padded, axis=axis, dtype=np.float32)
    total = np.concatenate(
        [np.zeros_like(np.take(total, [0], axis=axis)), total], axis=axis
    )
    n = patch.shape[axis]
    upper = np.take(total, np.arange(length, length + n), axis=axis)
    lower = np.take(total, np.arange(0, n), axis=axis)
    return (upper - lower) / length


class _RecordingRenderer:
    """Renders the frames of one recording."""

    def __init__(self, rng, subject, conditions):
        self.subject = subject
        self.conditions = conditions
        gain = np.asarray(conditions.tint, np.float32)
        self.skin = np.asarray(subject.skin_rgb, np.float32) * gain
        self.hair = np.asarray(subject.hair_rgb, np.float32) * gain
        self.iris = np.asarray(subject.iris_rgb, np.float32) * gain
        self.sclera = np.array([236, 228, 220], np.float32) * gain
        self.light = np.asarray(conditions.light, np.float32)
        self.background = self._make_background(rng, gain, conditions.noise_sigma)
        self.noise = rng.standard_normal(
            (3, _NOISE_TILE, _NOISE_TILE), dtype=np.float32
        )
        self.noise *= conditions.noise_sigma

    @staticmethod
    def _make_background(rng, gain, noise_sigma):
        """A smooth room-like background with a few sharp-edged shapes."""
        size = max(_LANDSCAPE_SIZE)
        coarse = rng.uniform(30, 220, (4, 4, 3))
        coarse = (0.55 * coarse.mean(axis=-1, keepdims=True) + 0.45 * coarse).astype(
            np.uint8
        )  # Muted colours, as in a room.
        image = np.asarray(
            Image.fromarray(coarse).resize((size, size), Image.BICUBIC), np.float32
        )
        for _ in range(rng.integers(2, 5)):
            x0, y0 = rng.integers(0, size, 2)
            w, h = rng.integers(40, size // 2, 2)
            image[y0 : y0 + h, x0 : x0 + w] = 0.5 * image[
                y0 : y0 + h, x0 : x0 + w
            ] + 0.5 * rng.uniform(20, 235, 3)
        image *= gain
        image += rng.standard_normal(image.shape, dtype=np.float32) * noise_sigma
        return np.clip(image + 0.5, 0, 255).astype(np.uint8)

    def geometry(self, frame):
        """Projects the head and eyes; returns a dict of image-space geometry."""
        subject = self.subject
        device = self.conditions.device
        width, height = _frame_size(frame.orientation)
        camera = _Camera(device.focal_px, width, height)
        rotation = _rotation(*frame.head_angles)
        eye_mid = frame.eye_mid

        def world(point):
            return eye_mid + rotation @ np.asarray(point, np.float64)

        target = np.array([frame.x_cm, frame.y_cm, 0.0])
        eyes = []
        for sign in (1.0, -1.0):  # Subject's right eye (+x) then left eye.
            centre = world((sign * subject.interocular_cm / 2, 0.0, 0.0))
            visual = rotation.T @ (target - centre)
            yaw, pitch = _gaze_angles(visual)
            # The optical axis sits kappa degrees temporal (and up) of the visual
            # axis; for the right eye temporal is +x, for the left eye -x.
            optical_yaw = yaw + sign * subject.kappa_horizontal_deg + frame.drift[0]
            optical_pitch = pitch + subject.kappa_vertical_deg + frame.drift[1]
            axis = rotation @ _direction(optical_yaw, optical_pitch)
            radius = subject.eyeball_radius_cm
            iris_radius = subject.iris_radius_cm
            iris_centre = centre + axis * math.sqrt(radius**2 - iris_radius**2)
            # Iris disc as an affine image of the unit disc.
            helper = rotation[:, 1]
            e1 = np.cross(axis, helper)
            e1 /= np.linalg.norm(e1)
            e2 = np.cross(e1, axis)
            jac = camera.jacobian(iris_centre)
            iris_matrix = np.stack([jac @ e1, jac @ e2], axis=1) * iris_radius
            # Corneal glint: reflection of the lit screen, on the corneal sphere
            # where its normal halves the directions to the camera and the screen.
            cornea = centre + 0.55 * axis
            to_camera = -cornea / np.linalg.norm(cornea)
            to_screen = target - cornea
            to_screen /= np.linalg.norm(to_screen)
            normal = to_camera + to_screen
            normal /= np.linalg.norm(normal)
            glint = cornea + 0.78 * normal
            # Eyelids: the upper lid follows the vertical gaze in the head.
            sine = math.sin(math.radians(optical_pitch))
            upper = subject.upper_aperture_cm + 0.55 * radius * sine
            lower = subject.lower_aperture_cm - 0.15 * radius * sine
            upper = -0.8 * lower + (upper + 0.8 * lower) * frame.opening
            x_eye = sign * subject.interocular_cm / 2
            half = subject.eye_half_width_cm
            inner = world((x_eye - sign * half, 0.0, _CORNER_DEPTH))
            outer = world((x_eye + sign * half, 0.1, _CORNER_DEPTH))
            eyes.append(
                dict(
                    centre=centre,
                    inner=camera.project(inner),
                    outer=camera.project(outer),
                    upper=camera.project(
                        world((x_eye + sign * 0.1, upper, _LID_DEPTH))
                    ),
                    lower=camera.project(world((x_eye, -lower, _LID_DEPTH))),
                    iris=camera.project(iris_centre),
                    iris_matrix=iris_matrix,
                    glint=camera.project(glint),
                    glint_radius=0.06 * device.focal_px / glint[2],
                    scale=device.focal_px / centre[2],
                )
            )
        head_centre = world(_HEAD_CENTRE)
        head_scale = device.focal_px / head_centre[2]
        right_eye, left_eye = eyes
        roll = math.atan2(
            left_eye["inner"][1] - right_eye["inner"][1],
            left_eye["inner"][0] - right_eye["inner"][0],
        )
        face_point = world(_FACE_BOX_CENTRE)
        return dict(
            size=(width, height),
            camera=camera,
            world=world,
            eyes=eyes,
            roll=roll,
            head=camera.project(head_centre),
            head_axes=(
                subject.face_half_width_cm * head_scale,
                subject.face_half_height_cm * head_scale,
            ),
            hair=camera.project(world(_HAIR_CENTRE)),
            face_box_centre=camera.project(face_point),
            face_box_side=1.9
            * subject.face_half_width_cm
            * device.focal_px
            / face_point[2],
        )

    def boxes(self, frame, geo):
        """Detector boxes: face in frame pixels, eyes relative to the face."""
        width, height = geo["size"]
        jitter = frame.face_jitter
        side = geo["face_box_side"] * (1 + 0.03 * jitter[2])
        cu, cv = geo["face_box_centre"] + 0.025 * side * jitter[:2]
        face = np.array([cu - side / 2, cv - side / 2, side, side])
        face_valid = frame.face_detected and (0 <= cu < width and 0 <= cv < height)
        eye_boxes = []
        for eye, jitter in zip(geo["eyes"], frame.eye_jitter):
            side = (
                1.55
                * 2
                * self.subject.eye_half_width_cm
                * eye["scale"]
                * (1 + 0.04 * jitter[2])
            )
            centre = (eye["inner"] + eye["outer"]) / 2 + 0.04 * side * jitter[:2]
            box = np.array(
                [
                    centre[0] - side / 2 - face[0],
                    centre[1] - side / 2 - face[1],
                    side,
                    side,
                ]
            )
            valid = (
                face_valid
                and frame.opening >= _BLINK_VALID
                and 0 <= centre[0] < width
                and 0 <= centre[1] < height
            )
            eye_boxes.append((box, valid))
        return (face, face_valid), eye_boxes[0], eye_boxes[1]

    def render(self, frame, geo):
        """Returns the frame as uint8 (H, W, 3)."""
        width, height = geo["size"]
        image = np.array(self.background[:height, :width])
        a, b = geo["head_axes"]
        hu, hv = geo["head"]
        reach = max(a, b) * 1.12
        x0 = max(int(hu - reach), 0)
        x1 = min(int(hu + reach) + 1, width)
        y0 = max(int(hv - reach), 0)
        y1 = min(int(hv + 1.6 * b) + 1, height)
        if x0 >= x1 or y0 >= y1:
            return image
        origin = (x0, y0)
        # Drawing works on planar float32 (3, H, W): one contiguous plane per
        # channel is several times faster than interleaved RGB in NumPy.
        patch = np.ascontiguousarray(
            image[y0:y1, x0:x1].transpose(2, 0, 1), dtype=np.float32
        )
        shade = self._draw_head(patch, origin, geo)
        for eye in geo["eyes"]:
            self._draw_eye(patch, origin, eye, geo["roll"], shade, frame.opening)
        self._draw_features(patch, origin, geo)
        if frame.blur is not None:
            patch = _box_blur(patch, *frame.blur)
        oy, ox = frame.noise_offset
        patch += self.noise[:, oy : oy + patch.shape[1], ox : ox + patch.shape[2]]
        patch += 0.5
        np.clip(patch, 0, 255, out=patch)
        image[y0:y1, x0:x1] = patch.astype(np.uint8).transpose(1, 2, 0)
        return image

    def _draw_head(self, patch, origin, geo):
        """Hair, neck and the shaded face oval; returns the shading function."""
        subject = self.subject
        cond = self.conditions
        # Python floats throughout: a NumPy float64 scalar would promote the
        # float32 images to float64.
        a, b = (float(v) for v in geo["head_axes"])
        angle = float(geo["roll"])
        c, s = math.cos(angle), math.sin(angle)
        height, width = patch.shape[1:]
        head_u, head_v = (float(v) for v in geo["head"])
        # The smooth head layer is computed on a half-resolution grid (sample j
        # sits at pixel 2j + 0.5) and upsampled bilinearly; eyes and features
        # are drawn at full resolution on top.
        half_height, half_width = -(-height // 2), -(-width // 2)
        xs = np.arange(half_width, dtype=np.float32) * 2 + (origin[0] + 0.5 - head_u)
        ys = np.arange(half_height, dtype=np.float32) * 2 + (origin[1] + 0.5 - head_v)
        xs, ys = xs[None, :], ys[:, None]
        p = (xs * c + ys * s) * (1.0 / a)  # Across the face, image right.
        q = (ys * c - xs * s) * (1.0 / b)  # Down the face.
        ea, eb = a / 2, b / 2  # Sizes in half-resolution pixels, for edges.
        r2 = p * p + q * q
        # Hair: an ellipse behind the face, cut at the hair length.
        du = float(geo["hair"][0]) - head_u
        dv = float(geo["hair"][1]) - head_v
        hp = p - (du * c + dv * s) / a
        hq = q - (dv * c - du * s) / b
        hair_r2 = hp * hp * (1 / 1.07**2) + hq * hq * (1 / 0.98**2)
        hair_alpha = _soft(1.0 - hair_r2, 0.5 * ea) * _soft(
            subject.hair_length - hq, 0.25 * eb
        )
        # Neck below the face.
        neck_alpha = (
            _soft(0.42 - np.abs(p), 0.5 * ea)
            * _soft(q - 0.4, 0.5 * eb)
            * _soft(1.55 - q, 0.1 * eb)
        )
        # Face oval, lit as an ellipsoid.
        face_alpha = _soft(1.0 - r2, 0.5 * min(ea, eb))
        nz = np.sqrt(np.maximum(1.0 - r2, 0.0))
        lx, ly, lz = (float(v) for v in self.light)
        lit = np.maximum(p * lx - q * ly + nz * lz, 0.0)
        shading = cond.ambient + cond.diffuse * lit
        fringe = _soft(-subject.hairline + 0.35 * p * p - q, 0.3 * eb)
        skin_weight = face_alpha * (1.0 - fringe)
        hair_weight = np.maximum(hair_alpha * (1.0 - face_alpha), 0.0) + (
            face_alpha * fringe
        )
        neck_weight = neck_alpha * (1.0 - face_alpha) * (1.0 - hair_weight)
        keep = 1.0 - skin_weight - hair_weight - neck_weight
        hair_light = 0.55 + 0.45 * shading
        neck_light = 0.65 * cond.ambient
        skin_light = skin_weight * shading + neck_weight * neck_light
        hair_light *= hair_weight

        def upsample(plane):
            image = Image.fromarray(plane).resize(
                (2 * half_width, 2 * half_height), Image.BILINEAR
            )
            return np.asarray(image)[:height, :width]

        keep, skin_light, hair_light = (
            upsample(plane) for plane in (keep, skin_light, hair_light)
        )
        for channel in range(3):
            plane = patch[channel]
            plane *= keep
            plane += skin_light * float(self.skin[channel])
            plane += hair_light * float(self.hair[channel])

        def shade_at(u, v):
            du, dv = u - head_u, v - head_v
            pp = (du * c + dv * s) / a
            qq = (dv * c - du * s) / b
            nn = math.sqrt(max(1 - pp * pp - qq * qq, 0.0))
            return cond.ambient + cond.diffuse * max(pp * lx - qq * ly + nn * lz, 0)

        return shade_at

    def _draw_features(self, patch, origin, geo):
        """Nose and mouth, as gains on the shaded skin."""
        subject = self.subject
        camera, world = geo["camera"], geo["world"]
        angle = geo["roll"]
        scale = geo["eyes"][0]["scale"]
        bridge = camera.project(world(_NOSE_BRIDGE))
        _modulate_ellipse(
            patch, origin, bridge, (0.55 * scale, 1.9 * scale), angle, (0.9, 0.88, 0.88)
        )
        tip = camera.project(world(_NOSE_TIP))
        _modulate_ellipse(
            patch, origin, tip, (0.6 * scale, 0.45 * scale), angle, (1.08, 1.07, 1.06)
        )
        for sign in (1.0, -1.0):
            x, y, z = _NOSTRIL
            nostril = camera.project(world((sign * x, y, z)))
            _modulate_ellipse(
                patch,
                origin,
                nostril,
                (0.32 * scale, 0.18 * scale),
                angle,
                (0.45, 0.42, 0.42),
            )
        mouth = camera.project(world(_MOUTH))
        half = subject.mouth_half_width_cm * scale
        _modulate_ellipse(
            patch, origin, mouth, (half, 0.55 * scale), angle, (0.95, 0.66, 0.66)
        )
        _modulate_ellipse(
            patch,
            origin,
            mouth,
            (0.95 * half, 0.09 * scale + 0.6),
            angle,
            (0.35, 0.3, 0.3),
        )

    def _draw_eye(self, patch, origin, eye, roll, shade_at, opening):
        """Brow, lids, sclera, iris, pupil and glint of one eye."""
        subject = self.subject
        scale = float(eye["scale"])
        left, right = sorted((eye["inner"], eye["outer"]), key=lambda p: p[0])
        mid_u, mid_v = (float(v) for v in (left + right) / 2)
        half_length = max(float(np.hypot(*(right - left))) / 2, 1.0)
        axis_u, axis_v = (float(v) for v in (right - left) / (2 * half_length))
        up_u, up_v = axis_v, -axis_u  # Perpendicular, towards the image top.

        def height_above(point):
            return float((point[0] - mid_u) * up_u + (point[1] - mid_v) * up_v)

        upper = height_above(eye["upper"])
        lower = max(-height_above(eye["lower"]), 0.5)
        brow = 1.75 * scale
        reach = max(1.3 * half_length, brow + 0.5 * scale) + 2
        window = _ellipse_window(patch.shape, origin, (mid_u, mid_v), reach)
        if window is None:
            return
        x0, x1, y0, y1 = window
        xs = np.arange(x0, x1, dtype=np.float32)[None, :] + (origin[0] - mid_u)
        ys = np.arange(y0, y1, dtype=np.float32)[:, None] + (origin[1] - mid_v)
        t = (xs * axis_u + ys * axis_v) * (1.0 / half_length)
        s = xs * up_u + ys * up_v  # Pixels above the eye line.
        region = patch[:, y0:y1, x0:x1]
        light = shade_at(mid_u, mid_v)
        bell = np.maximum(1.0 - t * t, 0.0)
        upper_curve = upper * bell
        lower_curve = -lower * bell
        # Socket shadow, lid crease and lashes as gains on the skin; a faint
        # line along the lower lid.
        socket = 0.14 * np.exp(-(t * t) * 0.6 - (s * (1.0 / (1.1 * scale))) ** 2)
        crease = np.exp(
            -(((s - upper_curve - 0.35 * scale) * (1.0 / (0.08 * scale + 0.6))) ** 2)
        ) * (np.abs(t) < 1.0)
        lash_width = 0.08 * scale + 0.8
        edge = _soft(1.05 - np.abs(t), 4.0)
        lash = _soft(lash_width - np.abs(s - upper_curve - 0.3 * lash_width), 1.0)
        lower_line = _soft(0.5 * lash_width - np.abs(s - lower_curve), 1.0)
        gain = (
            (1.0 - socket)
            * (1.0 - 0.18 * crease)
            * (1.0 - (0.75 * lash + 0.25 * lower_line) * edge)
        )
        # Brow.
        brow_curve = brow + 0.3 * scale * np.maximum(1.0 - 0.8 * t * t, 0.0)
        brow_alpha = (
            _soft(0.22 * scale - np.abs(s - brow_curve), 0.7)
            * _soft(1.15 - np.abs(t + 0.05), 3.0)
            * 0.85
        )
        brow_keep = 1.0 - brow_alpha
        for channel in range(3):
            plane = region[channel]
            plane *= gain * brow_keep
            plane += brow_alpha * (float(self.hair[channel]) * (0.6 + 0.4 * light))
        # The visible eyeball between the lids, drawn over its bounding box.
        inside = (
            _soft(upper_curve - s, 1.0)
            * _soft(s - lower_curve, 1.0)
            * _soft(1.0 - np.abs(t), half_length)
        )
        rows = np.flatnonzero(inside.max(axis=1) > 0)
        cols = np.flatnonzero(inside.max(axis=0) > 0)
        if rows.size == 0 or cols.size == 0:
            return
        r0, r1, c0, c1 = rows[0], rows[-1] + 1, cols[0], cols[-1] + 1
        inside = inside[r0:r1, c0:c1]
        t, s = t[r0:r1, c0:c1], s[r0:r1, c0:c1]
        xs, ys = xs[:, c0:c1], ys[r0:r1]
        upper_curve = upper_curve[r0:r1, c0:c1]
        dx = xs - (float(eye["iris"][0]) - mid_u)
        dy = ys - (float(eye["iris"][1]) - mid_v)
        inverse = np.linalg.inv(eye["iris_matrix"])
        alpha_ = dx * float(inverse[0, 0]) + dy * float(inverse[0, 1])
        beta_ = dx * float(inverse[1, 0]) + dy * float(inverse[1, 1])
        rho = np.sqrt(alpha_ * alpha_ + beta_ * beta_)
        iris_px = max(math.sqrt(abs(float(np.linalg.det(eye["iris_matrix"])))), 1.0)
        iris_alpha = _soft(1.0 - rho, iris_px)
        pupil_alpha = _soft(subject.pupil_ratio - rho, iris_px)
        angle = np.arctan2(beta_, alpha_)
        iris_shade = (
            (0.82 + 0.1 * np.sin(17.0 * angle) + 0.08 * np.sin(29.0 * angle + 1.0))
            * (1.0 - 1.8 * np.clip(rho - 0.75, 0, 0.25))
            * (0.7 + 0.3 * rho)
        )
        sclera_shade = 1.0 - 0.25 * np.clip(np.abs(t) - 0.4, 0, 1)
        gu, gv = float(eye["glint"][0]) - mid_u, float(eye["glint"][1]) - mid_v
        glint_r2 = ((xs - gu) ** 2 + (ys - gv) ** 2) * (
            1.0 / max(float(eye["glint_radius"]), 0.7) ** 2
        )
        glint_alpha = _soft(1.0 - glint_r2, 1.5) * (rho < 1.3)
        lid_shadow = 1.0 - 0.35 * np.exp(
            -np.maximum(upper_curve - s, 0.0) * (1.0 / (0.12 * scale + 0.5))
        )
        ball_gain = (
            (1.0 - 0.92 * pupil_alpha)
            * (1.0 - glint_alpha)
            * (lid_shadow * light)
            * inside
        )
        glint_add = glint_alpha * (255.0 * light) * lid_shadow * inside
        keep = 1.0 - inside
        eyeball = region[:, r0:r1, c0:c1]
        for channel in range(3):
            ball = (
                float(self.sclera[channel]) * sclera_shade * (1.0 - iris_alpha)
                + float(self.iris[channel]) * iris_shade * iris_alpha
            )
            plane = eyeball[channel]
            plane *= keep
            plane += ball * ball_gain + glint_add


# ---------------------------------------------------------------------------
# Writing recordings.


def recording_splits(config):
    """Split of each recording index ("train", "val" or "test").

    The splits are interleaved by a permutation drawn from the seed, as the
    folder numbers of GazeCapture are.

    Args:
      config: SyntheticConfig.

    Example:

    >>> recording_splits(SyntheticConfig(num_train_subjects=2,
    ...     num_val_subjects=0, num_test_subjects=1, seed=3)).count("test")
    1
    """
    splits = (
        ["train"] * config.num_train_subjects
        + ["val"] * config.num_val_subjects
        + ["test"] * config.num_test_subjects
    )
    rng = np.random.default_rng(
        np.random.SeedSequence(entropy=config.seed, spawn_key=(2**31,))
    )
    return [splits[i] for i in rng.permutation(len(splits))]


def recording_rng(seed, recording_index):
    """The generator of one recording, a function of (seed, index) only."""
    return np.random.default_rng(
        np.random.SeedSequence(entropy=seed, spawn_key=(recording_index,))
    )


def _box_json(boxes, valid):
    boxes = np.where(np.asarray(valid)[:, None], np.asarray(boxes), 0.0)
    return {
        "X": [round(float(v), 3) for v in boxes[:, 0]],
        "Y": [round(float(v), 3) for v in boxes[:, 1]],
        "W": [round(float(v), 3) for v in boxes[:, 2]],
        "H": [round(float(v), 3) for v in boxes[:, 3]],
        "IsValid": [int(v) for v in valid],
    }


def face_grid(face_box, frame_size):
    """faceGrid.json parameters of a face box: 1-based X, Y and W, H in cells.

    The frame is divided into 25 x 25 cells (whatever its aspect); the grid
    box is clipped to the grid.

    Args:
      face_box: (X, Y, W, H) in frame pixels.
      frame_size: (width, height) of the frame.

    Example:

    >>> face_grid((160., 120., 320., 240.), (640, 480))
    (7, 7, 13, 13)
    """
    x, y, w, h = face_box
    width, height = frame_size
    x0 = int(np.clip(math.floor(x * _GRID / width), 0, _GRID - 1))
    y0 = int(np.clip(math.floor(y * _GRID / height), 0, _GRID - 1))
    x1 = int(np.clip(math.ceil((x + w) * _GRID / width), x0 + 1, _GRID))
    y1 = int(np.clip(math.ceil((y + h) * _GRID / height), y0 + 1, _GRID))
    return x0 + 1, y0 + 1, x1 - x0, y1 - y0


def _write_json(path, content):
    with open(path, "w") as f:
        json.dump(content, f, separators=(",", ":"))


def render_recording(recording_dir, *, recording_index, split, config):
    """Renders one recording (one subject) in the GazeCapture layout.

    The recording draws only from `recording_rng(config.seed,
    recording_index)`, so it is the same whichever process renders it.

    Args:
      recording_dir: str. folder to write (created; usually `DIR/%05d`).
      recording_index: int. index of the recording (its folder number).
      split: str. "train", "val" or "test"; test subjects stare at each dot.
      config: SyntheticConfig.

    Returns:
      dict with `recording`, `split`, `device`, `frames`, `valid_frames`.

    Example:

    >>> import os, tempfile
    >>> directory = os.path.join(tempfile.mkdtemp(), "00000")
    >>> config = SyntheticConfig(dots_per_recording=1, frames_per_dot=2)
    >>> render_recording(directory, recording_index=0, split="train",
    ...                  config=config)["frames"]
    2
    """
    if split not in SPLITS:
        raise ValueError(f"split must be one of {SPLITS}. Received: split={split}")
    rng = recording_rng(config.seed, recording_index)
    subject = sample_subject(rng)
    conditions = sample_conditions(rng, config)
    frames = _plan_recording(rng, config, split, subject, conditions)
    renderer = _RecordingRenderer(rng, subject, conditions)
    frames_dir = os.path.join(recording_dir, "frames")
    os.makedirs(frames_dir, exist_ok=True)
    names, faces, rights, lefts, grids = [], [], [], [], []
    for index, frame in enumerate(frames):
        geo = renderer.geometry(frame)
        face, right, left = renderer.boxes(frame, geo)
        image = renderer.render(frame, geo)
        name = f"{index:05d}.jpg"
        Image.fromarray(image).save(
            os.path.join(frames_dir, name), "JPEG", quality=config.jpeg_quality
        )
        names.append(name)
        faces.append(face)
        rights.append(right)
        lefts.append(left)
        grids.append((face_grid(face[0], geo["size"]), face[1]))

    def unzip(items):
        return np.array([i[0] for i in items], np.float64), np.array(
            [bool(i[1]) for i in items]
        )

    face_boxes, face_valid = unzip(faces)
    right_boxes, right_valid = unzip(rights)
    left_boxes, left_valid = unzip(lefts)
    grid_boxes, grid_valid = unzip(grids)
    valid = face_valid & right_valid & left_valid & grid_valid
    device = conditions.device
    screen = [devices_lib.screen_size_points(device, f.orientation) for f in frames]
    _write_json(os.path.join(recording_dir, "frames.json"), names)
    _write_json(
        os.path.join(recording_dir, "appleFace.json"), _box_json(face_boxes, face_valid)
    )
    _write_json(
        os.path.join(recording_dir, "appleRightEye.json"),
        _box_json(right_boxes, right_valid),
    )
    _write_json(
        os.path.join(recording_dir, "appleLeftEye.json"),
        _box_json(left_boxes, left_valid),
    )
    grid_json = _box_json(grid_boxes, grid_valid)
    for key in ("X", "Y", "W", "H"):
        grid_json[key] = [int(v) for v in grid_json[key]]
    _write_json(os.path.join(recording_dir, "faceGrid.json"), grid_json)
    _write_json(
        os.path.join(recording_dir, "dotInfo.json"),
        {
            "DotNum": [f.dot_num for f in frames],
            "XPts": [round(f.x_pts, 3) for f in frames],
            "YPts": [round(f.y_pts, 3) for f in frames],
            "XCam": [round(f.x_cm, 5) for f in frames],
            "YCam": [round(f.y_cm, 5) for f in frames],
            "Time": [round(f.time, 5) for f in frames],
        },
    )
    _write_json(
        os.path.join(recording_dir, "screen.json"),
        {
            "H": [h for _, h in screen],
            "W": [w for w, _ in screen],
            "Orientation": [f.orientation for f in frames],
        },
    )
    _write_json(
        os.path.join(recording_dir, "info.json"),
        {
            "TotalFrames": len(frames),
            "NumFaceDetections": int(face_valid.sum()),
            "NumEyeDetections": int(valid.sum()),
            "Dataset": split,
            "DeviceName": device.name,
        },
    )
    return {
        "recording": recording_index,
        "split": split,
        "device": device.name,
        "frames": len(frames),
        "valid_frames": int(valid.sum()),
    }


def count_frames(config):
    """Frames per split that `render_dataset` writes, without rendering.

    Args:
      config: SyntheticConfig.

    Example:

    >>> count_frames(SyntheticConfig(num_train_subjects=2, num_val_subjects=0,
    ...     num_test_subjects=0, frames_per_dot=3, dots_per_recording=4))
    {'train': 24, 'val': 0, 'test': 0}
    """
    counts = {split: 0 for split in SPLITS}
    for index, split in enumerate(recording_splits(config)):
        rng = recording_rng(config.seed, index)
        subject = sample_subject(rng)
        conditions = sample_conditions(rng, config)
        counts[split] += len(_plan_recording(rng, config, split, subject, conditions))
    return counts


def _render_task(task):
    output_dir, index, split, config = task
    return render_recording(
        os.path.join(output_dir, f"{index:05d}"),
        recording_index=index,
        split=split,
        config=config,
    )


_RECORDING_NAME = re.compile(r"^\d{5}$")


def _prepare_output_dir(output_dir, overwrite):
    if os.path.isdir(output_dir) and os.listdir(output_dir):
        if not overwrite:
            raise FileExistsError(
                f"output_dir is not empty: pass overwrite=True (--overwrite) to "
                f"replace its recordings, or choose an empty folder. Received: "
                f"output_dir={output_dir}"
            )
        for name in os.listdir(output_dir):
            path = os.path.join(output_dir, name)
            if _RECORDING_NAME.match(name) and os.path.isdir(path):
                shutil.rmtree(path)
            elif name == SUMMARY_FILE:
                os.remove(path)
    os.makedirs(output_dir, exist_ok=True)


def render_dataset(
    output_dir, config, *, num_workers=1, progress=True, overwrite=False
):
    """Renders the whole synthetic dataset into `output_dir`.

    Recordings are rendered in parallel when `num_workers > 1`; the result
    does not depend on `num_workers`. A summary (with the config) is written
    to `output_dir/synthetic_summary.json`.

    Args:
      output_dir: str. folder for the `%05d` recordings; must be empty.
      config: SyntheticConfig (or a `PRESETS` entry).
      num_workers: int. worker processes.
      progress: bool. show a tqdm progress bar.
      overwrite: bool. replace the recordings of a non-empty `output_dir`.

    Returns:
      dict: `recordings`, `frames`, `valid_frames`, `seconds` and per split
      `splits[split]` with the same counts.

    Example:

    >>> import tempfile
    >>> config = SyntheticConfig(num_train_subjects=1, num_val_subjects=1,
    ...     num_test_subjects=0, dots_per_recording=1, frames_per_dot=1)
    >>> render_dataset(tempfile.mkdtemp(), config, progress=False)["recordings"]
    2
    """
    if num_workers < 1:
        raise ValueError(
            f"num_workers must be >= 1. " f"Received: num_workers={num_workers}"
        )
    _prepare_output_dir(output_dir, overwrite)
    start = time.perf_counter()
    splits = recording_splits(config)
    tasks = [(output_dir, i, split, config) for i, split in enumerate(splits)]
    bar = None
    if progress:
        import tqdm  # Only needed for the progress bar.

        bar = tqdm.tqdm(
            total=sum(count_frames(config).values()),
            unit="frame",
            desc="Rendering",
            smoothing=0.1,
        )
    results = []
    if num_workers == 1:
        for task in tasks:
            results.append(_render_task(task))
            if bar is not None:
                bar.update(results[-1]["frames"])
    else:
        methods = multiprocessing.get_all_start_methods()
        context = multiprocessing.get_context("fork" if "fork" in methods else None)
        with context.Pool(min(num_workers, len(tasks))) as pool:
            for result in pool.imap_unordered(_render_task, tasks):
                results.append(result)
                if bar is not None:
                    bar.update(result["frames"])
    if bar is not None:
        bar.close()
    results.sort(key=lambda r: r["recording"])
    seconds = time.perf_counter() - start
    summary = {
        "recordings": len(results),
        "frames": sum(r["frames"] for r in results),
        "valid_frames": sum(r["valid_frames"] for r in results),
        "seconds": round(seconds, 2),
        "splits": {},
    }
    for split in SPLITS:
        chosen = [r for r in results if r["split"] == split]
        summary["splits"][split] = {
            "recordings": len(chosen),
            "frames": sum(r["frames"] for r in chosen),
            "valid_frames": sum(r["valid_frames"] for r in chosen),
        }
    _write_json(
        os.path.join(output_dir, SUMMARY_FILE),
        {
            "summary": summary,
            "config": dataclasses.asdict(config),
            "recordings": results,
        },
    )
    return summary


def benchmark(config=None, *, num_recordings=4):
    """Measures rendering speed on one core (frames per second).

    Renders `num_recordings` train recordings into a temporary folder in the
    calling process, JPEG encoding and file writing included.

    Args:
      config: SyntheticConfig. defaults to `PRESETS["quick"]`.
      num_recordings: int. recordings to render.

    Returns:
      dict: `frames`, `seconds` (wall), `cpu_seconds` (this process),
      `frames_per_second` (wall) and `frames_per_cpu_second`.
    """
    config = config or PRESETS["quick"]
    frames = 0
    with tempfile.TemporaryDirectory() as directory:
        start, cpu_start = time.perf_counter(), time.process_time()
        for index in range(num_recordings):
            result = render_recording(
                os.path.join(directory, f"{index:05d}"),
                recording_index=index,
                split="train",
                config=config,
            )
            frames += result["frames"]
        seconds = time.perf_counter() - start
        cpu_seconds = time.process_time() - cpu_start
    return {
        "frames": frames,
        "seconds": seconds,
        "cpu_seconds": cpu_seconds,
        "frames_per_second": frames / seconds,
        "frames_per_cpu_second": frames / cpu_seconds,
    }
