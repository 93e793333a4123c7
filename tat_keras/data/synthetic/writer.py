"""Rendering recordings and datasets, written through GazeCapture's layout.

Each recording is one subject; subjects are split into train, val and test.
Files are written by `tat_keras.data.gaze_capture.layout.write_recording`, the
same module the TFDS builder reads them with. Every recording draws from its
own generator, seeded by `(seed, recording index)`, so a dataset is the same
byte for byte whatever the number of worker processes.

Example:

>>> import tempfile
>>> from tat_keras.data.synthetic.config import SyntheticConfig
>>> config = SyntheticConfig(num_train_subjects=1, num_val_subjects=0,
...                          num_test_subjects=0, dots_per_recording=1,
...                          frames_per_dot=2)
>>> render_dataset(tempfile.mkdtemp(), config, progress=False)["frames"]
2
"""

import dataclasses
import json
import multiprocessing
import os
import re
import shutil
import tempfile
import time

import numpy as np

from tat_keras.data import devices as devices_lib
from tat_keras.data.gaze_capture import layout
from tat_keras.data.synthetic import config as config_lib
from tat_keras.data.synthetic import detector
from tat_keras.data.synthetic import plan
from tat_keras.data.synthetic import render
from tat_keras.data.synthetic import scene
from tat_keras.data.synthetic import subjects

SUMMARY_FILE = "synthetic_summary.json"
_RECORDING_NAME = re.compile(r"^\d{5}$")


def recording_splits(config):
    """Split of each recording index ("train", "val" or "test").

    The splits are interleaved by a permutation drawn from the seed, as the
    folder numbers of GazeCapture are.

    Args:
      config: SyntheticConfig.

    Example:

    >>> from tat_keras.data.synthetic.config import SyntheticConfig
    >>> recording_splits(SyntheticConfig(num_train_subjects=2,
    ...     num_val_subjects=0, num_test_subjects=1, seed=3)).count("test")
    1
    """
    splits = (
        ["train"] * config.num_train_subjects
        + ["val"] * config.num_val_subjects
        + ["test"] * config.num_test_subjects
    )
    rng = np.random.default_rng(
        np.random.SeedSequence(entropy=config.seed, spawn_key=(2**31,))
    )
    return [splits[i] for i in rng.permutation(len(splits))]


def recording_rng(seed, recording_index):
    """The generator of one recording, a function of (seed, index) only."""
    return np.random.default_rng(
        np.random.SeedSequence(entropy=seed, spawn_key=(recording_index,))
    )


def draw_recording(config, recording_index, split):
    """Draws the subject, conditions and frame plan of one recording.

    Args:
      config: SyntheticConfig.
      recording_index: int.
      split: str.

    Returns:
      (rng, subject, conditions, frames); `rng` continues the recording's
      stream (the renderer draws from it next).
    """
    rng = recording_rng(config.seed, recording_index)
    subject = subjects.sample_subject(rng, config.glasses_fraction)
    conditions = scene.sample_conditions(rng, config)
    frames = plan.plan_recording(rng, config, split, subject, conditions)
    return rng, subject, conditions, frames


