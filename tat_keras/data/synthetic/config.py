"""What to render: `SyntheticConfig`, its presets and the nuisance modes.

Example:

>>> config = PRESETS["quick"]
>>> config.dots_per_recording >= 23  # 13 calibration dots, 10 to evaluate.
True
>>> SyntheticConfig(nuisances="sensor_noise_only").geometric_nuisances
False
"""

import dataclasses

from tat_keras.data import devices as devices_lib
from tat_keras.data.synthetic import roster

SPLITS = ("train", "val", "test")

# What changes from frame to frame besides the gaze:
# - "all": sensor noise, detector errors of the boxes, head motion, camera
#   shake, exposure and white-balance drift, the eye's own motion (drift,
#   microsaccades, travel to a new dot) and look-aways;
# - "sensor_noise_only": sensor noise alone, so that the jitter of a stare
#   sequence measures the model's response to noise only. Subjects, dots,
#   blinks and missed detections are drawn exactly as with "all".
NUISANCE_MODES = ("all", "sensor_noise_only")

# Lighting regimes of a recording: an evenly lit room; a dark room (dim,
# noisy); a window behind the subject (backlit face, clipped background); a
# bright, over-exposed scene (clipped skin).
LIGHTING_REGIMES = ("even", "dark", "backlit", "over_exposed")


