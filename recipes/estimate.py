r"""Runs the gaze estimator over camera frames: one CSV row per frame.

Usage:

    python recipes/estimate.py --model=runs/quick/model_int8.tflite \
        --frames=DIR --device="iPhone 6" --orientation=1 --output=gaze.csv \
        [--draw_dir=runs/estimate/drawn]

    # A recording in GazeCapture's layout: device and orientations from its
    # info.json and screen.json.
    python recipes/estimate.py --model=runs/quick/model.keras \
        --frames=data/quick/raw/00000 --output=runs/estimate/gaze.csv --max_frames=10

`--model` is a `.keras` GazeNet or an exported `.tflite` file (float or
int8). `--frames` is a folder of images (`.jpg`, `.jpeg`, `.png`, read in
name order) or a recording folder holding `frames/` and `info.json`.
Timestamps are the frame index over `--frame_rate`. Each row holds the
frame, whether a face was found, the face box, the gaze in cm from the
camera, the point on the screen in points and pixels, and the smoothed
point (One Euro filter, `--min_cutoff` and `--beta`; reset when the face is
lost). `--draw_dir` writes, per frame, the frame with its face and eye boxes
beside a picture of the screen with the raw (red) and smoothed (blue)
points.
"""

import csv
import json
import os
import sys

from absl import app
from absl import flags
import numpy as np
from PIL import Image
from PIL import ImageDraw

from tat_keras import smoothing
from tat_keras.data import devices
from tat_keras.inference import estimator as estimator_lib
from tat_keras.inference import screen

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

flags.DEFINE_string("model", None, "A .keras GazeNet or an exported .tflite file.")
flags.DEFINE_string("frames", None, "Folder of frames, or a GazeCapture recording folder.")
flags.DEFINE_string("device", None, f"Device name, one of {sorted(devices.DEVICES)}; "
                    "default: the recording's info.json DeviceName.")
flags.DEFINE_integer("orientation", None, "1-4 as in screen.json; default: the "
                     "recording's screen.json Orientation per frame.")
flags.DEFINE_string("output", None, "CSV file, one row per frame.")
flags.DEFINE_string("draw_dir", None, "Folder for pictures of each frame and its point.")
flags.DEFINE_float("frame_rate", 15.0, "Frames per second, for the timestamps.")
flags.DEFINE_integer("max_frames", None, "Use only the first frames.")
flags.DEFINE_float("min_cutoff", estimator_lib.DEFAULT_MIN_CUTOFF, "One Euro min cutoff (Hz).")
flags.DEFINE_float("beta", estimator_lib.DEFAULT_BETA, "One Euro beta (Hz per cm/s).")
flags.mark_flags_as_required(["model", "frames", "output"])
FLAGS = flags.FLAGS

_IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png")
COLUMNS = (
    "frame", "face_found", "face_x", "face_y", "face_w", "face_h", "gaze_x_cm",
    "gaze_y_cm", "screen_x_pts", "screen_y_pts", "screen_x_px", "screen_y_px",
    "smoothed_x_pts", "smoothed_y_pts",
)


def list_frames(folder):
    """(paths, device or None, orientations or None) of a folder of frames."""
    device = orientations = None
    if os.path.isdir(os.path.join(folder, "frames")):
        if os.path.isfile(os.path.join(folder, "info.json")):
            with open(os.path.join(folder, "info.json")) as f:
                device = json.load(f).get("DeviceName")
        if os.path.isfile(os.path.join(folder, "screen.json")):
            with open(os.path.join(folder, "screen.json")) as f:
                orientations = [int(o) for o in json.load(f)["Orientation"]]
        folder = os.path.join(folder, "frames")
    names = sorted(n for n in os.listdir(folder) if n.lower().endswith(_IMAGE_EXTENSIONS))
    return [os.path.join(folder, n) for n in names], device, orientations