def render_recording(recording_dir, *, recording_index, split, config):
    """Renders one recording (one subject) in the GazeCapture layout.

    The recording draws only from `recording_rng(config.seed,
    recording_index)`, so it is the same whichever process renders it.

    Args:
      recording_dir: str. folder to write (created; usually `DIR/%05d`).
      recording_index: int. index of the recording (its folder number).
      split: str. "train", "val" or "test"; test subjects also stare.
      config: SyntheticConfig.

    Returns:
      dict with `recording`, `split`, `device`, `frames`, `valid_frames`.

    Example:

    >>> import os, tempfile
    >>> from tat_keras.data.synthetic.config import SyntheticConfig
    >>> directory = os.path.join(tempfile.mkdtemp(), "00000")
    >>> config = SyntheticConfig(dots_per_recording=1, frames_per_dot=2)
    >>> render_recording(directory, recording_index=0, split="train",
    ...                  config=config)["frames"]
    2
    """
    if split not in config_lib.SPLITS:
        raise ValueError(
            f"split must be one of {config_lib.SPLITS}. Received: split={split}"
        )
    rng, subject, conditions, frames = draw_recording(config, recording_index, split)
    renderer = render.RecordingRenderer(rng, subject, conditions)
    geometries = [renderer.geometry(frame) for frame in frames]
    detections = [detector.detect(subject, f, g) for f, g in zip(frames, geometries)]
    (faces, face_valid), (rights, right_valid), (lefts, left_valid) = (
        (np.array([d[k][0] for d in detections]), np.array([d[k][1] for d in detections]))
        for k in range(3)
    )
    grids = [layout.face_grid(face, geo["size"]) for face, geo in zip(faces, geometries)]
    device = conditions.device
    layout.write_recording(
        recording_dir,
        (renderer.render(f, g) for f, g in zip(frames, geometries)),
        face_boxes=faces,
        left_eye_boxes=lefts,
        right_eye_boxes=rights,
        face_grid=grids,
        valid={
            "face": face_valid,
            "left_eye": left_valid,
            "right_eye": right_valid,
            "face_grid": face_valid,
        },
        gaze_cm=[(f.x_cm, f.y_cm) for f in frames],
        dot_num=[f.dot_num for f in frames],
        dot_time=[f.time for f in frames],
        dot_pts=[(f.x_pts, f.y_pts) for f in frames],
        screen_pts=[devices_lib.screen_size_points(device, f.orientation) for f in frames],
        split=split,
        device=device.name,
        orientation=[f.orientation for f in frames],
        jpeg_quality=conditions.jpeg_quality,
    )
    valid = face_valid & right_valid & left_valid
    return {
        "recording": recording_index,
        "split": split,
        "device": device.name,
        "frames": len(frames),
        "valid_frames": int(valid.sum()),
    }


def count_frames(config):
    """Frames per split that `render_dataset` writes, without rendering.

    Args:
      config: SyntheticConfig.

    Example:

    >>> from tat_keras.data.synthetic.config import SyntheticConfig
    >>> count_frames(SyntheticConfig(num_train_subjects=2, num_val_subjects=0,
    ...     num_test_subjects=0, frames_per_dot=3, dots_per_recording=4))
    {'train': 24, 'val': 0, 'test': 0}
    """
    counts = {split: 0 for split in config_lib.SPLITS}
    for index, split in enumerate(recording_splits(config)):
        counts[split] += len(draw_recording(config, index, split)[3])
    return counts


def _render_task(task):
    output_dir, index, split, config = task
    start = time.process_time()
    result = render_recording(
        os.path.join(output_dir, f"{index:05d}"),
        recording_index=index,
        split=split,
        config=config,
    )
    return {**result, "cpu_seconds": time.process_time() - start}




def _prepare_output_dir(output_dir, overwrite):
    if os.path.isdir(output_dir) and os.listdir(output_dir):
        if not overwrite:
            raise FileExistsError(
                f"output_dir is not empty: pass overwrite=True (--overwrite) to "
                f"replace its recordings, or choose an empty folder. Received: "
                f"output_dir={output_dir}"
            )
        for name in os.listdir(output_dir):
            path = os.path.join(output_dir, name)
            if _RECORDING_NAME.match(name) and os.path.isdir(path):
                shutil.rmtree(path)
            elif name == SUMMARY_FILE:
                os.remove(path)
    os.makedirs(output_dir, exist_ok=True)


