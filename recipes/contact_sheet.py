r"""Draws a contact sheet of the synthetic twin: frames with boxes, and crops.

Renders a few recordings of the quick preset (chosen to span lighting
regimes and glasses) and, for one frame of each, shows the full frame with
the face and eye boxes and the three 64x64 crops the network sees:

  python recipes/contact_sheet.py --output=docs/synthetic_samples.png
"""

import collections
import os
import tempfile

from absl import app
from absl import flags

from tat_keras import crops as crop_lib
from tat_keras import plots
from tat_keras.data import synthetic
from tat_keras.data.gaze_capture import layout

_OUTPUT = flags.DEFINE_string("output", "docs/synthetic_samples.png", "PNG to write.")
_ROWS = flags.DEFINE_integer("rows", 8, "Recordings shown, one per row.")
_SEED = flags.DEFINE_integer("seed", 0, "Seed of the rendered recordings.")


def _pick_recordings(config, rows):
    """Recording indices spanning lighting regimes and glasses."""
    wanted = collections.Counter()
    chosen = []
    for index in range(400):
        _, subject, conditions, _ = synthetic.draw_recording(config, index, "train")
        key = (conditions.lighting, subject.glasses is not None)
        if wanted[key] < 1 + len(chosen) // 8:
            wanted[key] += 1
            chosen.append((index, key))
        if len(chosen) == rows:
            break
    return chosen


def _sheet_row(path, lighting, glasses):
    """The last usable frame of a rendered recording, its boxes and crops."""
    recording = layout.read_recording(path)
    usable = [i for i, r in enumerate(layout.frame_skip_reasons(recording)) if r is None]
    frame = usable[-1] if usable else 0
    image = layout.decode_jpeg(os.path.join(path, "frames", recording.frame_names[frame]))
    face = recording.boxes["face"][frame]
    eyes = [crop_lib.absolute_eye_boxes(face, recording.boxes[k][frame])
            for k in ("left_eye", "right_eye")]
    return {
        "frame": image,
        "boxes": list(zip([face] + eyes, ("yellow", "cyan", "magenta"))),
        "title": (f"{recording.device}, orientation {recording.orientation[frame]}, "
                  f"{lighting}{', glasses' if glasses else ''}"),
        "crops": crop_lib.crop_frame(image, face, recording.boxes["left_eye"][frame],
                                     recording.boxes["right_eye"][frame], 64),
    }


def main(argv):
    del argv
    config = synthetic.SyntheticConfig(
        seed=_SEED.value, dots_per_recording=3, frames_per_dot=1, edge_rate=0.0
    )
    rows = []
    with tempfile.TemporaryDirectory() as folder:
        for index, (lighting, glasses) in _pick_recordings(config, _ROWS.value):
            path = os.path.join(folder, f"{index:05d}")
            synthetic.render_recording(
                path, recording_index=index, split="train", config=config
            )
            rows.append(_sheet_row(path, lighting, glasses))
    print(f"Wrote {plots.plot_contact_sheet(rows, _OUTPUT.value)}")


if __name__ == "__main__":
    app.run(main)
