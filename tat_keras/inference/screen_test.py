import numpy as np
import pytest

from tat_keras.data import devices
from tat_keras.inference import screen


@pytest.mark.parametrize("name", sorted(devices.DEVICES))
@pytest.mark.parametrize("orientation", devices.ORIENTATIONS)
def test_round_trip_against_the_data_forward_mapping(name, orientation):
    device = devices.DEVICES[name]
    width, height = devices.screen_size_points(device, orientation)
    rng = np.random.default_rng(orientation)
    x_pts = rng.uniform(-0.2 * width, 1.2 * width, 50)
    y_pts = rng.uniform(-0.2 * height, 1.2 * height, 50)
    x_cm, y_cm = devices.screen_to_camera_cm(device, x_pts, y_pts, orientation)
    back_x, back_y = screen.camera_cm_to_screen_points(name, x_cm, y_cm, orientation)
    np.testing.assert_allclose(back_x, x_pts, atol=1e-9)
    np.testing.assert_allclose(back_y, y_pts, atol=1e-9)
    # And the other way: cm -> points -> cm.
    cm = rng.uniform(-15, 15, (2, 20))
    pts = screen.camera_cm_to_screen_points(device, cm[0], cm[1], orientation)
    again = devices.screen_to_camera_cm(device, pts[0], pts[1], orientation)
    np.testing.assert_allclose(np.stack(again), cm, atol=1e-9)


@pytest.mark.parametrize("orientation", devices.ORIENTATIONS)
def test_screen_corners_in_pixels(orientation):
    device = devices.DEVICES["iPhone 6"]
    width, height = devices.screen_size_points(device, orientation)
    x_cm, y_cm = devices.screen_to_camera_cm(device, width, height, orientation)
    x_px, y_px = screen.camera_cm_to_screen_pixels("iPhone 6", x_cm, y_cm, orientation)
    assert (round(x_px), round(y_px)) == screen.screen_size_pixels("iPhone 6", orientation)


def test_pixel_resolution_matches_the_point_grid_of_every_profile():
    for device in devices.DEVICES.values():
        # One scale from points to pixels along both axes (the Plus phones
        # render at 3x and scale down by 1.15, hence the tolerance).
        assert device.width_px / device.width_pts == pytest.approx(
            device.height_px / device.height_pts, rel=2e-3)
        assert screen.pixels_per_point(device) == device.width_px / device.width_pts


def test_unknown_device_and_bad_orientation_name_allowed_values():
    with pytest.raises(ValueError, match=r"Unknown device. Use one of \[.*'iPhone 6'"):
        screen.camera_cm_to_screen_points("Pixel 7", 0.0, 0.0, 1)
    for bad in (0, 5, 1.0, "1", True):
        with pytest.raises(ValueError, match="orientation must be one of 1, 2, 3, 4"):
            screen.camera_cm_to_screen_points("iPhone 6", 0.0, 0.0, bad)
