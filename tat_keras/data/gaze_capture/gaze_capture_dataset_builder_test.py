"""Tests of the `gaze_capture` TFDS builder."""

import json
import os

import numpy as np
import pytest
import tensorflow_datasets as tfds

from tat_keras.data.gaze_capture import layout
from tat_keras.data.gaze_capture import gaze_capture_dataset_builder as builder_lib

FACE = [200.0, 100.0, 240.0, 240.0]
EYE = [40.0, 60.0, 60.0, 60.0]
GRID = [8.0, 5.0, 10.0, 10.0]


class GazeCaptureTest(tfds.testing.DatasetBuilderTestCase):
    """Prepares `dummy_data/` (three recordings, one per split)."""

    DATASET_CLASS = builder_lib.GazeCapture
    SPLITS = {"train": 2, "validation": 2, "test": 4}
    SKIP_TF1_GRAPH_MODE = True
    SKIP_CHECKSUMS = True

    def _make_builder(self, config=None):
        return self.dataset_class(
            data_dir=self.tmp_dir, config=config, version=self.VERSION, num_workers=1
        )


def _write(manual_dir, number, split, num_frames=3, **kwargs):
    frames = [np.full((480, 640, 3), 90 + 10 * i, np.uint8) for i in range(num_frames)]
    defaults = dict(
        face_boxes=[FACE] * num_frames,
        left_eye_boxes=[EYE] * num_frames,
        right_eye_boxes=[EYE] * num_frames,
        face_grid=[GRID] * num_frames,
        split=split,
    )
    defaults.update(kwargs)
    path = os.path.join(manual_dir, f"{number:05d}")
    layout.write_recording(path, frames, **defaults)
    return path


def _prepare(manual_dir, data_dir, num_workers=1, config="size64"):
    builder = builder_lib.GazeCapture(
        data_dir=str(data_dir), config=config, num_workers=num_workers
    )
    builder.download_and_prepare(
        download_config=tfds.download.DownloadConfig(manual_dir=str(manual_dir))
    )
    return builder


def test_skips_are_counted_and_written(tmp_path, capsys):
    manual = tmp_path / "raw"
    _write(manual, 1, "train", valid={"face": [1, 0, 1]})
    broken = _write(manual, 2, "train")
    os.remove(os.path.join(broken, "screen.json"))
    _write(manual, 3, "val")
    _write(manual, 4, "test", left_eye_boxes=[EYE, [1, 1, 0, 5], EYE])
    no_info = _write(manual, 5, "test")
    with open(os.path.join(no_info, "info.json"), "w") as f:
        f.write("{not json")
    builder = _prepare(manual, tmp_path / "tfds")

    assert {k: v.num_examples for k, v in builder.info.splits.items()} == {
        "train": 2,
        "validation": 3,
        "test": 2,
    }
    with open(os.path.join(builder.data_dir, builder_lib.SKIPS_FILE_NAME)) as f:
        skips = json.load(f)
    assert skips["skipped_frames"] == {
        "invalid_detection": 1,
        "missing_json": 3,
        "non_positive_box": 1,
        "unparsable_json": 3,
    }
    assert skips["skipped_recordings"] == {"missing_json": 1, "unparsable_json": 1}
    assert [r["recording"] for r in skips["skipped_recording_list"]] == [
        "00002",
        "00005",
    ]
    assert skips["examples"] == {"train": 2, "validation": 3, "test": 2}
    assert "frames skipped: 8" in capsys.readouterr().out


def test_examples_hold_labels_and_ids(tmp_path):
    manual = tmp_path / "raw"
    _write(
        manual,
        12,
        "train",
        gaze_cm=[[1, 2], [3, 4], [5, -6]],
        dot_num=[0, 0, 1],
        device="iPad Pro",
        orientation=4,
    )
    _write(manual, 13, "val")
    _write(manual, 14, "test")
    builder = _prepare(manual, tmp_path / "tfds", config="size128")
    examples = list(builder.as_dataset(split="train").as_numpy_iterator())
    examples.sort(key=lambda e: e["frame"])
    assert examples[0]["face"].shape == (128, 128, 3)
    assert examples[0]["face"].dtype == np.uint8
    np.testing.assert_allclose(
        [e["gaze_cm"] for e in examples], [[1, 2], [3, 4], [5, -6]]
    )
    assert [e["dot"] for e in examples] == [0, 0, 1]
    assert {e["recording"] for e in examples} == {12}
    assert examples[0]["device"] == b"iPad Pro"
    assert examples[0]["device_type"] == 1  # tablet
    assert examples[0]["orientation"] == 4
    assert examples[0]["face_grid"].tolist() == [8, 5, 10, 10]


@pytest.mark.slow
def test_process_pool_matches_single_process(tmp_path):
    manual = tmp_path / "raw"
    for number, split in enumerate(["train", "train", "train", "val", "test"]):
        _write(manual, number, split, gaze_cm=np.full((3, 2), number))
    single = _prepare(manual, tmp_path / "one", num_workers=1)
    pooled = _prepare(manual, tmp_path / "two", num_workers=2)

    def read(builder):
        ds = builder.as_dataset(split="train", shuffle_files=False)
        return sorted(
            (int(e["recording"]), int(e["frame"]), e["face"].tobytes())
            for e in ds.as_numpy_iterator()
        )

    assert read(single) == read(pooled)
    assert len(read(single)) == 9


def test_split_without_recordings_is_left_out(tmp_path):
    _write(tmp_path / "raw", 1, "train")
    builder = _prepare(tmp_path / "raw", tmp_path / "tfds")
    assert list(builder.info.splits) == ["train"]


def test_split_with_every_frame_skipped_says_so(tmp_path):
    _write(tmp_path / "raw", 1, "train", valid={"face": [0, 0, 0]})
    with pytest.raises(ValueError, match="invalid_detection: 3 frames"):
        _prepare(tmp_path / "raw", tmp_path / "tfds")


def test_missing_manual_dir_names_layout(tmp_path):
    with pytest.raises(AssertionError, match="frames.json"):
        _prepare(tmp_path / "nowhere", tmp_path / "tfds")


def test_manual_dir_without_recordings_names_layout(tmp_path):
    (tmp_path / "raw" / "not_a_recording").mkdir(parents=True)
    with pytest.raises(FileNotFoundError, match="appleFace.json"):
        _prepare(tmp_path / "raw", tmp_path / "tfds")


def test_rejects_bad_num_workers():
    with pytest.raises(ValueError, match="num_workers=0"):
        builder_lib.GazeCapture(num_workers=0)
