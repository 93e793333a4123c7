r"""Statistics of a synthetic preset, from its draws (nothing is rendered).

Devices and orientations, lighting regimes, glasses, dots per recording,
the head's pose as the camera sees it, where the face lands in the frame and
how often the eye is not on the labelled dot:

  python recipes/synthetic_statistics.py --preset=quick \
      --output=data/synthetic_statistics.json
"""

import collections
import json
import math
import os

from absl import app
from absl import flags
import numpy as np

from tat_keras.data import synthetic
from tat_keras.data.synthetic import geometry

_PRESET = flags.DEFINE_enum("preset", "quick", sorted(synthetic.PRESETS), "Preset.")
_OUTPUT = flags.DEFINE_string(
    "output", "data/synthetic_statistics.json", "JSON to write."
)


def _head_pose_to_camera(frame):
    """Yaw and pitch of the face relative to the line from the eyes to the camera."""
    forward = geometry.direction(*frame.head_angles[:2])
    to_camera = -np.asarray(frame.eye_mid) / np.linalg.norm(frame.eye_mid)
    yaw = math.degrees(math.atan2(forward[0], -forward[2])) - math.degrees(
        math.atan2(to_camera[0], -to_camera[2])
    )
    pitch = math.degrees(math.asin(forward[1])) - math.degrees(math.asin(to_camera[1]))
    return yaw, pitch


def main(argv):
    del argv
    config = synthetic.PRESETS[_PRESET.value]
    counts = collections.defaultdict(collections.Counter)
    poses, offsets, dots, off_dot = [], [], [], []
    for index, split in enumerate(synthetic.recording_splits(config)):
        _, subject, conditions, frames = synthetic.draw_recording(config, index, split)
        device = conditions.device
        counts["device"][device.name] += 1
        counts["device_type"][device.device_type] += 1
        counts["lighting"][conditions.lighting] += 1
        counts["glasses"][subject.glasses is not None] += 1
        counts["lid_type"][subject.lid_type] += 1
        dots.append(len({f.dot_num for f in frames}))
        for frame in frames:
            counts[f"orientation_{device.device_type}"][frame.orientation] += 1
            poses.append(_head_pose_to_camera(frame))
            width, height = geometry.frame_size(frame.orientation)
            camera = geometry.Camera(device.focal_px, width, height)
            u, v = camera.project(frame.eye_mid)
            offsets.append(((u - width / 2) / width, (v - height / 2) / height))
            target = np.array([frame.x_cm, frame.y_cm, 0.0])
            off_dot.append(float(np.linalg.norm(frame.look_at - target)) > 0.5)
    poses, offsets = np.array(poses), np.array(offsets)
    result = {
        "preset": _PRESET.value,
        "frames_per_split": synthetic.count_frames(config),
        **{k: dict(sorted((str(n), c) for n, c in v.items())) for k, v in counts.items()},
        "dots_per_recording": {"min": min(dots), "max": max(dots)},
        "head_pose_to_camera_deg": {
            "yaw_std": float(poses[:, 0].std()),
            "pitch_std": float(poses[:, 1].std()),
            "yaw_mean": float(poses[:, 0].mean()),
            "pitch_mean": float(poses[:, 1].mean()),
        },
        "eye_midpoint_offset_from_frame_centre": {
            "x_std": float(offsets[:, 0].std()),
            "y_mean": float(offsets[:, 1].mean()),
            "y_std": float(offsets[:, 1].std()),
        },
        "share_of_frames_eye_off_the_dot": float(np.mean(off_dot)),
    }
    os.makedirs(os.path.dirname(os.path.abspath(_OUTPUT.value)), exist_ok=True)
    with open(_OUTPUT.value, "w") as f:
        json.dump(result, f, indent=1)
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    app.run(main)
