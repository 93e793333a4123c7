import numpy as np
import pytest
from PIL import Image

from tat_keras.data import devices
from tat_keras.inference import estimator
from tat_keras.inference import pictures
from tat_keras.inference import screen


def _colour_centre(picture, colour, tolerance=12):
    pixels = np.asarray(picture).astype(int)
    mask = np.all(np.abs(pixels - np.array(colour)) <= tolerance, axis=-1)
    ys, xs = np.nonzero(mask)
    return (xs.mean(), ys.mean()) if len(xs) else None


def _result(face_found=True):
    if not face_found:
        return estimator.GazeResult(face_found=False, timestamp=0.0)
    return estimator.GazeResult(
        face_found=True, timestamp=0.0, face_box=(200.0, 100.0, 240.0, 240.0),
        left_eye_box=(140.0, 60.0, 60.0, 60.0), right_eye_box=(40.0, 60.0, 60.0, 60.0),
        gaze_cm=(0.0, -5.0), screen_points=(100.0, 200.0), screen_pixels=(200.0, 400.0),
        smoothed_cm=(0.0, -5.0), smoothed_points=(250.0, 500.0),
        eye_landmarks=np.array([[[360.0, 190.0]] * 16, [[270.0, 190.0]] * 16]))


def test_draw_frame_puts_the_boxes_and_contours_where_the_result_says():
    picture = pictures.draw_frame(np.zeros((480, 640, 3), np.uint8), _result(), height=240)
    assert picture.size == (320, 240)
    # Face box (green) centred on (320, 220) / 2; eye contour points at half scale.
    x, y = _colour_centre(picture, pictures.COLOURS["face"])
    assert abs(x - 160) < 2 and abs(y - 110) < 2
    pixels = np.asarray(picture)
    assert tuple(pixels[95, 180]) == pictures.COLOURS["landmark"]
    assert tuple(pixels[95, 135]) == pictures.COLOURS["landmark"]
    blank = pictures.draw_frame(np.zeros((480, 640, 3), np.uint8), _result(False), height=240)
    assert _colour_centre(blank, pictures.COLOURS["face"]) is None


@pytest.mark.parametrize("orientation", [1, 2, 3, 4])
def test_draw_screen_places_points_and_camera_by_the_screen_mapping(orientation):
    device = devices.DEVICES["iPhone 6"]
    width, height = devices.screen_size_points(device, orientation)
    raw = (0.25 * width, 0.75 * height)
    panel = pictures.draw_screen(device, orientation, 480, raw=raw)
    panel = panel.crop((0, 0, panel.width, 480 - 30))  # Above the legend.
    screen_box = np.argwhere(np.all(np.asarray(panel) == pictures.COLOURS["screen"], axis=-1))
    (top, left), (bottom, right) = screen_box.min(axis=0), screen_box.max(axis=0)
    # The screen keeps its aspect in this orientation.
    assert (right - left) / (bottom - top) == pytest.approx(width / height, rel=0.03)
    x, y = _colour_centre(panel, pictures.COLOURS["raw"])
    assert x == pytest.approx(left + 0.25 * (right - left), abs=2)
    assert y == pytest.approx(top + 0.75 * (bottom - top), abs=2)
    # The camera (dark dot) sits on the side the mapping puts it.
    camera = screen.camera_cm_to_screen_points(device, 0.0, 0.0, orientation)
    side = {1: camera[1] < 0, 2: camera[1] > height, 3: camera[0] < 0, 4: camera[0] > width}
    assert side[orientation]


def test_draw_estimate_puts_frame_and_device_side_by_side():
    image = np.zeros((480, 640, 3), np.uint8)
    picture = pictures.draw_estimate(image, _result(), "iPad Air 2", 3, true_point=(10.0, 10.0))
    frame = pictures.draw_frame(image, _result(), 480)
    assert picture.height == 480 and picture.width > frame.width
    assert _colour_centre(picture.crop((frame.width, 0, picture.width, 440)),
                          pictures.COLOURS["true"]) is not None


@pytest.mark.parametrize("extension", [".gif", ".mp4"])
def test_write_animation(tmp_path, extension):
    frames = [Image.new("RGB", (64, 48), (40 * i, 0, 0)) for i in range(5)]
    path = pictures.write_animation(frames, str(tmp_path / f"a{extension}"), frame_rate=10)
    if extension == ".gif":
        with Image.open(path) as gif:
            assert gif.n_frames == 5 and gif.size == (64, 48) and gif.info["duration"] == 100
            gif.seek(3)
            assert abs(np.asarray(gif.convert("RGB"))[..., 0].mean() - 120) < 4
    else:
        import cv2

        capture = cv2.VideoCapture(path)
        assert capture.get(cv2.CAP_PROP_FRAME_COUNT) == 5
        assert capture.get(cv2.CAP_PROP_FPS) == pytest.approx(10)
        capture.release()


def test_write_animation_refuses_bad_arguments(tmp_path):
    with pytest.raises(ValueError, match=r"written as .gif or .mp4.*Received: '.*a.avi'"):
        pictures.write_animation([Image.new("RGB", (8, 8))], str(tmp_path / "a.avi"), 10)
    with pytest.raises(ValueError, match="frame_rate must be positive. Received: frame_rate=0"):
        pictures.write_animation([Image.new("RGB", (8, 8))], str(tmp_path / "a.gif"), 0)
    with pytest.raises(ValueError, match=r"colors must be an integer in \[2, 256\]. Received: colors=1"):
        pictures.write_animation([Image.new("RGB", (8, 8))], str(tmp_path / "a.gif"), 10, colors=1)
    with pytest.raises(ValueError, match="No pictures to animate"):
        pictures.write_animation([], str(tmp_path / "a.gif"), 10)


def test_a_gif_keeps_the_drawings_colours_exactly(tmp_path):
    noise = np.random.default_rng(0).integers(0, 256, (480, 640, 3), dtype=np.uint8)
    frames = [pictures.draw_estimate(noise, _result(), "iPhone 6", 1, (200.0, 100.0), height=200)
              for _ in range(3)]
    path = pictures.write_animation(frames, str(tmp_path / "a.gif"), 15, colors=32)
    with Image.open(path) as gif:
        pixels = np.asarray(gif.convert("RGB"))
    for key in ("raw", "smoothed", "true", "face", "eye"):
        drawn = np.all(np.asarray(frames[0]) == pictures.COLOURS[key], axis=-1)
        assert np.all(pixels[drawn] == pictures.COLOURS[key]), key
