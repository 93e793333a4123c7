"""The scene of a recording: device, where the subject holds it, lighting, camera.

A subject centres the screen, not their face: the eyes sit near the line
through the screen's centre perpendicular to the screen, at a reading
distance. The front camera lies beside the screen, so the camera sees the
face off-centre and at an angle that depends on the device and its
orientation (below the frame centre on an upright phone, to one side in
landscape). The head faces the screen, turned by a per-recording pose and
partly towards each target.

Example:

>>> import numpy as np
>>> from tat_keras.data.synthetic import config as config_lib
>>> conditions = sample_conditions(np.random.default_rng(0),
...                                config_lib.SyntheticConfig())
>>> conditions.lighting in config_lib.LIGHTING_REGIMES
True
"""

import dataclasses
import math

import numpy as np

from tat_keras.data import devices as devices_lib
from tat_keras.data.synthetic import config as config_lib
from tat_keras.data.synthetic import geometry
from tat_keras.data.synthetic import roster


@dataclasses.dataclass(frozen=True)
class Conditions:
    """What stays fixed over a recording (angles in degrees, lengths in cm)."""

    device: devices_lib.DeviceProfile
    distance_cm: float
    lean_cm: tuple  # (x, y) offset of the eyes from the screen's axis.
    head_yaw: float  # Head pose relative to facing the screen's centre.
    head_pitch: float
    head_roll: float
    lighting: str  # One of config.LIGHTING_REGIMES.
    light: tuple  # Unit vector in image axes (x right, y up, z to camera).
    ambient: float
    diffuse: float
    tint: tuple  # Per-channel gain of the light and white balance.
    exposure: float  # Camera gain of the whole frame.
    background_gain: float  # Brightness of the room behind the subject.
    illuminance: float  # 0 dark .. 1 bright, at the eyes (sets the pupil).
    screen_glow: float  # Brightness of the screen's corneal reflection.
    noise_sigma: float
    jpeg_quality: int


def sample_conditions(rng, config):
    """Draws the device, placement, head pose, lighting and camera of a recording.

    Args:
      rng: np.random.Generator.
      config: SyntheticConfig.
    """
    device = roster.choose_device(rng, config)
    low, high = config.distance_range_cm
    if device.device_type == "tablet":
        low = min(max(low, 27.0), high)
    else:
        high = max(min(high, 40.0), low)
    weights = np.asarray(config.lighting_weights, np.float64)
    lighting = config_lib.LIGHTING_REGIMES[rng.choice(4, p=weights / weights.sum())]
    azimuth = rng.uniform(0, 2 * math.pi)
    elevation = rng.uniform(0.3, 0.9)
    planar = math.sqrt(1 - elevation**2)
    u = rng.uniform(size=8)  # Lighting draws, mapped per regime below.
    if lighting == "even":
        ambient, diffuse = 0.45 + 0.25 * u[0], 0.25 + 0.35 * u[1]
        exposure, background = 0.9 + 0.2 * u[2], 0.85 + 0.3 * u[3]
        illuminance, noise = 0.5 + 0.4 * u[4], 2.0 + 4.0 * u[5]
    elif lighting == "dark":
        ambient, diffuse = 0.32 + 0.15 * u[0], 0.12 + 0.2 * u[1]
        exposure, background = 0.55 + 0.25 * u[2], 0.35 + 0.3 * u[3]
        illuminance, noise = 0.05 + 0.2 * u[4], 7.0 + 6.0 * u[5]
    elif lighting == "backlit":
        ambient, diffuse = 0.3 + 0.15 * u[0], 0.1 + 0.2 * u[1]
        exposure, background = 1.0 + 0.25 * u[2], 1.7 + 0.8 * u[3]
        illuminance, noise = 0.4 + 0.3 * u[4], 3.0 + 4.0 * u[5]
    else:  # over_exposed
        ambient, diffuse = 0.7 + 0.2 * u[0], 0.35 + 0.25 * u[1]
        exposure, background = 1.3 + 0.35 * u[2], 1.0 + 0.4 * u[3]
        illuminance, noise = 0.8 + 0.2 * u[4], 2.0 + 2.0 * u[5]
    quality_low, quality_high = config.jpeg_quality_range
    pose = rng.normal(0.0, 1.0, 3) * np.asarray(config.head_pose_std_deg)
    return Conditions(
        device=device,
        distance_cm=float(rng.uniform(low, high)),
        lean_cm=(float(rng.normal(0.0, 2.0)), float(rng.normal(1.0, 2.5))),
        head_yaw=float(np.clip(pose[0], -40, 40)),
        head_pitch=float(np.clip(pose[1], -32, 32)),
        head_roll=float(np.clip(pose[2], -20, 20)),
        lighting=lighting,
        light=(planar * math.cos(azimuth), planar * math.sin(azimuth), elevation),
        ambient=float(ambient),
        diffuse=float(diffuse),
        tint=tuple(
            float(t) for t in rng.uniform(0.85, 1.1) * rng.normal(1.0, 0.06, 3)
        ),
        exposure=float(exposure),
        background_gain=float(background),
        illuminance=float(illuminance),
        screen_glow=float(np.clip(1.1 - 0.6 * illuminance + 0.2 * u[6], 0.3, 1.0)),
        noise_sigma=float(noise),
        jpeg_quality=int(rng.integers(quality_low, quality_high + 1)),
    )


def screen_centre_cm(device, orientation):
    """(x, y) of the screen's centre in the label frame (cm from the camera)."""
    width, height = devices_lib.screen_size_points(device, orientation)
    return devices_lib.screen_to_camera_cm(device, width / 2, height / 2, orientation)


def screen_size_cm(device, orientation):
    """(width, height) of the screen in cm as the subject sees it."""
    if orientation <= 2:
        return device.width_cm, device.height_cm
    return device.height_cm, device.width_cm


def place_head(rng, config, conditions, orientation, *, edge):
    """Draws the eye midpoint for one dot.

    The eyes sit in front of the screen's centre, offset by the recording's
    lean and a small per-dot change; the face-box centre is kept inside the
    frame. With `edge`, the subject leans so that the face box reaches past
    one edge of the frame.

    Args:
      rng: np.random.Generator.
      config: SyntheticConfig.
      conditions: Conditions.
      orientation: int. 1-4.
      edge: bool. lean across an edge of the frame.

    Returns:
      float64 array (3,), the eye midpoint in the label frame.
    """
    device = conditions.device
    width, height = geometry.frame_size(orientation)
    camera = geometry.Camera(device.focal_px, width, height)
    low, high = config.distance_range_cm
    distance = float(np.clip(conditions.distance_cm + rng.normal(0, 1.5), low, high))
    cx, cy = screen_centre_cm(device, orientation)
    lean = np.asarray(conditions.lean_cm) + rng.normal(0, 0.8, 2)
    eyes = np.array([cx + lean[0], cy + lean[1], distance])
    # The face-box centre lies about 2.4 cm below the eyes.
    u, v = camera.project(eyes - np.array([0.0, 2.4, 0.0]))
    half_face = 0.95 * 7.0 * device.focal_px / distance
    side, inset = rng.integers(4), half_face * rng.uniform(0.45, 0.8)
    if edge:
        u, v = (
            (inset, v),
            (width - inset, v),
            (u, inset),
            (u, height - inset),
        )[side]
    else:
        u = float(np.clip(u, 0.15 * width, 0.85 * width))
        v = float(np.clip(v, 0.15 * height, 0.85 * height))
    return camera.unproject(u, v, distance) + np.array([0.0, 2.4, 0.0])
