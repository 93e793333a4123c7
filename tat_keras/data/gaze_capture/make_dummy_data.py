"""Writes `dummy_data/`, the tiny raw recordings of the TFDS builder test.

Renders them with the synthetic twin (`tat_keras.data.synthetic`), so the
builder test runs on the same kind of frames the project trains on: one
recording per split, two frames of one dot each, JPEG quality kept low so
the files stay a few KB.

  python tat_keras/data/gaze_capture/make_dummy_data.py
"""

import os
import shutil

_HERE = os.path.dirname(os.path.abspath(__file__))

from tat_keras.data import synthetic

DUMMY_DIR = os.path.join(_HERE, "dummy_data")

CONFIG = synthetic.SyntheticConfig(
    num_train_subjects=1,
    num_val_subjects=1,
    num_test_subjects=1,
    dots_per_recording=1,
    frames_per_dot=2,
    stare_dots_per_recording=1,
    stare_frames_per_dot=2,
    blink_rate=0.0,
    face_miss_rate=0.0,
    shake_rate=0.0,
    edge_rate=0.0,
    look_away_rate=0.0,
    gross_failure_rate=0.0,
    jpeg_quality_range=(20, 20),
    seed=3,
)


def main():
    shutil.rmtree(DUMMY_DIR, ignore_errors=True)
    summary = synthetic.render_dataset(DUMMY_DIR, CONFIG, progress=False)
    summary_file = os.path.join(DUMMY_DIR, "synthetic_summary.json")
    if os.path.exists(summary_file):
        os.remove(summary_file)  # Not part of the GazeCapture layout.
    print(
        {split: counts["valid_frames"] for split, counts in summary["splits"].items()}
    )


if __name__ == "__main__":
    main()