@dataclasses.dataclass(frozen=True)
class SyntheticConfig:
    """What to render.

    Args:
      num_train_subjects, num_val_subjects, num_test_subjects: int. subjects
        (= recordings) per split.
      dots_per_recording: int. dots every subject looks at, `frames_per_dot`
        frames each, spread over the screen (per-user calibration takes some
        of a test subject's dots and evaluates on the others).
      dots_per_recording_spread: int. when positive, each recording draws its
        number of dots uniformly from `dots_per_recording` +- this, so that
        recordings differ in length as GazeCapture's do (0: all equal).
      train_dots_per_recording: int or None. dots a training subject looks
        at, when training should see fewer frames of more subjects than the
        held-out subjects give (None: `dots_per_recording`).
      frames_per_dot: int. frames per dot.
      stare_dots_per_recording: int. extra dots a test subject stares at.
      stare_frames_per_dot: int. valid frames per stare sequence (at least);
        blinks and missed detections add frames on top.
      seed: int. the whole dataset is a function of the seed.
      devices: tuple of str. device names from `devices.DEVICES`.
      tablet_fraction: float. share of subjects on a tablet.
      orientation_weights: 4 floats. how often orientations 1-4 are used;
        phones are never upside down (2).
      distance_range_cm: (float, float). eye-to-device distance.
      head_pose_std_deg: (float, float, float). spread of a recording's head
        yaw, pitch and roll about facing the screen's centre.
      gaze_x_range_cm, gaze_y_range_cm: (float, float). dots are kept inside
        this label range (the model's ordinal bins cover -20..20 and -25..15).
      frame_rate_hz: float. frame rate that sets `dotInfo.json` `Time`.
      blink_rate: float. chance per frame that a blink starts.
      face_miss_rate: float. chance per frame that the face detector misses.
      shake_rate: float. chance per frame of a shaken, motion-blurred frame.
      edge_rate: float. chance per dot that the subject leans so that the face
        box reaches past an edge of the frame.
      glasses_fraction: float. share of subjects wearing glasses.
      look_away_rate: float. chance per dot of a glance away from the screen.
      gross_failure_rate: float. chance per frame that the eye detector
        starts boxing an eyebrow for a few frames.
      lighting_weights: 4 floats. how often each of `LIGHTING_REGIMES` is used.
      jpeg_quality_range: (int, int). JPEG quality of a recording, drawn in
        this range.
      nuisances: str. one of `NUISANCE_MODES`.
    """

    num_train_subjects: int = 40
    num_val_subjects: int = 8
    num_test_subjects: int = 8
    dots_per_recording: int = 26
    dots_per_recording_spread: int = 0
    train_dots_per_recording: int | None = None
    frames_per_dot: int = 2
    stare_dots_per_recording: int = 3
    stare_frames_per_dot: int = 30
    seed: int = 0
    devices: tuple = tuple(roster.GAZECAPTURE_ROSTER)
    tablet_fraction: float = 0.2
    orientation_weights: tuple = (0.6, 0.08, 0.16, 0.16)
    distance_range_cm: tuple = (20.0, 45.0)
    head_pose_std_deg: tuple = (12.0, 9.0, 5.0)
    gaze_x_range_cm: tuple = (-19.5, 19.5)
    gaze_y_range_cm: tuple = (-24.5, 14.5)
    frame_rate_hz: float = 15.0
    blink_rate: float = 0.015
    face_miss_rate: float = 0.015
    shake_rate: float = 0.04
    edge_rate: float = 0.04
    glasses_fraction: float = 0.25
    look_away_rate: float = 0.03
    gross_failure_rate: float = 0.003
    lighting_weights: tuple = (0.64, 0.12, 0.14, 0.1)
    jpeg_quality_range: tuple = (60, 95)
    nuisances: str = "all"

    def __post_init__(self):
        for name in ("num_train_subjects", "num_val_subjects", "num_test_subjects"):
            if getattr(self, name) < 0:
                raise ValueError(
                    f"{name} must be >= 0. Received: {name}={getattr(self, name)}"
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
                    f"{name} must be >= 1. Received: {name}={getattr(self, name)}"
                )
        if not (isinstance(self.dots_per_recording_spread, int)
                and 0 <= self.dots_per_recording_spread < self.dots_per_recording):
            raise ValueError(
                "dots_per_recording_spread must be an integer in [0, "
                "dots_per_recording). Received: dots_per_recording_spread="
                f"{self.dots_per_recording_spread!r}, dots_per_recording="
                f"{self.dots_per_recording}"
            )
        if self.train_dots_per_recording is not None and not (
                isinstance(self.train_dots_per_recording, int)
                and self.train_dots_per_recording >= 1):
            raise ValueError(
                "train_dots_per_recording must be None or an integer >= 1. "
                f"Received: train_dots_per_recording={self.train_dots_per_recording!r}"
            )
        unknown = [d for d in self.devices if d not in devices_lib.DEVICES]
        if unknown or not self.devices:
            raise ValueError(
                f"devices must name profiles of devices.DEVICES "
                f"({sorted(devices_lib.DEVICES)}). "
                f"Received: devices={self.devices}"
            )
        for name, count in (("orientation_weights", 4), ("lighting_weights", 4)):
            weights = getattr(self, name)
            if len(weights) != count or min(weights) < 0 or sum(weights) <= 0:
                raise ValueError(
                    f"{name} must be {count} non-negative weights with a "
                    f"positive sum. Received: {name}={weights}"
                )
        if len(self.head_pose_std_deg) != 3 or min(self.head_pose_std_deg) < 0:
            raise ValueError(
                "head_pose_std_deg must be 3 non-negative angles (yaw, pitch, "
                f"roll). Received: head_pose_std_deg={self.head_pose_std_deg}"
            )
        low, high = self.distance_range_cm
        if not 10.0 <= low <= high <= 100.0:
            raise ValueError(
                "distance_range_cm must satisfy 10 <= low <= high "
                f"<= 100. Received: distance_range_cm={self.distance_range_cm}"
            )
        for name in (
            "tablet_fraction",
            "blink_rate",
            "face_miss_rate",
            "shake_rate",
            "edge_rate",
            "glasses_fraction",
            "look_away_rate",
            "gross_failure_rate",
        ):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ValueError(
                    f"{name} must be in [0, 1]. "
                    f"Received: {name}={getattr(self, name)}"
                )
        low, high = self.jpeg_quality_range
        if not 1 <= low <= high <= 100:
            raise ValueError(
                "jpeg_quality_range must satisfy 1 <= low <= high <= 100. "
                f"Received: jpeg_quality_range={self.jpeg_quality_range}"
            )
        if self.frame_rate_hz <= 0:
            raise ValueError(
                "frame_rate_hz must be positive. "
                f"Received: frame_rate_hz={self.frame_rate_hz}"
            )
        if self.nuisances not in NUISANCE_MODES:
            raise ValueError(
                f"nuisances must be one of {NUISANCE_MODES}. "
                f"Received: nuisances={self.nuisances!r}"
            )

    @property
    def num_recordings(self):
        return self.num_train_subjects + self.num_val_subjects + self.num_test_subjects

    @property
    def geometric_nuisances(self):
        """False when only sensor noise changes between frames of a stare."""
        return self.nuisances == "all"


