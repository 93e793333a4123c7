"""How well could the three crops predict the label at all?

The label is where the dot lies on the screen plane, in cm from the camera.
A network that sees only the face and eye crops (the paper's input, no face
grid) never sees where the eyes are in the frame nor how large the face is:
each crop is resized to 64x64. These oracles read the twin's own geometry
(the recording plan, before any pixel is drawn) and give the error of ideal
readers that know part of it:

- `direction_pair_mean_eye`: knows the exact direction of gaze (head and
  eyes, against the camera axis), but not where the eyes are; places them at
  the mean eye position of the training frames of the same device and
  orientation. The lean of a subject in front of the screen becomes error
  one to one.
- `camera_ray_pair_mean_distance`: knows the exact gaze direction and the
  ray from the camera to the eyes (what an eye crop shows: the eye's angle
  against its line of sight to the camera), but not the distance, taken as
  the mean of the training frames of the same device and orientation. With
  the eyes on the right ray at distance d' instead of d the gaze meets the
  screen at (d' / d) times the label, exactly.
- `eye_target_vs_label`: where the eyes really look against the labelled dot
  (frames while the eye still travels, microsaccades, glances away): the
  label noise no reader can remove.

Only frames the detector keeps (a face, eyes open) count, as in the prepared
data.

Example:

>>> from tat_keras.data.synthetic import config as config_lib
>>> config = config_lib.SyntheticConfig(
...     num_train_subjects=4, num_val_subjects=0, num_test_subjects=2,
...     dots_per_recording=4, frames_per_dot=1, stare_dots_per_recording=1,
...     stare_frames_per_dot=2)
>>> errors = oracle_errors(config)
>>> sorted(errors)
['camera_ray_pair_mean_distance', 'direction_pair_mean_eye', 'eye_target_vs_label', 'frames']
"""

import collections

import numpy as np

from tat_keras.data.synthetic import plan
from tat_keras.data.synthetic import writer

ORACLES = (
    "direction_pair_mean_eye",
    "camera_ray_pair_mean_distance",
    "eye_target_vs_label",
)


def kept_frames(config, split):
    """(pair, eye_mid, label_cm, look_at) of the valid frames of a split.

    `pair` is (device name, orientation); `label_cm` the dot (x, y)."""
    rows = []
    for index, recording_split in enumerate(writer.recording_splits(config)):
        if recording_split != split:
            continue
        _, _, conditions, frames = writer.draw_recording(config, index, split)
        for frame in frames:
            if not frame.face_detected or frame.opening < plan.OPENING_VALID:
                continue
            rows.append((
                (conditions.device.name, frame.orientation),
                np.asarray(frame.eye_mid, np.float64),
                np.array([frame.x_cm, frame.y_cm]),
                np.asarray(frame.look_at, np.float64),
            ))
    return rows


def screen_hit(eye, direction):
    """Where the ray from `eye` (3,) along `direction` (3,) meets z = 0."""
    return eye[:2] + (-eye[2] / direction[2]) * direction[:2]


def oracle_errors(config, split="test", reference_split="train"):
    """Mean Euclidean error (cm) of each oracle on `split`.

    Args:
      config: SyntheticConfig.
      split: str. the frames scored.
      reference_split: str. the frames whose per-(device, orientation) means
        the oracles use for what they do not know.

    Returns:
      dict: oracle name -> mean error in cm, and `frames`.
    """
    reference = collections.defaultdict(list)
    for pair, eye, _, _ in kept_frames(config, reference_split):
        reference[pair].append(eye)
    everyone = np.mean([e for eyes in reference.values() for e in eyes], axis=0)
    mean_eye = {pair: np.mean(eyes, axis=0) for pair, eyes in reference.items()}
    errors = {name: [] for name in ORACLES}
    for pair, eye, label, look_at in kept_frames(config, split):
        guess = mean_eye.get(pair, everyone)
        direction = np.array([label[0], label[1], 0.0]) - eye
        errors["direction_pair_mean_eye"].append(
            np.linalg.norm(screen_hit(guess, direction) - label))
        hit = screen_hit(eye * (guess[2] / eye[2]), direction)  # = label * d'/d
        errors["camera_ray_pair_mean_distance"].append(np.linalg.norm(hit - label))
        errors["eye_target_vs_label"].append(np.linalg.norm(look_at[:2] - label))
    result = {name: float(np.mean(values)) if values else None
              for name, values in errors.items()}
    result["frames"] = len(errors[ORACLES[0]])
    return result
