r"""Runs the gaze estimator over camera frames: one CSV row per frame, pictures, an animation.

Usage:

    python recipes/estimate.py --model=runs/demo/model_int8.tflite \
        --frames=DIR --device="iPhone 6" --orientation=1 --output=gaze.csv \
        [--draw_dir=runs/estimate/drawn]

    # A recording in GazeCapture's layout: device and orientations from its
    # info.json and screen.json, the true dots from dotInfo.json.
    python recipes/estimate.py --model=runs/demo/model.keras \
        --frames=data/demo/raw/00030 --output=runs/estimate/gaze.csv --max_frames=10

    # A video file (read with OpenCV; timestamps from its frame rate).
    python recipes/estimate.py --model=runs/demo/model_int8.tflite \
        --video=clip.mp4 --device="iPhone 6" --orientation=1 --output=gaze.csv

    # An animation of one test recording (GIF or MP4): docs/estimator_demo.gif.
    python recipes/estimate.py --model=runs/demo/model_int8.tflite \
        --frames=data/demo/raw/00030 --output=runs/demo/estimate/animation.csv \
        --animation=docs/estimator_demo.gif --animation_height=200 --animation_every=2

`--model` is a `.keras` GazeNet or an exported `.tflite` file (float or
int8), recognised by its content; any other file is refused with what was
expected. `--frames` is a folder of images (`.jpg`, `.jpeg`, `.png`, read in
name order) or a recording folder holding `frames/` and `info.json`;
`--video` is a video file. Timestamps are the frame index over
`--frame_rate` (for a video, its own frame rate unless the flag is given).
`--detector` is MediaPipe's face detector and mesh (the default) or OpenCV's
Haar cascades. Each row holds the frame, its status (`face`, `no_face`, or
`unreadable`: a frame that cannot be decoded is marked and the run goes
on), the face box, the gaze in cm from the camera, the point on the screen
in points and pixels, the smoothed point (One Euro filter, `--min_cutoff`
and `--beta`; reset when the face is lost) and, for a recording, the dot the
subject looked at. `--draw_dir` writes, per readable frame, the frame with
its face box, eye boxes and eye contours beside the device in its
orientation with the estimated (red), smoothed (blue) and true (green)
points; `--animation` writes the same pictures as one GIF or MP4
(`--animation_height`, `--animation_every`, `--animation_colors` keep a GIF
small).
"""

import csv
import os
import sys

from absl import app
from absl import flags

from tat_keras import model_files
from tat_keras import smoothing
from tat_keras.data import devices
from tat_keras.inference import detector as detector_lib
from tat_keras.inference import estimator as estimator_lib
from tat_keras.inference import frame_sources
from tat_keras.inference import pictures
from tat_keras.inference import screen

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

flags.DEFINE_string("model", None, "A .keras GazeNet or an exported .tflite file.")
flags.DEFINE_string("frames", None, "Folder of frames, or a GazeCapture recording folder.")
flags.DEFINE_string("video", None, "A video file, read with OpenCV (instead of --frames).")
flags.DEFINE_string("device", None, f"Device name, one of {sorted(devices.DEVICES)}; "
                    "default: the recording's info.json DeviceName.")
flags.DEFINE_integer("orientation", None, "1-4 as in screen.json; default: the "
                     "recording's screen.json Orientation per frame.")
flags.DEFINE_string("output", None, "CSV file, one row per frame.")
flags.DEFINE_enum("detector", detector_lib.DEFAULT_DETECTOR, sorted(detector_lib.DETECTORS),
                  "Face and eye detector.")
flags.DEFINE_string("draw_dir", None, "Folder for pictures of each frame and its point.")
flags.DEFINE_string("animation", None, "Write the pictures as one animation: a .gif or .mp4 file.")
flags.DEFINE_integer("animation_height", 240, "Height of the animation in pixels.")
flags.DEFINE_integer("animation_colors", 64, "Palette size of a GIF animation (2-256).")
flags.DEFINE_integer("animation_every", 1, "Animate every n-th frame (shown n times as "
                     "long: the animation keeps real time).")
flags.DEFINE_float("frame_rate", 15.0, "Frames per second, for the timestamps and the "
                   "animation; a video's own rate unless given.")
flags.DEFINE_integer("max_frames", None, "Use only the first frames.")
flags.DEFINE_float("min_cutoff", estimator_lib.DEFAULT_MIN_CUTOFF, "One Euro min cutoff (Hz).")
flags.DEFINE_float("beta", estimator_lib.DEFAULT_BETA, "One Euro beta (Hz per cm/s).")
flags.mark_flags_as_required(["model", "output"])
FLAGS = flags.FLAGS

COLUMNS = (
    "frame", "status", "face_found", "face_x", "face_y", "face_w", "face_h", "gaze_x_cm",
    "gaze_y_cm", "screen_x_pts", "screen_y_pts", "screen_x_px", "screen_y_px",
    "smoothed_x_pts", "smoothed_y_pts", "true_x_pts", "true_y_pts",
)


def fail(message):
    print(f"error: {message}", file=sys.stderr)
    return 1


def _values(pair, count=2):
    return [""] * count if pair is None else [f"{v:.4f}" for v in pair]


def _row(name, result, true_point):
    status = "face" if result.face_found else "no_face"
    return [name, status, int(result.face_found), *_values(result.face_box, 4),
            *_values(result.gaze_cm), *_values(result.screen_points),
            *_values(result.screen_pixels), *_values(result.smoothed_points),
            *_values(true_point)]


def _unreadable_row(name):
    return [name, "unreadable", ""] + [""] * (len(COLUMNS) - 3)


