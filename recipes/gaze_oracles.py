r"""How well could the three crops predict the label at all? Ideal readers.

Prints, for the test subjects of a preset, the mean error in cm of the
oracles of `tat_keras/data/synthetic/oracles.py` (ideal readers that know
the exact gaze direction but not where the eyes are, or not how far), read
from the twin's geometry without rendering a pixel:

  python recipes/gaze_oracles.py --preset=bench \
      --output=runs/gaze_oracles_bench.json

`--set=name=value` changes a field of the preset, as in `make_synthetic.py`.
"""

import json
import os

from absl import app
from absl import flags

from tat_keras.data import synthetic
from tat_keras.data.synthetic import oracles

_PRESET = flags.DEFINE_enum("preset", "quick", sorted(synthetic.PRESETS), "Preset.")
_SEED = flags.DEFINE_integer("seed", 0, "Seed of the dataset.")
_SET = flags.DEFINE_multi_string("set", [], "name=value: replaces a field of the preset.")
_OUTPUT = flags.DEFINE_string("output", None, "Optional JSON of the results.")

DESCRIPTIONS = {
    "direction_pair_mean_eye":
        "exact gaze direction; eyes placed at the mean of their device and orientation",
    "camera_ray_pair_mean_distance":
        "exact gaze and eye ray (what the eye crop shows); distance = mean of the pair",
    "eye_target_vs_label":
        "where the eyes really look against the labelled dot (label noise)",
}


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"Unexpected arguments: {argv[1:]}")
    config = synthetic.PRESETS[_PRESET.value]
    try:
        config = synthetic.with_overrides(config, [f"seed={_SEED.value}", *_SET.value])
    except (ValueError, TypeError) as error:
        raise app.UsageError(f"--set: {error}") from None
    errors = oracles.oracle_errors(config)
    print(f"Preset {_PRESET.value!r} (seed {_SEED.value}"
          f"{', ' + ', '.join(_SET.value) if _SET.value else ''}): "
          f"{errors['frames']} valid test frames\n")
    print("| ideal reader | test error (cm) |\n|---|---|")
    for name in oracles.ORACLES:
        print(f"| {DESCRIPTIONS[name]} | {errors[name]:.2f} |")
    if _OUTPUT.value:
        os.makedirs(os.path.dirname(os.path.abspath(_OUTPUT.value)), exist_ok=True)
        with open(_OUTPUT.value, "w") as f:
            json.dump({"preset": _PRESET.value, "seed": _SEED.value,
                       "set": _SET.value, **errors}, f, indent=2)


if __name__ == "__main__":
    app.run(main)
