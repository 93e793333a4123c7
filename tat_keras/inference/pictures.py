"""Pictures of what the estimator saw and where it put the gaze, and animations of them.

`draw_estimate` puts two panels side by side:

- the camera frame with the face box (green), the eye boxes (yellow) and
  the detector's eye contours (cyan dots), or "no face";
- the device drawn in the orientation the user holds it (body, screen and
  front camera) with the estimated point (red), the smoothed point (blue)
  and, where it is known, the dot the subject looked at (green ring).
  Points off the screen are drawn on its edge, hollow.

`write_animation` turns a sequence of such pictures into an animated GIF
(Pillow) or an MP4 (OpenCV). Importing this module loads neither
TensorFlow nor Keras.

Example:

>>> import numpy as np
>>> from tat_keras.inference import estimator
>>> result = estimator.GazeResult(face_found=False, timestamp=0.0)
>>> draw_estimate(np.zeros((480, 640, 3), np.uint8), result, "iPhone 6", 1).size[1]
480
"""

import os

import numpy as np
from PIL import Image
from PIL import ImageDraw

from tat_keras.data import devices as devices_lib
from tat_keras.inference import screen

COLOURS = {
    "face": (0, 220, 0),
    "eye": (255, 220, 0),
    "landmark": (0, 230, 255),
    "raw": (225, 30, 30),
    "smoothed": (30, 90, 235),
    "true": (0, 170, 60),
    "body": (45, 45, 50),
    "screen": (236, 236, 236),
    "background": (20, 20, 24),
    "text": (235, 235, 235),
}
ANIMATION_FORMATS = (".gif", ".mp4")


def draw_frame(image, result, height=480):
    """The camera frame with the result's face and eye boxes and eye contours.

    Args:
      image: uint8 RGB array (H, W, 3).
      result: `estimator.GazeResult`.
      height: int. height of the picture in pixels.

    Returns:
      A PIL image `height` pixels high.
    """
    picture = Image.fromarray(image)
    scale = height / picture.height
    picture = picture.resize((max(1, round(picture.width * scale)), height), Image.BILINEAR)
    pen = ImageDraw.Draw(picture)
    line = max(2, round(height / 240))
    if not result.face_found:
        pen.text((10, 10), "no face", fill=COLOURS["raw"])
        return picture
    x, y, w, h = (v * scale for v in result.face_box)
    pen.rectangle([x, y, x + w, y + h], outline=COLOURS["face"], width=line)
    for box in (result.left_eye_box, result.right_eye_box):
        ex, ey, ew, eh = (v * scale for v in box)
        pen.rectangle([x + ex, y + ey, x + ex + ew, y + ey + eh], outline=COLOURS["eye"], width=line)
    if result.eye_landmarks is not None:
        radius = max(1.0, height / 400)
        for px, py in np.asarray(result.eye_landmarks).reshape(-1, 2) * scale:
            pen.ellipse([px - radius, py - radius, px + radius, py + radius], fill=COLOURS["landmark"])
    return picture


def _marker(pen, point, size, colour, scale, origin, ring=False):
    """A dot (or a ring) at a point in screen points, on the screen's edge when off it."""
    (width, height), (x, y) = size, point
    inside = 0 <= x <= width and 0 <= y <= height
    px = origin[0] + np.clip(x, 0, width) * scale
    py = origin[1] + np.clip(y, 0, height) * scale
    radius = 8
    box = [px - radius, py - radius, px + radius, py + radius]
    if ring:
        pen.ellipse([box[0] - 3, box[1] - 3, box[2] + 3, box[3] + 3], outline=colour, width=3)
    elif inside:
        pen.ellipse(box, fill=colour)
    else:
        pen.ellipse(box, outline=colour, width=3)


def draw_screen(device, orientation, height=480, raw=None, smoothed=None, true=None):
    """The device as the user holds it, with points on its screen.

    Args:
      device: str or `devices.DeviceProfile`.
      orientation: int. 1-4 as in `screen.json`.
      height: int. height of the picture in pixels.
      raw, smoothed, true: (x, y) in screen points (origin at the top-left
        of the screen as the user sees it) or None.

    Returns:
      A PIL image `height` pixels high.
    """
    device = screen.get_device(device)
    orientation = screen.check_orientation(orientation)
    width_pts, height_pts = devices_lib.screen_size_points(device, orientation)
    camera = screen.camera_cm_to_screen_points(device, 0.0, 0.0, orientation)
    # The body: the screen and the camera with a margin, in screen points.
    margin = 0.06 * max(width_pts, height_pts)
    left = min(0.0, camera[0]) - margin
    top = min(0.0, camera[1]) - margin
    right = max(width_pts, camera[0]) + margin
    bottom = max(height_pts, camera[1]) + margin
    legend = 28
    scale = min((height - 2 * 12 - legend) / (bottom - top), 1.2 * height / (right - left))
    panel_width = int(round((right - left) * scale)) + 2 * 16
    panel = Image.new("RGB", (panel_width, height), COLOURS["background"])
    pen = ImageDraw.Draw(panel)
    origin = (16 - left * scale, 12 - top * scale)  # Pixel of screen point (0, 0).

    def pixel(x, y):
        return origin[0] + x * scale, origin[1] + y * scale

    pen.rounded_rectangle([*pixel(left, top), *pixel(right, bottom)],
                          radius=int(margin * scale), fill=COLOURS["body"])
    pen.rectangle([*pixel(0, 0), *pixel(width_pts, height_pts)], fill=COLOURS["screen"])
    cx, cy = pixel(*camera)
    pen.ellipse([cx - 4, cy - 4, cx + 4, cy + 4], fill=(10, 10, 10), outline=(90, 90, 90))
    size = (width_pts, height_pts)
    if true is not None:
        _marker(pen, true, size, COLOURS["true"], scale, origin, ring=True)
    if raw is not None:
        _marker(pen, raw, size, COLOURS["raw"], scale, origin)
    if smoothed is not None:
        _marker(pen, smoothed, size, COLOURS["smoothed"], scale, origin)
    x = 16
    for label, key in (("estimate", "raw"), ("smoothed", "smoothed"), ("true dot", "true")):
        y = height - legend + 8
        if key == "true":
            pen.ellipse([x, y, x + 10, y + 10], outline=COLOURS[key], width=2)
        else:
            pen.ellipse([x, y, x + 10, y + 10], fill=COLOURS[key])
        pen.text((x + 14, y - 1), label, fill=COLOURS["text"])
        x += 14 + int(pen.textlength(label)) + 12
    return panel