def _source():
    """(frames, total or None, device, orientations, true_cm, frame_rate)."""
    if FLAGS.video is not None:
        video = frame_sources.VideoFrames(FLAGS.video)
        rate = FLAGS.frame_rate if FLAGS["frame_rate"].present or not video.frame_rate else (
            video.frame_rate)
        return video, None, None, None, None, rate
    folder = frame_sources.list_frames(FLAGS.frames)
    paths = folder.paths[: FLAGS.max_frames] if FLAGS.max_frames else folder.paths
    if not paths:
        raise ValueError(f"no .jpg or .png frames in {FLAGS.frames}")
    return (frame_sources.read_images(paths), len(paths), folder.device,
            folder.orientations, folder.true_cm, FLAGS.frame_rate)


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"Unexpected arguments: {argv[1:]}")
    if (FLAGS.frames is None) == (FLAGS.video is None):
        return fail("pass either --frames=DIR (a folder of frames or a recording) or "
                    "--video=FILE.")
    try:
        if FLAGS.frame_rate <= 0:
            raise ValueError(f"--frame_rate must be positive. Received: {FLAGS.frame_rate}")
        if FLAGS.animation:
            pictures.check_animation_path(FLAGS.animation)
            if not 2 <= FLAGS.animation_colors <= 256:
                raise ValueError("--animation_colors must lie in [2, 256]. "
                                 f"Received: {FLAGS.animation_colors}")
            if FLAGS.animation_every < 1:
                raise ValueError("--animation_every must be at least 1. "
                                 f"Received: {FLAGS.animation_every}")
        if FLAGS.max_frames is not None and FLAGS.max_frames < 1:
            raise ValueError(f"--max_frames must be at least 1. Received: {FLAGS.max_frames}")
        frames, total, device, orientations, true_cm, frame_rate = _source()
        device = FLAGS.device or device
        if device is None:
            raise ValueError(f"--device is needed. Use one of {sorted(devices.DEVICES)}")
        screen.get_device(device)
        if FLAGS.orientation is not None or orientations is None:
            if FLAGS.orientation is None:
                raise ValueError("--orientation is needed: one of 1, 2, 3, 4")
            orientations = None
            orientation = screen.check_orientation(FLAGS.orientation)
        elif len(orientations) < total:
            raise ValueError(f"screen.json has {len(orientations)} orientations for "
                             f"{total} frames; pass --orientation.")
        smoother = smoothing.OneEuroFilter(FLAGS.min_cutoff, FLAGS.beta)
        kind = model_files.model_kind(FLAGS.model)
    except (FileNotFoundError, ValueError) as error:
        return fail(str(error))
    detector = detector_lib.make_detector(FLAGS.detector)
    load = {"tflite": estimator_lib.GazeEstimator.from_tflite,
            "keras": estimator_lib.GazeEstimator.from_keras}[kind]
    estimator = load(FLAGS.model, smoother=smoother, detector=detector)
    os.makedirs(os.path.dirname(os.path.abspath(FLAGS.output)), exist_ok=True)
    if FLAGS.draw_dir:
        os.makedirs(FLAGS.draw_dir, exist_ok=True)
    found = unreadable = count = 0
    animation = []
    with open(FLAGS.output, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(COLUMNS)
        for frame in frames:
            if FLAGS.max_frames and frame.index >= FLAGS.max_frames:
                break
            count += 1
            if orientations is not None:
                orientation = orientations[frame.index]
            result = None
            if frame.image is not None:
                try:
                    result = estimator.estimate(frame.image, device=device, orientation=orientation,
                                                timestamp=frame.index / frame_rate)
                except ValueError as error:  # Decoded, but not a usable frame.
                    frame.error = str(error)
            if result is None:
                writer.writerow(_unreadable_row(frame.name))
                unreadable += 1
                print(f"{frame.name}: unreadable ({frame.error})")
                continue
            true_point = None
            if true_cm is not None:
                true_point = screen.camera_cm_to_screen_points(
                    device, *true_cm[frame.index], orientation)
            writer.writerow(_row(frame.name, result, true_point))
            f.flush()  # Rows written so far survive an interruption.
            found += result.face_found
            if result.face_found:
                print(f"{frame.name}: screen point ({result.screen_points[0]:.1f}, "
                      f"{result.screen_points[1]:.1f}) pts, smoothed "
                      f"({result.smoothed_points[0]:.1f}, {result.smoothed_points[1]:.1f}) pts")
            else:
                print(f"{frame.name}: no face")
            animate = FLAGS.animation and frame.index % FLAGS.animation_every == 0
            if FLAGS.draw_dir or animate:
                picture = pictures.draw_estimate(frame.image, result, device, orientation,
                                                 true_point)
                if FLAGS.draw_dir:
                    stem = os.path.splitext(frame.name)[0]
                    picture.save(os.path.join(FLAGS.draw_dir, f"{stem}.png"))
                if animate:
                    scale = FLAGS.animation_height / picture.height
                    animation.append(picture.resize(
                        (round(picture.width * scale), FLAGS.animation_height)))
    print(f"{found} of {count} frames with a face, {unreadable} unreadable ({device}); "
          f"rows in {FLAGS.output}")
    if FLAGS.animation:
        if not animation:
            return fail(f"no readable frame to animate; {FLAGS.animation} not written.")
        pictures.write_animation(animation, FLAGS.animation, frame_rate / FLAGS.animation_every,
                                 colors=FLAGS.animation_colors)
        print(f"animation: {FLAGS.animation} ({len(animation)} frames, "
              f"{os.path.getsize(FLAGS.animation) / 1e6:.2f} MB)")
    return 0


if __name__ == "__main__":
    app.run(main)
