"""Benchmark: frames per second per core of the crop-resize-encode path.

Measures, in one process (one core), the per-frame work of the `gaze_capture`
builder's workers on 640x480 JPEG frames: decode the JPEG, cut the face and
both eye crops (one face box reaching past the frame edge in four, filled by
repeating the edge pixel), resize them and PNG-encode them. Frames per second
on N workers is about N times this figure.

  python recipes/benchmark_crop.py --image_size=64 \
      --num_frames=300
"""

import os
import tempfile
import time

from absl import app
from absl import flags
import numpy as np
from PIL import Image

from tat_keras import crops as crop_lib
from tat_keras.data.gaze_capture import layout

_IMAGE_SIZE = flags.DEFINE_integer("image_size", 64, "Crop side in pixels.")
_NUM_FRAMES = flags.DEFINE_integer("num_frames", 300, "Frames to process.")
_REPEATS = flags.DEFINE_integer("repeats", 3, "Timed passes; the best counts.")


def _write_frames(folder, num_frames, rng):
    """Camera-like 640x480 JPEG frames: smooth shading plus sensor noise."""
    y, x = np.mgrid[0:480, 0:640].astype(np.float32)
    paths = []
    for i in range(num_frames):
        base = 120 + 60 * np.sin(x / rng.uniform(40, 90)) * np.cos(y / 70.0)
        frame = base[..., None] * np.array([1.0, 0.85, 0.7])
        frame += rng.normal(0, 6, frame.shape)
        path = os.path.join(folder, f"{i:05d}.jpg")
        Image.fromarray(np.clip(frame, 0, 255).astype(np.uint8)).save(path, quality=90)
        paths.append(path)
    return paths


def benchmark(paths, image_size, rng):
    """Returns CPU seconds of this process to decode, crop, resize and encode.

    CPU time, not wall time, so that other processes sharing the cores do
    not lower the per-core figure.
    """
    face_boxes = []
    for i in range(len(paths)):
        x = -40.0 if i % 4 == 0 else rng.uniform(150, 250)  # 1 in 4 past the edge
        face_boxes.append([x, rng.uniform(40, 140), 300.0, 300.0])
    left, right = [170.0, 80.0, 90.0, 90.0], [40.0, 80.0, 90.0, 90.0]
    start = time.process_time()
    for path, face in zip(paths, face_boxes):
        image = layout.decode_jpeg(path)
        crops = crop_lib.crop_frame(image, face, left, right, image_size)
        encoded = [layout.encode_png(c) for c in crops.values()]
        assert all(encoded)
    return time.process_time() - start


def main(argv):
    del argv
    rng = np.random.default_rng(0)
    with tempfile.TemporaryDirectory() as folder:
        paths = _write_frames(folder, _NUM_FRAMES.value, rng)
        jpeg_kb = np.mean([os.path.getsize(p) for p in paths]) / 1024
        seconds = min(
            benchmark(paths, _IMAGE_SIZE.value, rng) for _ in range(_REPEATS.value)
        )
    fps = len(paths) / seconds
    print(
        f"crop-resize-encode, image_size={_IMAGE_SIZE.value}, 640x480 JPEG "
        f"(mean {jpeg_kb:.0f} KB): {fps:.0f} frames/s per core "
        f"({1000 / fps:.2f} ms per frame)"
    )


if __name__ == "__main__":
    app.run(main)