def render_dataset(
    output_dir, config, *, num_workers=1, progress=True, overwrite=False
):
    """Renders the whole synthetic dataset into `output_dir`.

    Recordings are rendered in parallel when `num_workers > 1`; the result
    does not depend on `num_workers`. A summary (with the config) is written
    to `output_dir/synthetic_summary.json`.

    Args:
      output_dir: str. folder for the `%05d` recordings; must be empty.
      config: SyntheticConfig (or a `PRESETS` entry).
      num_workers: int. worker processes.
      progress: bool. show a tqdm progress bar.
      overwrite: bool. replace the recordings of a non-empty `output_dir`.

    Returns:
      dict: `recordings`, `frames`, `valid_frames`, `seconds` (wall),
      `cpu_seconds` (summed over the processes that rendered),
      `frames_per_cpu_second` and per split `splits[split]` with the counts.

    Example:

    >>> import tempfile
    >>> from tat_keras.data.synthetic.config import SyntheticConfig
    >>> config = SyntheticConfig(num_train_subjects=1, num_val_subjects=1,
    ...     num_test_subjects=0, dots_per_recording=1, frames_per_dot=1)
    >>> render_dataset(tempfile.mkdtemp(), config, progress=False)["recordings"]
    2
    """
    if num_workers < 1:
        raise ValueError(
            f"num_workers must be >= 1. " f"Received: num_workers={num_workers}"
        )
    _prepare_output_dir(output_dir, overwrite)
    start = time.perf_counter()
    splits = recording_splits(config)
    tasks = [(output_dir, i, split, config) for i, split in enumerate(splits)]
    bar = None
    if progress:
        import tqdm  # Only needed for the progress bar.

        bar = tqdm.tqdm(
            total=sum(count_frames(config).values()),
            unit="frame",
            desc="Rendering",
            smoothing=0.1,
        )
    results = []
    if num_workers == 1:
        for task in tasks:
            results.append(_render_task(task))
            if bar is not None:
                bar.update(results[-1]["frames"])
    else:
        methods = multiprocessing.get_all_start_methods()
        context = multiprocessing.get_context("fork" if "fork" in methods else None)
        with context.Pool(min(num_workers, len(tasks))) as pool:
            for result in pool.imap_unordered(_render_task, tasks):
                results.append(result)
                if bar is not None:
                    bar.update(result["frames"])
    if bar is not None:
        bar.close()
    results.sort(key=lambda r: r["recording"])
    seconds = time.perf_counter() - start
    frames = sum(r["frames"] for r in results)
    cpu_seconds = sum(r.pop("cpu_seconds") for r in results)
    summary = {
        "recordings": len(results),
        "frames": frames,
        "valid_frames": sum(r["valid_frames"] for r in results),
        "seconds": round(seconds, 2),
        "cpu_seconds": round(cpu_seconds, 2),
        "frames_per_cpu_second": round(frames / cpu_seconds, 1) if cpu_seconds else None,
        "num_workers": num_workers,
        "splits": {},
    }
    for split in config_lib.SPLITS:
        chosen = [r for r in results if r["split"] == split]
        summary["splits"][split] = {
            "recordings": len(chosen),
            "frames": sum(r["frames"] for r in chosen),
            "valid_frames": sum(r["valid_frames"] for r in chosen),
        }
    with open(os.path.join(output_dir, SUMMARY_FILE), "w") as f:
        json.dump(
            {
                "summary": summary,
                "config": dataclasses.asdict(config),
                "recordings": results,
            },
            f,
            indent=1,
        )
    return summary


def benchmark(config=None, *, num_recordings=4):
    """Measures rendering speed on one core (frames per second).

    Renders `num_recordings` train recordings into a temporary folder in the
    calling process, JPEG encoding and file writing included.

    Args:
      config: SyntheticConfig. defaults to `PRESETS["quick"]`.
      num_recordings: int. recordings to render.

    Returns:
      dict: `frames`, `seconds` (wall), `cpu_seconds` (this process),
      `frames_per_second` (wall) and `frames_per_cpu_second`.
    """
    config = config or config_lib.PRESETS["quick"]
    frames = 0
    with tempfile.TemporaryDirectory() as directory:
        start, cpu_start = time.perf_counter(), time.process_time()
        for index in range(num_recordings):
            result = render_recording(
                os.path.join(directory, f"{index:05d}"),
                recording_index=index,
                split="train",
                config=config,
            )
            frames += result["frames"]
        seconds = time.perf_counter() - start
        cpu_seconds = time.process_time() - cpu_start
    return {
        "frames": frames,
        "seconds": seconds,
        "cpu_seconds": cpu_seconds,
        "frames_per_second": frames / seconds,
        "frames_per_cpu_second": frames / cpu_seconds,
    }
