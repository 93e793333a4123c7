r"""What the jitter of the synthetic stare sequences is made of.

For the test subjects of a preset, within each stare sequence (valid frames
of one dot):

1. Geometry, in pixels of the 64x64 left-eye crop: the iris position in the
   crop is (iris - box centre) / box side * 64. Its spread splits into the
   eye's own motion (iris minus the true eye centre: fixational drift,
   microsaccades, look-aways, head motion) and the box (true eye centre minus
   box centre: detector errors, with and without the frames where the
   detector boxed an eyebrow). Reported as the RMS deviation from the
   sequence mean, with the variance shares.
2. Pixels: the mean squared frame-to-frame change of the left-eye crop,
   rendered once with every nuisance and once with sensor noise only (same
   subjects, dots and frames); the ratio is the share of the change that
   sensor noise alone makes.

  python recipes/jitter_decomposition.py --preset=quick \
      --output=data/jitter_decomposition.json
"""

import json
import os
import tempfile

from absl import app
from absl import flags
import numpy as np

from tat_keras import crops as crop_lib
from tat_keras.data import synthetic
from tat_keras.data.gaze_capture import layout
from tat_keras.data.synthetic import detector
from tat_keras.data.synthetic import geometry
from tat_keras.data.synthetic import scene

_PRESET = flags.DEFINE_enum("preset", "quick", sorted(synthetic.PRESETS), "Preset.")
_OUTPUT = flags.DEFINE_string("output", "data/jitter_decomposition.json", "JSON to write.")
_CROP = 64


def _sequences(frames):
    """Indices of the frames of each stare sequence (dots with many frames)."""
    by_dot = {}
    for i, frame in enumerate(frames):
        by_dot.setdefault(frame.dot_num, []).append(i)
    return [v for v in by_dot.values() if len(v) > 8]


def _geometry_terms(config, index):
    """Per stare: (eye motion, box) offsets of the iris in crop pixels."""
    _, subject, conditions, frames = synthetic.draw_recording(config, index, "test")
    device = conditions.device
    terms = []
    for sequence in _sequences(frames):
        eye_terms, box_terms, gross = [], [], []
        for i in sequence:
            frame = frames[i]
            geo = geometry.project_head(
                subject, device, frame,
                scene.screen_centre_cm(device, frame.orientation),
                scene.screen_size_cm(device, frame.orientation),
            )
            (face, face_ok), _, (left, left_ok) = detector.detect(subject, frame, geo)
            if not (face_ok and left_ok):
                continue
            eye = geo["eyes"][1]
            side = left[2]
            box_centre = face[:2] + left[:2] + side / 2
            true_centre = (eye.inner + eye.outer) / 2
            eye_terms.append((eye.iris - true_centre) / side * _CROP)
            box_terms.append((true_centre - box_centre) / side * _CROP)
            gross.append(frame.gross_eye == 1)
        if len(eye_terms) > 1:
            terms.append((np.array(eye_terms), np.array(box_terms), np.array(gross)))
    return terms


def _crop_changes(config, index, folder):
    """Mean squared frame-to-frame change of the left-eye crop, per stare."""
    path = os.path.join(folder, f"{index:05d}")
    synthetic.render_recording(path, recording_index=index, split="test", config=config)
    recording = layout.read_recording(path)
    reasons = layout.frame_skip_reasons(recording)
    dots = recording.dot["DotNum"]
    changes = []
    for dot in np.unique(dots):
        chosen = [i for i in np.flatnonzero(dots == dot) if reasons[i] is None]
        if len(chosen) <= 8:
            continue
        crops = []
        for i in chosen:
            image = layout.decode_jpeg(os.path.join(path, "frames", recording.frame_names[i]))
            crop = crop_lib.crop_frame(
                image, recording.boxes["face"][i], recording.boxes["left_eye"][i],
                recording.boxes["right_eye"][i], _CROP,
            )
            if crop is not None:
                crops.append(crop["left_eye"].astype(np.float64))
        crops = np.array(crops)
        changes.append(float(np.mean((crops[1:] - crops[:-1]) ** 2)))
    return changes


def main(argv):
    del argv
    config = synthetic.PRESETS[_PRESET.value]
    tests = [i for i, s in enumerate(synthetic.recording_splits(config)) if s == "test"]
    eye_var, box_var, cross, jitter_var, gross_frames, frames = [], [], [], [], 0, 0
    for index in tests:
        for eye, box, gross in _geometry_terms(config, index):
            eye, box_all = eye - eye.mean(0), box - box.mean(0)
            eye_var.append(np.mean(np.sum(eye**2, -1)))
            box_var.append(np.mean(np.sum(box_all**2, -1)))
            cross.append(np.mean(np.sum((eye + box_all) ** 2, -1)))
            jitter = box[~gross] - box[~gross].mean(0)
            jitter_var.append(np.mean(np.sum(jitter**2, -1)))
            gross_frames += int(gross.sum())
            frames += len(gross)
    changes = {}
    with tempfile.TemporaryDirectory() as folder:
        for mode in synthetic.NUISANCE_MODES:
            moded = synthetic.SyntheticConfig(**{**config.__dict__, "nuisances": mode})
            values = []
            for index in tests:
                values += _crop_changes(moded, index, os.path.join(folder, mode))
            changes[mode] = float(np.mean(values))
    eye_ms, box_ms, total_ms = (float(np.mean(v)) for v in (eye_var, box_var, cross))
    result = {
        "preset": _PRESET.value,
        "stare_sequences": len(eye_var),
        "iris_in_crop_rms_px": {
            "total": total_ms**0.5,
            "eye_own_motion": eye_ms**0.5,
            "boxes": box_ms**0.5,
            "boxes_without_gross_failures": float(np.mean(jitter_var)) ** 0.5,
        },
        "stare_frames_with_an_eyebrow_boxed": gross_frames / frames,
        "iris_variance_share": {
            "eye_own_motion": eye_ms / (eye_ms + box_ms),
            "boxes": box_ms / (eye_ms + box_ms),
        },
        "crop_frame_to_frame_mean_squared_change": changes,
        "crop_change_share_of_sensor_noise_alone": changes["sensor_noise_only"]
        / changes["all"],
    }
    os.makedirs(os.path.dirname(os.path.abspath(_OUTPUT.value)), exist_ok=True)
    with open(_OUTPUT.value, "w") as f:
        json.dump(result, f, indent=1)
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    app.run(main)
