"""From gaze in camera centimetres to a point on the screen, in points and pixels.

The data labels a frame in centimetres from the camera (`XCam` to the user's
right, `YCam` up) and `tat_keras.data.devices.screen_to_camera_cm` maps a dot
in screen points to those centimetres for a device and an orientation, as
GazeCapture's own tooling defines it. This module is its inverse, so that an
estimate in centimetres becomes the point on the screen that the user looks
at: points with the origin at the top-left corner of the screen as the user
sees it (y downwards), and the same in the screen's physical pixels.

Example:

>>> x_pts, y_pts = camera_cm_to_screen_points("iPhone 6", 1.02, -0.85, 1)
>>> round(x_pts, 1), round(y_pts, 1)
(187.5, 0.0)
"""

import numpy as np

from tat_keras.data import devices as devices_lib


def get_device(device):
    """Returns the `DeviceProfile` for a name (or passes a profile through).

    Args:
      device: str or DeviceProfile. a `DeviceName` of `devices.DEVICES`,
        e.g. "iPhone 6".

    Raises:
      ValueError: an unknown name; the message lists the known ones.
    """
    if isinstance(device, devices_lib.DeviceProfile):
        return device
    if device not in devices_lib.DEVICES:
        raise ValueError(
            f"Unknown device. Use one of {sorted(devices_lib.DEVICES)}. "
            f"Received: device={device!r}"
        )
    return devices_lib.DEVICES[device]


def check_orientation(orientation):
    """Returns the orientation as an int, or fails naming the allowed values."""
    if isinstance(orientation, (bool, np.bool_)) or not isinstance(
        orientation, (int, np.integer)
    ) or int(orientation) not in devices_lib.ORIENTATIONS:
        raise ValueError(
            "orientation must be one of 1, 2, 3, 4 (1 portrait, 2 portrait "
            "upside down, 3 landscape with the camera on the left, 4 landscape "
            f"with the camera on the right). Received: orientation={orientation!r}"
        )
    return int(orientation)


def camera_cm_to_screen_points(device, x_cm, y_cm, orientation):
    """Gaze in camera cm to screen points: the inverse of `screen_to_camera_cm`.

    The gaze is first turned from the user's view into device coordinates
    (camera at the origin, x right, y up on the portrait device), then placed
    on the portrait screen and finally read in the user's screen axes.

    Args:
      device: str or DeviceProfile.
      x_cm, y_cm: float or array. gaze from the camera, user's right and up.
      orientation: int. 1-4 as in `screen.json`.

    Returns:
      (x_pts, y_pts): floats (or arrays), origin at the top-left of the
      screen as the user sees it, y downwards; not clipped to the screen.
    """
    device = get_device(device)
    orientation = check_orientation(orientation)
    x = np.asarray(x_cm, np.float64)
    y = np.asarray(y_cm, np.float64)
    # Undo the turn of the device into the user's view.
    device_x, device_y = {1: (x, y), 2: (-x, -y), 3: (y, -x), 4: (-y, x)}[orientation]
    # cm from the top-left corner of the portrait screen, x right, y down.
    portrait_x = device_x + device.camera_to_left_cm
    portrait_y = -device.camera_to_top_cm - device_y
    width, height = device.width_cm, device.height_cm
    u, v = {
        1: (portrait_x, portrait_y),
        2: (width - portrait_x, height - portrait_y),
        3: (portrait_y, width - portrait_x),
        4: (height - portrait_y, portrait_x),
    }[orientation]
    x_pts = u / device.cm_per_point
    y_pts = v / device.cm_per_point
    if x_pts.ndim == 0:
        return float(x_pts), float(y_pts)
    return x_pts, y_pts


def pixels_per_point(device):
    """Physical pixels per screen point of a device (same along both axes)."""
    device = get_device(device)
    return device.width_px / device.width_pts


def screen_size_pixels(device, orientation):
    """Screen (width, height) in physical pixels as the user sees it.

    Example:

    >>> screen_size_pixels("iPhone 6", 3)
    (1334, 750)
    """
    device = get_device(device)
    orientation = check_orientation(orientation)
    width, height = devices_lib.screen_size_points(device, orientation)
    scale = pixels_per_point(device)
    return int(round(width * scale)), int(round(height * scale))


def camera_cm_to_screen_pixels(device, x_cm, y_cm, orientation):
    """Gaze in camera cm to physical screen pixels (same axes as the points).

    Example:

    >>> x_px, y_px = camera_cm_to_screen_pixels("iPhone 6", 1.02, -0.85, 1)
    >>> round(x_px), round(y_px)
    (375, 0)
    """
    x_pts, y_pts = camera_cm_to_screen_points(device, x_cm, y_cm, orientation)
    scale = pixels_per_point(device)
    return x_pts * scale, y_pts * scale
