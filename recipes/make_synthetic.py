r"""Renders the synthetic twin of GazeCapture in its on-disk layout.

The output folder can be prepared by the `gaze_capture` TFDS builder exactly
like the real dataset (`recipes/prepare_gazecapture.py --manual_dir=DIR`).

Usage (from the repository root):

  python recipes/make_synthetic.py --output_dir=data/synthetic_raw \
      --preset=quick

  python recipes/make_synthetic.py --output_dir=data/synthetic_bench_raw \
      --preset=bench --num_workers=2

A tenth of GazeCapture's size (about 250,000 frames, 150 subjects;
`--jobs` is `--num_workers`):

  python recipes/make_synthetic.py --output_dir=data/tenth/raw \
      --preset=tenth --jobs=2

A test set of stare sequences with sensor noise as the only nuisance (no box
jitter, head motion, eye motion or shake; the same subjects, dots and frames
as the default), to measure MSD with and without geometric jitter:

  python recipes/make_synthetic.py --output_dir=data/synthetic_noise_only \
      --preset=quick --nuisances=sensor_noise_only

Rendering speed on one core (frames per second, JPEG encoding included):

  python recipes/make_synthetic.py --benchmark

A variant of a preset, one `SyntheticConfig` field changed per `--set`
(the ablations of the dataset README):

  python recipes/make_synthetic.py --output_dir=data/ablation/no_glasses \
      --preset=quick --set=glasses_fraction=0
"""

import dataclasses
import os

from absl import app
from absl import flags

from tat_keras.data import synthetic

_OUTPUT_DIR = flags.DEFINE_string(
    "output_dir",
    None,
    "Folder for the recordings (created; must be empty " "unless --overwrite).",
)
_PRESET = flags.DEFINE_enum(
    "preset", "quick", sorted(synthetic.PRESETS), "Dataset size."
)
_SEED = flags.DEFINE_integer(
    "seed", 0, "Seed; the dataset is a function " "of the seed and the preset."
)
_NUM_WORKERS = flags.DEFINE_integer(
    "num_workers", 1, "Worker processes; the output does not depend on it."
)
flags.DEFINE_alias("jobs", "num_workers")
_NUISANCES = flags.DEFINE_enum(
    "nuisances",
    "all",
    list(synthetic.NUISANCE_MODES),
    "What changes between frames besides the gaze: 'all', or "
    "'sensor_noise_only' (no box jitter, head or eye motion, shake or "
    "exposure drift; same subjects, dots and frames).",
)
_SET = flags.DEFINE_multi_string(
    "set",
    [],
    "name=value: replaces a field of the preset's SyntheticConfig (repeatable), "
    "e.g. --set=glasses_fraction=0 --set='lighting_weights=(1,0,0,0)'.",
)
_OVERWRITE = flags.DEFINE_bool(
    "overwrite", False, "Replace the recordings of a non-empty output_dir."
)
_BENCHMARK = flags.DEFINE_bool(
    "benchmark", False, "Measure rendering speed on one core and exit."
)
_BENCHMARK_RECORDINGS = flags.DEFINE_integer(
    "benchmark_recordings", 6, "Recordings rendered by --benchmark."
)


def _benchmark():
    config = synthetic.PRESETS[_PRESET.value]
    result = synthetic.benchmark(config, num_recordings=_BENCHMARK_RECORDINGS.value)
    print(
        f"Rendered {result['frames']} frames (640x480 / 480x640, JPEG "
        f"quality {config.jpeg_quality_range}) in {result['seconds']:.2f} s "
        f"wall, {result['cpu_seconds']:.2f} s CPU on one core."
    )
    print(
        f"Speed: {result['frames_per_second']:.1f} frames/s per core "
        f"(wall), {result['frames_per_cpu_second']:.1f} frames per CPU "
        "second."
    )


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"Unexpected arguments: {argv[1:]}")
    if _BENCHMARK.value:
        _benchmark()
        return
    if not _OUTPUT_DIR.value:
        raise app.UsageError(
            "--output_dir is required, e.g. " "--output_dir=data/synthetic_raw"
        )
    output_dir = _OUTPUT_DIR.value
    config = synthetic.PRESETS[_PRESET.value]
    config = dataclasses.replace(config, seed=_SEED.value, nuisances=_NUISANCES.value)
    try:
        config = synthetic.with_overrides(config, _SET.value)
    except (ValueError, TypeError) as error:
        raise app.UsageError(f"--set: {error}") from None
    if os.path.isdir(output_dir) and os.listdir(output_dir) and not _OVERWRITE.value:
        raise app.UsageError(
            f"--output_dir={output_dir} is not empty. Pass --overwrite to "
            "replace its recordings, or choose an empty folder."
        )
    if os.path.exists(output_dir) and not os.path.isdir(output_dir):
        raise app.UsageError(f"--output_dir={output_dir} is a file, not a " "folder.")
    print(
        f"Rendering preset {_PRESET.value!r} (seed {_SEED.value}, nuisances "
        f"{_NUISANCES.value!r}{', ' + ', '.join(_SET.value) if _SET.value else ''}): "
        f"{config.num_train_subjects} train, {config.num_val_subjects} val, "
        f"{config.num_test_subjects} test subjects into {output_dir}"
    )
    summary = synthetic.render_dataset(
        output_dir,
        config,
        num_workers=_NUM_WORKERS.value,
        progress=True,
        overwrite=_OVERWRITE.value,
    )
    print(
        f"Done in {summary['seconds']:.1f} s: {summary['recordings']} "
        f"recordings, {summary['frames']} frames, "
        f"{summary['valid_frames']} valid frames; "
        f"{summary['frames_per_cpu_second']} frames per CPU second "
        f"({summary['cpu_seconds']:.0f} CPU s over {_NUM_WORKERS.value} workers)."
    )
    for split, counts in summary["splits"].items():
        print(
            f"  {split:5s}: {counts['recordings']:3d} recordings, "
            f"{counts['frames']:6d} frames, {counts['valid_frames']:6d} valid"
        )
    print(f"Summary and config: " f"{os.path.join(output_dir, synthetic.SUMMARY_FILE)}")
    print(
        "Next: python recipes/prepare_gazecapture.py "
        f"--manual_dir={output_dir} --data_dir=DATA_DIR"
    )


if __name__ == "__main__":
    app.run(main)
