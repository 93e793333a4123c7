"""Phone and tablet profiles, and screen points to camera centimetres.

GazeCapture labels a frame with the position of the dot the subject looks at,
in centimetres from the centre of the front camera, in the plane of the
screen, as the subject sees the device: `XCam` grows to the subject's right,
`YCam` grows upwards (a dot below the camera has a negative `YCam`). The app
shows the dot in screen points (`XPts`, `YPts`, origin at the top-left corner
of the screen as the subject sees it, y growing downwards), and the screen
turns with the device in four orientations (`screen.json` `Orientation`):

- 1: portrait, camera above the screen;
- 2: portrait upside down, camera below the screen;
- 3: landscape, home button on the right, camera on the subject's left;
- 4: landscape, home button on the left, camera on the subject's right.

A profile gives the screen in its portrait orientation: its size in points
and in centimetres, and where its top-left corner lies from the camera. The
numbers below are written from the manufacturers' published specifications
(display resolution, pixel density, points per pixel and body dimensions);
the camera positions are measured off the published front views and are
accurate to a few millimetres, which is all a synthetic twin needs.

Example:

>>> device = DEVICES["iPhone 6"]
>>> x_cm, y_cm = screen_to_camera_cm(device, 187.5, 0.0, orientation=1)
>>> round(float(x_cm), 2), round(float(y_cm), 2)
(1.02, -0.85)
"""

import dataclasses

import numpy as np

_CM_PER_INCH = 2.54
ORIENTATIONS = (1, 2, 3, 4)


@dataclasses.dataclass(frozen=True)
class DeviceProfile:
    """A phone or tablet: screen and front camera, portrait orientation.

    Args:
      name: str. `info.json` `DeviceName`.
      device_type: str. "phone" or "tablet".
      width_pts, height_pts: float. screen size in points, portrait.
      width_cm, height_cm: float. visible screen size in cm, portrait.
      camera_to_left_cm: float. distance from the camera centre to the left
        edge of the portrait screen, to the left (positive when the edge lies
        left of the camera).
      camera_to_top_cm: float. distance from the camera centre down to the top
        edge of the portrait screen (positive when the edge lies below the
        camera; negative for a camera inside a notch).
      focal_px: float. focal length of the front camera in pixels of a 640x480
        frame.
      width_px, height_px: int. screen size in physical pixels, portrait.
    """

    name: str
    device_type: str
    width_pts: float
    height_pts: float
    width_cm: float
    height_cm: float
    camera_to_left_cm: float
    camera_to_top_cm: float
    focal_px: float
    width_px: int
    height_px: int

    @property
    def cm_per_point(self):
        """Centimetres per screen point (the same along both axes)."""
        return self.width_cm / self.width_pts


def _screen_cm(pixels, pixels_per_inch):
    return pixels / pixels_per_inch * _CM_PER_INCH


def _profile(
    name,
    device_type,
    *,
    pixels,
    points,
    ppi,
    camera_from_centre_cm,
    camera_above_screen_cm,
    focal_px,
):
    """Builds a profile from published display facts.

    `pixels` and `points` are (width, height) in portrait; `ppi` the pixel
    density; `camera_from_centre_cm` the camera's horizontal offset from the
    centre line of the screen (positive to the right, as seen by the user);
    `camera_above_screen_cm` its height above the top edge of the screen.
    """
    width_cm = _screen_cm(pixels[0], ppi)
    height_cm = _screen_cm(pixels[1], ppi)
    return DeviceProfile(
        name=name,
        device_type=device_type,
        width_pts=float(points[0]),
        height_pts=float(points[1]),
        width_cm=width_cm,
        height_cm=height_cm,
        camera_to_left_cm=width_cm / 2 + camera_from_centre_cm,
        camera_to_top_cm=camera_above_screen_cm,
        focal_px=focal_px,
        width_px=int(pixels[0]),
        height_px=int(pixels[1]),
    )


