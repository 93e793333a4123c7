"""GazeCapture as a TFDS dataset: face and eye crops with gaze labels in cm.

The builder reads the dataset exactly as published (one `%05d` folder per
recording, see `MANUAL_DOWNLOAD_INSTRUCTIONS`), or the project's synthetic
twin written in the same layout, and cuts for each usable frame the face and
both eye crops at the config's image size (64, the paper's size, or 128).

Preparation is parallel across recordings: a pool of `num_workers` processes
decodes the JPEG frames, crops, resizes and PNG-encodes them. Every skipped
recording or frame is counted by reason, logged at the end and written to
`skips.json` beside the prepared files
(`<data_dir>/gaze_capture/<config>/<version>/skips.json`).

Example:

>>> import tensorflow_datasets as tfds
>>> from tat_keras.data.gaze_capture import gaze_capture_dataset_builder  # registers it
>>> builder = tfds.builder("gaze_capture/size64", data_dir="/tmp/tfds",
...                        num_workers=2)
>>> builder.download_and_prepare(download_config=tfds.download.DownloadConfig(
...     manual_dir="/tmp/gazecapture"))  # doctest: +SKIP
"""

import collections
import functools
import json
import logging
import multiprocessing
import os

from etils import epath
import numpy as np
import tensorflow_datasets as tfds

from tat_keras.data.gaze_capture import layout

SKIPS_FILE_NAME = "skips.json"
# Serialized examples TFDS's shuffler keeps in memory before it spills them
# to bucket files on disk (TFDS's own limit is 1 GB). Lower, so that the peak
# memory of preparation stops growing with the dataset early (docs/data.md,
# "At GazeCapture's size"); the examples' order is the same either way (both
# paths order by the hashed key).
SHUFFLE_MEMORY_BYTES = 128 << 20

# README.md and CITATIONS.bib beside this file override the description and
# give the citation (TFDS reads them).
_DESCRIPTION = """
GazeCapture (Krafka et al., CVPR 2016): frames of people looking at dots on
phone and tablet screens. Each example holds the face and both eye crops of
one frame, the gaze target in cm relative to the camera (dotInfo XCam, YCam),
the 25x25 face grid parameters and the ids of the stare sequence (recording,
dot). Only frames where the face, both eyes and the face grid are detected are
kept. "Left eye" is the subject's left eye, on the right side of the image.
"""

_LAYOUT = """
  <manual_dir>/00002/frames/00000.jpg, 00001.jpg, ...
  <manual_dir>/00002/frames.json appleFace.json appleLeftEye.json
                     appleRightEye.json faceGrid.json dotInfo.json
                     info.json screen.json   (motion.json is not needed)
  <manual_dir>/00003/...        (one folder per recording, named %05d)
"""

MANUAL_DOWNLOAD_INSTRUCTIONS = f"""
Register and download GazeCapture from https://gazecapture.csail.mit.edu/,
extract the per-recording archives and put the recording folders directly in
the manual directory:
{_LAYOUT}
Or render the project's synthetic twin in the same layout:
  python recipes/make_synthetic.py --output_dir=<manual_dir> --preset=quick
Then: python recipes/prepare_gazecapture.py --manual_dir=<manual_dir> \\
  --data_dir=<data_dir>
"""


class GazeCaptureConfig(tfds.core.BuilderConfig):
    """A `gaze_capture` variant; the image size of the crops.

    Args:
      image_size: int. side in pixels of the square face and eye crops.
    """

    def __init__(self, *, image_size, **kwargs):
        super().__init__(**kwargs)
        self.image_size = image_size


def _open(path, mode):
    return epath.Path(path).open(mode)