def draw(image, result, device, orientation, height=480):
    """The frame with its boxes beside the screen with the raw and smoothed points."""
    picture = Image.fromarray(image)
    pen = ImageDraw.Draw(picture)
    if result.face_found:
        x, y, w, h = result.face_box
        pen.rectangle([x, y, x + w, y + h], outline=(0, 255, 0), width=3)
        for box in (result.left_eye_box, result.right_eye_box):
            ex, ey, ew, eh = box[0] + x, box[1] + y, box[2], box[3]
            pen.rectangle([ex, ey, ex + ew, ey + eh], outline=(255, 255, 0), width=2)
    else:
        pen.text((10, 10), "no face", fill=(255, 0, 0))
    picture = picture.resize((int(picture.width * height / picture.height), height))
    width_pts, height_pts = devices.screen_size_points(screen.get_device(device), orientation)
    scale = 0.9 * height / max(width_pts, height_pts)
    panel = Image.new("RGB", (int(width_pts * scale) + 40, height), (40, 40, 40))
    pen = ImageDraw.Draw(panel)
    left, top = 20, (height - height_pts * scale) / 2
    pen.rectangle([left, top, left + width_pts * scale, top + height_pts * scale],
                  fill=(235, 235, 235))
    for point, colour in ((result.screen_points, (220, 30, 30)),
                          (result.smoothed_points, (30, 60, 220))):
        if point is not None:
            px = left + np.clip(point[0], 0, width_pts) * scale
            py = top + np.clip(point[1], 0, height_pts) * scale
            pen.ellipse([px - 7, py - 7, px + 7, py + 7], fill=colour)
    both = Image.new("RGB", (picture.width + panel.width, height))
    both.paste(picture, (0, 0))
    both.paste(panel, (picture.width, 0))
    return both


def _row(index, result):
    def values(pair, count=2):
        return [""] * count if pair is None else [f"{v:.4f}" for v in pair]

    return [index, int(result.face_found), *values(result.face_box, 4), *values(result.gaze_cm),
            *values(result.screen_points), *values(result.screen_pixels),
            *values(result.smoothed_points)]


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"Unexpected arguments: {argv[1:]}")
    if not os.path.isdir(FLAGS.frames):
        print(f"error: no folder of frames at {FLAGS.frames}", file=sys.stderr)
        return 1
    paths, device, orientations = list_frames(FLAGS.frames)
    device = FLAGS.device or device
    if FLAGS.max_frames:
        paths = paths[: FLAGS.max_frames]
    try:
        if device is None:
            raise ValueError(f"--device is needed. Use one of {sorted(devices.DEVICES)}")
        screen.get_device(device)
        if FLAGS.orientation is not None or orientations is None:
            if FLAGS.orientation is None:
                raise ValueError("--orientation is needed: one of 1, 2, 3, 4")
            orientations = [screen.check_orientation(FLAGS.orientation)] * len(paths)
        if FLAGS.frame_rate <= 0:
            raise ValueError(f"--frame_rate must be positive. Received: {FLAGS.frame_rate}")
        smoother = smoothing.OneEuroFilter(FLAGS.min_cutoff, FLAGS.beta)
    except ValueError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    if not paths:
        print(f"error: no .jpg or .png frames in {FLAGS.frames}", file=sys.stderr)
        return 1
    if FLAGS.model.endswith(".tflite"):
        estimator = estimator_lib.GazeEstimator.from_tflite(FLAGS.model, smoother=smoother)
    else:
        estimator = estimator_lib.GazeEstimator.from_keras(FLAGS.model, smoother=smoother)
    os.makedirs(os.path.dirname(os.path.abspath(FLAGS.output)), exist_ok=True)
    if FLAGS.draw_dir:
        os.makedirs(FLAGS.draw_dir, exist_ok=True)
    found = 0
    with open(FLAGS.output, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(COLUMNS)
        for index, path in enumerate(paths):
            image = np.asarray(Image.open(path).convert("RGB"))
            orientation = orientations[index]
            result = estimator.estimate(image, device=device, orientation=orientation,
                                        timestamp=index / FLAGS.frame_rate)
            writer.writerow(_row(index, result))
            f.flush()  # Rows written so far survive an interruption.
            found += result.face_found
            name = os.path.basename(path)
            if result.face_found:
                print(f"{name}: screen point ({result.screen_points[0]:.1f}, "
                      f"{result.screen_points[1]:.1f}) pts, smoothed "
                      f"({result.smoothed_points[0]:.1f}, {result.smoothed_points[1]:.1f}) pts")
            else:
                print(f"{name}: no face")
            if FLAGS.draw_dir:
                stem = os.path.splitext(name)[0]
                draw(image, result, device, orientation).save(
                    os.path.join(FLAGS.draw_dir, f"{stem}.png"))
    print(f"{found} of {len(paths)} frames with a face ({device}); rows in {FLAGS.output}")
    return 0


if __name__ == "__main__":
    app.run(main)