# Display: resolution in pixels, pixel density and points per pixel from the
# manufacturer's technical specifications. Bodies (for the camera heights):
# iPhone 4S 115.2 x 58.6 mm, iPhone 5/5S 123.8 x 58.6 mm, iPhone 6/6S
# 138.1 x 67.0 mm, iPhone 6/6S Plus 158.1 x 77.8 mm, iPhone X 143.6 x
# 70.9 mm, iPad 2 241.2 x 185.7 mm, iPad Air/Air 2 240 x 169.5 mm, iPad mini
# 200 x 134.7 mm, iPad mini 4 203.2 x 134.8 mm, iPad Pro 10.5-inch
# 250.6 x 174.1 mm. The iPhone 4S, 6 and 6S (and Plus) cameras sit left of
# the earpiece, the iPhone 5/5S camera above it; iPad cameras are centred.
# Front cameras: about 31 mm (35 mm-equivalent) for the phones, a slightly
# wider lens on the tablets.
_PHONE_FOCAL_PX = 550.0
_TABLET_FOCAL_PX = 500.0
_SPECS = (
    # name, type, pixels, points, ppi, camera from centre, camera above screen.
    ("iPhone 4S", "phone", (640, 960), (320, 480), 326, -1.0, 1.0),
    ("iPhone 5", "phone", (640, 1136), (320, 568), 326, 0.0, 1.05),
    ("iPhone 5S", "phone", (640, 1136), (320, 568), 326, 0.0, 1.05),
    ("iPhone 6", "phone", (750, 1334), (375, 667), 326, -1.02, 0.85),
    ("iPhone 6S", "phone", (750, 1334), (375, 667), 326, -1.02, 0.85),
    ("iPhone 6 Plus", "phone", (1080, 1920), (414, 736), 401, -1.05, 0.9),
    ("iPhone 6S Plus", "phone", (1080, 1920), (414, 736), 401, -1.05, 0.9),
    ("iPhone X", "phone", (1125, 2436), (375, 812), 458, 0.9, -0.25),
    ("iPad 2", "tablet", (768, 1024), (768, 1024), 132, 0.0, 1.1),
    ("iPad Air", "tablet", (1536, 2048), (768, 1024), 264, 0.0, 1.07),
    ("iPad Air 2", "tablet", (1536, 2048), (768, 1024), 264, 0.0, 1.07),
    ("iPad mini", "tablet", (768, 1024), (768, 1024), 163, 0.0, 1.09),
    ("iPad mini 4", "tablet", (1536, 2048), (768, 1024), 326, 0.0, 1.09),
    ("iPad Pro 10.5", "tablet", (1668, 2224), (834, 1112), 264, 0.0, 0.92),
)
DEVICES = {
    name: _profile(
        name,
        device_type,
        pixels=pixels,
        points=points,
        ppi=ppi,
        camera_from_centre_cm=from_centre,
        camera_above_screen_cm=above,
        focal_px=_PHONE_FOCAL_PX if device_type == "phone" else _TABLET_FOCAL_PX,
    )
    for name, device_type, pixels, points, ppi, from_centre, above in _SPECS
}


def _check_orientation(orientation):
    orientation = np.asarray(orientation)
    if not np.all(np.isin(orientation, ORIENTATIONS)):
        raise ValueError(
            "orientation must be 1, 2, 3 or 4 (GazeCapture "
            f"screen.json). Received: orientation={orientation}"
        )
    return orientation


def screen_size_points(device, orientation):
    """Screen (width, height) in points as the user sees it.

    Args:
      device: DeviceProfile.
      orientation: int or int array. 1-4 as in `screen.json`.

    Example:

    >>> screen_size_points(DEVICES["iPhone 6"], 3)
    (667.0, 375.0)
    """
    orientation = _check_orientation(orientation)
    portrait = orientation <= 2
    width = np.where(portrait, device.width_pts, device.height_pts)
    height = np.where(portrait, device.height_pts, device.width_pts)
    if width.ndim == 0:
        return float(width), float(height)
    return width, height


def screen_to_camera_cm(device, x_pts, y_pts, orientation):
    """Converts a dot in screen points to `XCam`, `YCam` in cm.

    The dot is first placed on the portrait screen in device coordinates
    (camera at the origin, x right, y up), then the device is turned into the
    user's view: upside down (2) turns it by 180 degrees, landscape 3 (camera
    on the left) by 90 degrees counter-clockwise, landscape 4 (camera on the
    right) by 90 degrees clockwise.

    Args:
      device: DeviceProfile.
      x_pts, y_pts: float or array. dot in points, origin at the top-left of
        the screen as the user sees it, y downwards.
      orientation: int or int array. 1-4 as in `screen.json`.

    Returns:
      (x_cm, y_cm): float64 arrays (or floats), the subject's right and up.

    Example:

    >>> device = DEVICES["iPad Air 2"]
    >>> x, y = screen_to_camera_cm(device, 0.0, 0.0, orientation=3)
    >>> round(float(x), 2), round(float(y), 2)
    (1.07, 7.39)
    """
    orientation = _check_orientation(orientation)
    scale = device.cm_per_point
    u = np.asarray(x_pts, np.float64) * scale  # Along the user's x, in cm.
    v = np.asarray(y_pts, np.float64) * scale  # Along the user's -y, in cm.
    width, height = device.width_cm, device.height_cm
    # The user's screen axes expressed on the portrait screen (cm from its
    # top-left corner, x right, y down).
    portrait_x = np.select(
        [orientation == 1, orientation == 2, orientation == 3],
        [u, width - u, width - v],
        default=v,
    )
    portrait_y = np.select(
        [orientation == 1, orientation == 2, orientation == 3],
        [v, height - v, u],
        default=height - u,
    )
    # Device coordinates: camera at the origin, x right, y up.
    device_x = portrait_x - device.camera_to_left_cm
    device_y = -device.camera_to_top_cm - portrait_y
    # Turn the device into the user's view.
    x_cm = np.select(
        [orientation == 1, orientation == 2, orientation == 3],
        [device_x, -device_x, -device_y],
        default=device_y,
    )
    y_cm = np.select(
        [orientation == 1, orientation == 2, orientation == 3],
        [device_y, -device_y, device_x],
        default=-device_x,
    )
    if x_cm.ndim == 0:
        return float(x_cm), float(y_cm)
    return x_cm, y_cm