class GazeCapture(tfds.core.GeneratorBasedBuilder):
    """GazeCapture face and eye crops, gaze labels in cm.

    Args:
      num_workers: optional int. worker processes that cut the crops; None
        uses all CPU cores, 1 works in the calling process.
      **kwargs: passed to `tfds.core.GeneratorBasedBuilder` (`data_dir`,
        `config`, ...).
    """

    VERSION = tfds.core.Version("1.0.0")
    RELEASE_NOTES = {"1.0.0": "Initial release."}
    BUILDER_CONFIGS = [
        GazeCaptureConfig(
            name="size64",
            image_size=64,
            description="64x64 crops, the paper's input size.",
        ),
        GazeCaptureConfig(name="size128", image_size=128, description="128x128 crops."),
    ]
    DEFAULT_BUILDER_CONFIG_NAME = "size64"
    MANUAL_DOWNLOAD_INSTRUCTIONS = MANUAL_DOWNLOAD_INSTRUCTIONS

    def __init__(self, *, num_workers=None, **kwargs):
        if num_workers is not None and num_workers < 1:
            raise ValueError(
                "num_workers must be positive or None. "
                f"Received: num_workers={num_workers}"
            )
        self._num_workers = num_workers
        self._skips = None
        self._num_splits = 0
        self._num_recordings = 0
        self._pool = None
        self._pool_size = 1
        super().__init__(**kwargs)

    def _info(self):
        size = self.builder_config.image_size
        image = functools.partial(
            tfds.features.Image,
            shape=(size, size, 3),
            dtype=np.uint8,
            encoding_format="png",
        )
        return self.dataset_info_from_configs(
            description=_DESCRIPTION,
            features=tfds.features.FeaturesDict(
                {
                    "face": image(),
                    "left_eye": image(),
                    "right_eye": image(),
                    "gaze_cm": tfds.features.Tensor(shape=(2,), dtype=np.float32),
                    "face_grid": tfds.features.Tensor(shape=(4,), dtype=np.int32),
                    "device": tfds.features.Text(),
                    "device_type": tfds.features.ClassLabel(names=["phone", "tablet"]),
                    "orientation": tfds.features.Scalar(dtype=np.int32),
                    "recording": tfds.features.Scalar(dtype=np.int32),
                    "frame": tfds.features.Scalar(dtype=np.int32),
                    "dot": tfds.features.Scalar(dtype=np.int32),
                    "dot_time": tfds.features.Scalar(dtype=np.float32),
                }
            ),
            homepage="https://gazecapture.csail.mit.edu/",
        )

    def _download_and_prepare(self, *args, **kwargs):
        from tensorflow_datasets.core import shuffle

        limit = shuffle.MAX_MEM_BUFFER_SIZE
        shuffle.MAX_MEM_BUFFER_SIZE = min(limit, SHUFFLE_MEMORY_BYTES)
        try:
            return super()._download_and_prepare(*args, **kwargs)
        finally:
            shuffle.MAX_MEM_BUFFER_SIZE = limit

    def _split_generators(self, dl_manager):
        manual_dir = epath.Path(dl_manager.manual_dir)
        names = layout.list_recordings(
            os.fspath(manual_dir),
            listdir=lambda d: [p.name for p in epath.Path(d).iterdir()],
            isdir=lambda d: epath.Path(d).is_dir(),
        )
        if not names:
            raise FileNotFoundError(
                f"No recording folders (named %05d) in manual_dir={manual_dir}. "
                f"Expected layout:{_LAYOUT}"
            )
        self._skips = _SkipCounter()
        by_split = {split: [] for split in ("train", "validation", "test")}
        for name in names:
            path = os.fspath(manual_dir / name)
            try:
                by_split[layout.read_split(path, _open)].append(path)
            except layout.RecordingError as error:
                self._skips.add_recording(
                    name,
                    error.reason,
                    str(error),
                    layout.count_recording_frames(path, _open),
                )
        for split, paths in by_split.items():
            if not paths:
                logging.warning("gaze_capture: no recording for split %r.", split)
        self._num_splits = sum(1 for paths in by_split.values() if paths)
        self._num_recordings = sum(len(paths) for paths in by_split.values())
        # TFDS cannot write an empty split: a split without recordings is left
        # out.
        return {
            split: self._generate_examples(paths, split)
            for split, paths in by_split.items()
            if paths
        }

    def _generate_examples(self, recording_dirs, split):
        """Yields (key, example); keys are `recording_frame`, `%05d_%05d`."""
        work = functools.partial(
            layout.process_recording,
            image_size=self.builder_config.image_size,
            open_fn=_open,
        )
        progress = tfds.core.utils.tqdm(
            total=len(recording_dirs),
            unit=" recordings",
            desc=f"Cropping {split} frames",
            leave=False,
        )
        count = 0
        try:
            with progress:
                pool = self._worker_pool()
                for path, result in _ordered_map(
                    work, recording_dirs, pool, window=2 * self._pool_size
                ):
                    examples, frame_skips, recording_skip = result
                    if recording_skip is not None:
                        self._skips.add_recording(
                            os.path.basename(path), *recording_skip
                        )
                    self._skips.frames.update(frame_skips)
                    count += len(examples)
                    progress.update(1)
                    progress.set_postfix(examples=count)
                    yield from examples
        except BaseException:
            self._close_pool()
            raise
        if len(self._skips.examples) + 1 == self._num_splits:
            self._close_pool()  # The last split: the workers are done.
        self._skips.examples[split] = count
        if not count:
            self._close_pool()
            raise ValueError(
                f"No usable frame in the {split} split ({len(recording_dirs)} "
                "recordings): every frame was skipped. Skips so far:\n"
                + self._skips.summary()
            )
        self._skips.write(os.path.join(self.data_dir, SKIPS_FILE_NAME))
        if len(self._skips.examples) == self._num_splits:
            logging.info("%s", self._skips.summary())
            print(self._skips.summary(), flush=True)

    def _worker_pool(self):
        """The process pool shared by the splits, or None to work in-process."""
        if self._pool is None:
            num_workers = min(
                self._num_workers or os.cpu_count() or 1, self._num_recordings
            )
            if num_workers > 1:
                # `spawn`: the workers start clean instead of forking a process
                # that runs TensorFlow threads.
                context = multiprocessing.get_context("spawn")
                self._pool = context.Pool(num_workers)
                self._pool_size = num_workers
        return self._pool

    def _close_pool(self):
        if self._pool is not None:
            self._pool.terminate()
            self._pool.join()
            self._pool = None


