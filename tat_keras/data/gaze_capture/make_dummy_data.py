"""Writes `dummy_data/`, the tiny raw recordings of the TFDS builder test.

Uses the synthetic renderer when it is available, so the test runs on the
same kind of frames the project trains on; three recordings (one per split)
of a few frames each, JPEG quality kept low so the files stay small.

  python tat_keras/data/gaze_capture/make_dummy_data.py
"""

import os
import shutil
import sys

import numpy as np

_HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(_HERE))))

from tat_keras.data import gazecapture_io  # pylint: disable=g-import-not-at-top

DUMMY_DIR = os.path.join(_HERE, "dummy_data")


def _plain_recording(path, split, seed):
  """A recording of 3 smooth frames, the middle one with a blink."""
  rng = np.random.default_rng(seed)
  y, x = np.mgrid[0:480, 0:640]
  frames = []
  for _ in range(3):
    base = (x * rng.uniform(0.1, 0.3) + y * rng.uniform(0.1, 0.3)) % 200 + 30
    frames.append(np.stack([base, base * 0.8, base * 0.6], -1).astype(np.uint8))
  gazecapture_io.write_recording(
      path, frames,
      face_boxes=[[200, 100, 240, 240]] * 3,
      left_eye_boxes=[[140, 60, 60, 60]] * 3,
      right_eye_boxes=[[40, 60, 60, 60]] * 3,
      face_grid=[[8, 5, 10, 10]] * 3,
      valid={"left_eye": [1, 0, 1]},
      gaze_cm=rng.uniform(-5, 5, (3, 2)), split=split, jpeg_quality=30)


def main():
  shutil.rmtree(DUMMY_DIR, ignore_errors=True)
  os.makedirs(DUMMY_DIR)
  for number, split in ((1, "train"), (2, "val"), (3, "test")):
    _plain_recording(os.path.join(DUMMY_DIR, f"{number:05d}"), split, number)


if __name__ == "__main__":
  main()