def draw_estimate(image, result, device, orientation, true_point=None, height=480):
    """The frame with its boxes beside the device with the estimated points.

    Args:
      image: uint8 RGB array (H, W, 3).
      result: `estimator.GazeResult` of that frame.
      device: str or `devices.DeviceProfile`.
      orientation: int. 1-4.
      true_point: (x, y) in screen points or None. the dot looked at.
      height: int. height of the picture in pixels.

    Returns:
      A PIL image.
    """
    frame = draw_frame(image, result, height)
    panel = draw_screen(device, orientation, height, raw=result.screen_points,
                        smoothed=result.smoothed_points, true=true_point)
    both = Image.new("RGB", (frame.width + panel.width, height), COLOURS["background"])
    both.paste(frame, (0, 0))
    both.paste(panel, (frame.width, 0))
    return both


def check_animation_path(path):
    """Fails unless `path` ends in one of `ANIMATION_FORMATS`; returns the extension."""
    extension = os.path.splitext(path)[1].lower()
    if extension not in ANIMATION_FORMATS:
        raise ValueError(
            f"An animation is written as {' or '.join(ANIMATION_FORMATS)}; name the "
            f"file accordingly. Received: {path!r}"
        )
    return extension


def _shared_palette(pictures, colors, samples=6):
    """A palette for all pictures: the drawing's own colours, exactly, a few
    greys, and `colors` less those taken from a few pictures spread over the
    sequence."""
    picked = [pictures[i] for i in np.linspace(0, len(pictures) - 1, min(samples, len(pictures)))
              .round().astype(int)]
    width, height = picked[0].size
    mosaic = Image.new("RGB", (width, height * len(picked)))
    for k, picture in enumerate(picked):
        mosaic.paste(picture.convert("RGB"), (0, k * height))
    # Greys too, for the edges that resizing blends between the drawing's colours.
    fixed = sorted(set(COLOURS.values()) | {(g, g, g) for g in range(0, 256, 32)})
    learned = max(2, colors - len(fixed))
    entries = mosaic.quantize(colors=learned, method=Image.Quantize.MEDIANCUT).getpalette()
    palette = Image.new("P", (1, 1))
    palette.putpalette(entries[: 3 * learned] + [v for colour in fixed for v in colour])
    return palette


def write_animation(pictures, path, frame_rate, colors=64):
    """Writes pictures of one size as an animated GIF or an MP4.

    A GIF shares one palette of `colors` entries over all pictures, without
    dithering: camera noise then costs few bytes, and the file stays small.

    Args:
      pictures: sequence of PIL images (RGB), all of the first one's size.
      path: str. ends in `.gif` (Pillow, loops) or `.mp4` (OpenCV, mp4v).
      frame_rate: float. pictures per second.
      colors: int. palette size of a GIF, 2-256.

    Returns:
      `path`.
    """
    extension = check_animation_path(path)
    if not frame_rate > 0:
        raise ValueError(f"frame_rate must be positive. Received: frame_rate={frame_rate!r}")
    if not (isinstance(colors, int) and 2 <= colors <= 256):
        raise ValueError(f"colors must be an integer in [2, 256]. Received: colors={colors!r}")
    pictures = list(pictures)
    if not pictures:
        raise ValueError("No pictures to animate: the source gave no readable frame.")
    size = pictures[0].size
    pictures = [p if p.size == size else p.resize(size, Image.BILINEAR) for p in pictures]
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    if extension == ".gif":
        palette = _shared_palette(pictures, colors)
        frames = [p.convert("RGB").quantize(palette=palette, dither=Image.Dither.NONE)
                  for p in pictures]
        # GIF counts time in hundredths of a second.
        frames[0].save(path, save_all=True, append_images=frames[1:],
                       duration=10 * max(1, round(100 / frame_rate)), loop=0, optimize=True)
        return path
    import cv2

    writer = cv2.VideoWriter(path, cv2.VideoWriter_fourcc(*"mp4v"), float(frame_rate), size)
    if not writer.isOpened():
        raise ValueError(f"OpenCV cannot write an MP4 at {path}; write a .gif instead.")
    for picture in pictures:
        writer.write(cv2.cvtColor(np.asarray(picture.convert("RGB")), cv2.COLOR_RGB2BGR))
    writer.release()
    return path