def _ordered_map(function, items, pool, window=8):
    """Yields (item, function(item)) in order, from a process pool or inline.

    At most `window` results are held at once, so memory stays bounded when
    the caller writes more slowly than the workers crop.
    """
    if pool is None:
        for item in items:
            yield item, function(item)
        return
    pending = collections.deque()
    for item in items:
        pending.append((item, pool.apply_async(function, (item,))))
        if len(pending) >= window:
            item, result = pending.popleft()
            yield item, result.get()
    while pending:
        item, result = pending.popleft()
        yield item, result.get()


class _SkipCounter:
    """Skipped recordings and frames, by reason, for `skips.json`."""

    def __init__(self):
        self.recordings = collections.Counter()
        self.frames = collections.Counter()
        self.skipped_recordings = []
        self.examples = {}

    def add_recording(self, name, reason, message, frames_lost):
        self.recordings[reason] += 1
        self.frames[reason] += frames_lost
        self.skipped_recordings.append(
            {
                "recording": name,
                "reason": reason,
                "message": message,
                "frames": frames_lost,
            }
        )

    def as_dict(self):
        return {
            "examples": dict(self.examples),
            "skipped_frames": dict(sorted(self.frames.items())),
            "skipped_recordings": dict(sorted(self.recordings.items())),
            "skipped_recording_list": sorted(
                self.skipped_recordings, key=lambda r: r["recording"]
            ),
        }

    def write(self, path):
        with epath.Path(path).open("w") as f:
            json.dump(self.as_dict(), f, indent=1)

    def summary(self):
        return format_skips(self.as_dict())


def format_skips(skips):
    """Formats the content of `skips.json` as a short human-readable table.

    Args:
      skips: dict, as read from `skips.json`.
    """
    lines = [
        "gaze_capture: examples written: "
        + ", ".join(f"{k}={v}" for k, v in skips["examples"].items())
    ]
    total = sum(skips["skipped_frames"].values())
    lines.append(f"gaze_capture: frames skipped: {total}")
    for reason, frames in skips["skipped_frames"].items():
        recordings = skips["skipped_recordings"].get(reason)
        whole = f" (in {recordings} whole recordings)" if recordings else ""
        lines.append(f"  {reason}: {frames} frames{whole}")
    return "\n".join(lines)
