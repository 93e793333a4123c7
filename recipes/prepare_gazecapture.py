"""Prepares GazeCapture (or its synthetic twin) as the `gaze_capture` dataset.

Reads the raw recordings (one `%05d` folder per recording, as published or as
written by `recipes/make_synthetic.py`), cuts the face and eye crops in
parallel and writes the TFDS dataset `gaze_capture/size<image_size>`:

  python recipes/prepare_gazecapture.py --manual_dir=data/synthetic_quick \
      --data_dir=data/tfds --image_size=64 --num_workers=2

Before it starts it checks that `--data_dir`'s disk has the space the
prepared set needs (an estimate from the frame count); running out of space
midway stops with the same message. An interrupted preparation (even
`kill -9`) is finished by running the same command again.

Skipped recordings and frames are counted by reason, printed at the end and
written to `<data_dir>/gaze_capture/size<image_size>/<version>/skips.json`;
the resolved flags go to `prepare_flags.json` beside it.
"""

import errno
import json
import os
import sys

from absl import app
from absl import flags

import tensorflow_datasets as tfds

# Importing the builder module registers `gaze_capture` with TFDS.
from tat_keras.data.gaze_capture import gaze_capture_dataset_builder as gaze_capture
from tat_keras.data.gaze_capture import layout

_MANUAL_DIR = flags.DEFINE_string(
    "manual_dir", None, "Folder holding the raw recording folders (%05d)."
)
_DATA_DIR = flags.DEFINE_string(
    "data_dir", None, "TFDS data directory to write the prepared dataset to."
)
_IMAGE_SIZE = flags.DEFINE_enum(
    "image_size", "64", ["64", "128"], "Side of the face and eye crops."
)
_NUM_WORKERS = flags.DEFINE_integer(
    "num_workers", None, "Worker processes cutting crops (default: all cores)."
)
_OVERWRITE = flags.DEFINE_boolean(
    "overwrite", False, "Prepare again even if the dataset already exists."
)


def _check_flags():
    if not _MANUAL_DIR.value or not _DATA_DIR.value:
        raise app.UsageError(
            "Both --manual_dir and --data_dir are required, e.g.\n"
            "  python recipes/prepare_gazecapture.py "
            "--manual_dir=data/synthetic_quick --data_dir=data/tfds"
        )
    if not os.path.isdir(_MANUAL_DIR.value):
        raise app.UsageError(
            f"--manual_dir={_MANUAL_DIR.value} does not exist. It must hold the "
            "recording folders:\n"
            + gaze_capture.GazeCapture.MANUAL_DOWNLOAD_INSTRUCTIONS
        )
    if not layout.list_recordings(_MANUAL_DIR.value):
        raise app.UsageError(
            f"--manual_dir={_MANUAL_DIR.value} holds no recording folders "
            "(named %05d). It must hold:\n"
            + gaze_capture.GazeCapture.MANUAL_DOWNLOAD_INSTRUCTIONS
        )
    if _NUM_WORKERS.value is not None and _NUM_WORKERS.value < 1:
        raise app.UsageError(
            f"--num_workers must be positive. Received: {_NUM_WORKERS.value}"
        )


def _out_of_space(error):
    return (getattr(error, "errno", None) == errno.ENOSPC
            or "No space left on device" in str(error))


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"Unexpected arguments: {argv[1:]}")
    _check_flags()
    builder = gaze_capture.GazeCapture(
        data_dir=_DATA_DIR.value,
        config=f"size{_IMAGE_SIZE.value}",
        num_workers=_NUM_WORKERS.value,
    )
    reused = builder.is_prepared() and not _OVERWRITE.value
    num_frames = sum(
        layout.count_recording_frames(os.path.join(_MANUAL_DIR.value, name))
        for name in layout.list_recordings(_MANUAL_DIR.value))
    image_size = int(_IMAGE_SIZE.value)
    if not reused:
        try:
            layout.check_disk_space(_DATA_DIR.value, num_frames, image_size)
        except OSError as error:
            sys.exit(f"Not enough disk space. {error.strerror}")
    mode = (
        tfds.download.GenerateMode.REUSE_CACHE_IF_EXISTS
        if _OVERWRITE.value
        else tfds.download.GenerateMode.REUSE_DATASET_IF_EXISTS
    )
    try:
        builder.download_and_prepare(
            download_config=tfds.download.DownloadConfig(
                manual_dir=_MANUAL_DIR.value, download_mode=mode
            )
        )
    except Exception as error:  # OSError, or TensorFlow's file errors.
        if not _out_of_space(error):
            raise
        needed = layout.required_disk_bytes(num_frames, image_size)
        sys.exit("The disk ran out of space while preparing. "
                 + layout.disk_space_message(needed, _DATA_DIR.value))

    skips_path = os.path.join(builder.data_dir, gaze_capture.SKIPS_FILE_NAME)
    if reused and os.path.exists(skips_path):  # Else the builder printed it.
        print("Already prepared (--overwrite prepares again); its skips:")
        with open(skips_path) as f:
            print(gaze_capture.format_skips(json.load(f)))
    with open(os.path.join(builder.data_dir, "prepare_flags.json"), "w") as f:
        json.dump(
            {
                name: flags.FLAGS[name].value
                for name in (
                    "manual_dir",
                    "data_dir",
                    "image_size",
                    "num_workers",
                    "overwrite",
                )
            },
            f,
            indent=1,
        )
    for split, info in builder.info.splits.items():
        print(f"{split}: {info.num_examples} examples")
    print(f"Prepared {builder.info.full_name} in {builder.data_dir}")


if __name__ == "__main__":
    app.run(main)