PRESETS = {
    # The quick set (tests and small examples): about 3,600 frames from 56
    # subjects, under a minute and a half on one core.
    "quick": SyntheticConfig(),
    # The evidence protocol's data: many subjects, one frame per dot (about
    # 15,000 frames). With 60 subjects of 144 frames each, networks learned
    # the training subjects and ended behind a prior that knows the device
    # (the dataset README); GazeCapture has over a thousand subjects.
    "bench": SyntheticConfig(
        num_train_subjects=240,
        num_val_subjects=20,
        num_test_subjects=24,
        dots_per_recording=36,
        frames_per_dot=1,
        stare_dots_per_recording=4,
        stare_frames_per_dot=40,
    ),
    # A tenth of GazeCapture, for measuring what its size costs (docs/data.md,
    # "At GazeCapture's size"): 150 subjects split as GazeCapture's
    # 1,271 / 50 / 150, and recordings of 1,656 frames on average (GazeCapture: 2,445,504 frames
    # over 1,474 recordings, 1,659 each), 40 to 98 dots of 24 frames. How
    # GazeCapture's lengths spread is not published; the uniform spread is
    # this preset's choice. Devices and orientations follow the roster, as
    # in every preset. About 250,000 frames.
    "tenth": SyntheticConfig(
        num_train_subjects=129,
        num_val_subjects=6,
        num_test_subjects=15,
        dots_per_recording=69,
        dots_per_recording_spread=29,
        frames_per_dot=24,
        stare_dots_per_recording=4,
        stare_frames_per_dot=40,
    ),
}


def with_overrides(config, assignments):
    """`config` with fields replaced by `"name=value"` strings.

    Values are Python literals (numbers, strings, tuples); the result is
    validated like any `SyntheticConfig`. Used by `make_synthetic.py --set` to
    render a variant of a preset, for example without glasses:

    >>> config = with_overrides(PRESETS["quick"], ["glasses_fraction=0",
    ...                                            "lighting_weights=(1, 0, 0, 0)"])
    >>> config.glasses_fraction, config.lighting_weights
    (0, (1, 0, 0, 0))
    >>> with_overrides(PRESETS["quick"], ["glases_fraction=0"])
    Traceback (most recent call last):
    ...
    ValueError: Unknown SyntheticConfig field 'glases_fraction'. ...
    """
    import ast

    names = {field.name: field for field in dataclasses.fields(SyntheticConfig)}
    changes = {}
    for assignment in assignments:
        name, separator, text = assignment.partition("=")
        name = name.strip()
        if not separator:
            raise ValueError(
                f"Expected name=value. Received: {assignment!r}"
            )
        if name not in names:
            raise ValueError(
                f"Unknown SyntheticConfig field {name!r}. Fields: "
                f"{', '.join(sorted(names))}"
            )
        try:
            value = ast.literal_eval(text.strip())
        except (ValueError, SyntaxError):
            value = text.strip()  # A bare word: a string such as an enum value.
        if isinstance(value, list):
            value = tuple(value)
        changes[name] = value
    return dataclasses.replace(config, **changes)
