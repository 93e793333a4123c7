"""Tests of the device profiles and of screen points -> camera centimetres."""

import numpy as np
import pytest

from tat_keras.data import devices


def _camera_cm_numpy(device, x_pts, y_pts, orientation):
    """Corner-based re-derivation: the user's top-left screen corner, in cm
    from the camera, plus the dot's offset (x right, y up)."""
    s = device.width_cm / device.width_pts
    w, h = device.width_cm, device.height_cm
    dx, dy = device.camera_to_left_cm, device.camera_to_top_cm
    corner = {1: (-dx, -dy), 2: (dx - w, dy + h), 3: (dy, w - dx), 4: (-dy - h, dx)}[
        orientation
    ]
    return corner[0] + x_pts * s, corner[1] - y_pts * s


@pytest.mark.parametrize("orientation", [1, 2, 3, 4])
@pytest.mark.parametrize("name", sorted(devices.DEVICES))
def test_screen_to_camera_matches_numpy(name, orientation):
    device = devices.DEVICES[name]
    width, height = devices.screen_size_points(device, orientation)
    rng = np.random.default_rng(orientation)
    x_pts = rng.uniform(0, width, 20)
    y_pts = rng.uniform(0, height, 20)
    x_cm, y_cm = devices.screen_to_camera_cm(device, x_pts, y_pts, orientation)
    x_ref, y_ref = _camera_cm_numpy(device, x_pts, y_pts, orientation)
    np.testing.assert_allclose(x_cm, x_ref, atol=1e-9)
    np.testing.assert_allclose(y_cm, y_ref, atol=1e-9)
    # The screen's centre: below the camera in portrait, above it upside down,
    # to the camera's right in landscape 3 and its left in landscape 4.
    cx, cy = devices.screen_to_camera_cm(device, width / 2, height / 2, orientation)
    sign = {1: (None, -1), 2: (None, 1), 3: (1, None), 4: (-1, None)}
    sx, sy = sign[orientation]
    if sx is not None:
        assert np.sign(cx) == sx
    if sy is not None:
        assert np.sign(cy) == sy


def test_screen_to_camera_scalar_and_array_agree():
    device = devices.DEVICES["iPad Air 2"]
    orientation = np.array([1, 2, 3, 4])
    x_cm, y_cm = devices.screen_to_camera_cm(device, 100.0, 50.0, orientation)
    for i, o in enumerate(orientation):
        assert devices.screen_to_camera_cm(device, 100.0, 50.0, int(o)) == (
            pytest.approx(x_cm[i]),
            pytest.approx(y_cm[i]),
        )


def test_screen_to_camera_rejects_bad_orientation():
    with pytest.raises(ValueError, match="orientation must be 1, 2, 3 or 4"):
        devices.screen_to_camera_cm(devices.DEVICES["iPhone 6"], 0, 0, 5)
    with pytest.raises(ValueError, match="Received: orientation=0"):
        devices.screen_size_points(devices.DEVICES["iPhone 6"], 0)


@pytest.mark.parametrize("orientation", [1, 2, 3, 4])
def test_screen_size_points_turns_with_the_device(orientation):
    device = devices.DEVICES["iPhone 5S"]
    width, height = devices.screen_size_points(device, orientation)
    assert (width, height) == ((320.0, 568.0) if orientation <= 2 else (568.0, 320.0))
    widths, heights = devices.screen_size_points(device, np.array([orientation] * 2))
    assert widths.tolist() == [width] * 2 and heights.tolist() == [height] * 2


@pytest.mark.parametrize("name", sorted(devices.DEVICES))
def test_profiles_follow_published_displays(name):
    device = devices.DEVICES[name]
    # Points are whole pixels divided by the scale factor: 1, 2 or 3 pixels
    # per point, and the same density along both axes.
    assert device.device_type in ("phone", "tablet")
    assert device.width_cm / device.width_pts == pytest.approx(
        device.height_cm / device.height_pts, rel=1e-9
    )
    diagonal_inches = np.hypot(device.width_cm, device.height_cm) / 2.54
    low, high = (3.4, 6.0) if device.device_type == "phone" else (7.8, 13.0)
    assert low < diagonal_inches < high
    # The camera lies outside the screen and over its width, except on a
    # notched phone where it sits in the notch.
    assert 0.0 < device.camera_to_left_cm < device.width_cm
    assert -0.5 < device.camera_to_top_cm < 1.6


@pytest.mark.parametrize(
    "name, diagonal",
    [("iPhone 4S", 3.5), ("iPhone 5", 4.0), ("iPhone 6", 4.7), ("iPhone 6 Plus", 5.5),
     ("iPad Air 2", 9.7), ("iPad mini", 7.9)],
)
def test_screen_diagonals_match_the_marketed_size(name, diagonal):
    device = devices.DEVICES[name]
    inches = np.hypot(device.width_cm, device.height_cm) / 2.54
    assert inches == pytest.approx(diagonal, abs=0.06)
