"""Tests of the synthetic twin: layout, labels, geometry, nuisances, determinism."""

import dataclasses
import json
import os

import numpy as np
import pytest
from PIL import Image

from tat_keras.data import devices
from tat_keras.data import devices_test
from tat_keras.data import synthetic
from tat_keras.data.gaze_capture import layout
from tat_keras.data.synthetic import geometry
from tat_keras.data.synthetic import plan
from tat_keras.data.synthetic import render
from tat_keras.data.synthetic import roster

_JSON_FILES = layout.REQUIRED_JSON_FILES
_BOX_KEYS = {"X", "Y", "W", "H", "IsValid"}

_TINY = synthetic.SyntheticConfig(
    num_train_subjects=2,
    num_val_subjects=1,
    num_test_subjects=1,
    dots_per_recording=2,
    frames_per_dot=3,
    stare_dots_per_recording=2,
    stare_frames_per_dot=6,
    seed=7,
)


def _load(recording_dir):
    content = {}
    for name in _JSON_FILES:
        with open(os.path.join(recording_dir, name)) as f:
            content[name] = json.load(f)
    return content


def _recordings(directory):
    return sorted(n for n in os.listdir(directory) if n.isdigit())


@pytest.fixture(scope="module")
def tiny_dir(tmp_path_factory):
    directory = str(tmp_path_factory.mktemp("tiny"))
    summary = synthetic.render_dataset(directory, _TINY, progress=False)
    return directory, summary


def test_layout_and_json_keys(tiny_dir):
    directory, summary = tiny_dir
    names = _recordings(directory)
    assert len(names) == _TINY.num_recordings == summary["recordings"]
    assert all(len(n) == 5 for n in names)
    total = 0
    for name in names:
        recording = os.path.join(directory, name)
        content = _load(recording)
        frames = content["frames.json"]
        n = len(frames)
        total += n
        assert frames == [f"{i:05d}.jpg" for i in range(n)]
        for i in (0, n - 1):
            image = Image.open(os.path.join(recording, "frames", frames[i]))
            orientation = content["screen.json"]["Orientation"][i]
            expected = (480, 640) if orientation <= 2 else (640, 480)
            assert image.format == "JPEG" and image.size == expected
        for box_file in (
            "appleFace.json",
            "appleLeftEye.json",
            "appleRightEye.json",
            "faceGrid.json",
        ):
            assert set(content[box_file]) == _BOX_KEYS
            assert all(len(v) == n for v in content[box_file].values())
        dot = content["dotInfo.json"]
        assert set(dot) == {"DotNum", "XPts", "YPts", "XCam", "YCam", "Time"}
        assert all(len(v) == n for v in dot.values())
        screen = content["screen.json"]
        assert set(screen) == {"H", "W", "Orientation"}
        assert all(len(v) == n for v in screen.values())
        info = content["info.json"]
        assert set(info) == {
            "TotalFrames",
            "NumFaceDetections",
            "NumEyeDetections",
            "Dataset",
            "DeviceName",
        }
        assert info["TotalFrames"] == n
        assert info["Dataset"] in ("train", "val", "test")
        assert info["DeviceName"] in devices.DEVICES
        assert info["NumFaceDetections"] == sum(content["appleFace.json"]["IsValid"])
    assert total == summary["frames"]
    assert os.path.isfile(os.path.join(directory, synthetic.SUMMARY_FILE))


def test_split_by_subject(tiny_dir):
    directory, summary = tiny_dir
    splits = {}
    for name in _recordings(directory):
        info = _load(os.path.join(directory, name))["info.json"]
        splits.setdefault(info["Dataset"], []).append(name)
    assert {k: len(v) for k, v in splits.items()} == {"train": 2, "val": 1, "test": 1}
    assert synthetic.recording_splits(_TINY) == [
        _load(os.path.join(directory, n))["info.json"]["Dataset"]
        for n in _recordings(directory)
    ]
    for split, counts in summary["splits"].items():
        assert counts["recordings"] == len(splits[split])
    assert synthetic.count_frames(_TINY) == {
        k: v["frames"] for k, v in summary["splits"].items()
    }


def test_labels_follow_device_geometry(tiny_dir):
    directory, _ = tiny_dir
    for name in _recordings(directory):
        content = _load(os.path.join(directory, name))
        device = devices.DEVICES[content["info.json"]["DeviceName"]]
        dot, screen = content["dotInfo.json"], content["screen.json"]
        for i in range(len(dot["DotNum"])):
            orientation = screen["Orientation"][i]
            x_ref, y_ref = devices_test._camera_cm_numpy(
                device, dot["XPts"][i], dot["YPts"][i], orientation
            )
            assert abs(dot["XCam"][i] - x_ref) < 2e-3
            assert abs(dot["YCam"][i] - y_ref) < 2e-3
            width, height = devices.screen_size_points(device, orientation)
            assert (screen["W"][i], screen["H"][i]) == (width, height)
            assert 0 <= dot["XPts"][i] <= width and 0 <= dot["YPts"][i] <= height
            assert (
                _TINY.gaze_x_range_cm[0] <= dot["XCam"][i] <= (_TINY.gaze_x_range_cm[1])
            )
            assert (
                _TINY.gaze_y_range_cm[0] <= dot["YCam"][i] <= (_TINY.gaze_y_range_cm[1])
            )


def test_eye_boxes_relative_to_face_left_eye_on_image_right(tiny_dir):
    directory, _ = tiny_dir
    checked = 0
    for name in _recordings(directory):
        content = _load(os.path.join(directory, name))
        face = content["appleFace.json"]
        left, right = content["appleLeftEye.json"], content["appleRightEye.json"]
        for i in range(len(face["X"])):
            if not (face["IsValid"][i] and left["IsValid"][i] and right["IsValid"][i]):
                continue
            checked += 1
            for eye in (left, right):
                # Eye centres, relative to the face box, lie inside the face box.
                cx = eye["X"][i] + eye["W"][i] / 2
                cy = eye["Y"][i] + eye["H"][i] / 2
                assert 0 < cx < face["W"][i] and 0 < cy < face["H"][i]
                # About 0.24 seen from the front; the far eye of a head turned
                # by up to 35 degrees is foreshortened by cos(35) = 0.82.
                assert 0.15 < eye["W"][i] / face["W"][i] < 0.5
                assert eye["W"][i] == eye["H"][i]
            assert left["X"][i] > right["X"][i] + 0.2 * face["W"][i]
    assert checked > 10


def test_face_grid_inside_grid(tiny_dir):
    directory, _ = tiny_dir
    for name in _recordings(directory):
        grid = _load(os.path.join(directory, name))["faceGrid.json"]
        for x, y, w, h, valid in zip(*(grid[k] for k in "XYWH"), grid["IsValid"]):
            if valid:
                assert 1 <= x <= 25 and 1 <= y <= 25
                assert 1 <= w and 1 <= h and x + w - 1 <= 25 and y + h - 1 <= 25


def test_dots_and_stare_sequences(tiny_dir):
    directory, _ = tiny_dir
    found = 0
    for name in _recordings(directory):
        content = _load(os.path.join(directory, name))
        dot = content["dotInfo.json"]
        valid = (
            np.array(content["appleFace.json"]["IsValid"])
            & np.array(content["appleLeftEye.json"]["IsValid"])
            & np.array(content["appleRightEye.json"]["IsValid"])
        )
        dot_num = np.array(dot["DotNum"])
        assert np.all(np.diff(dot_num) >= 0)  # Each dot's frames are consecutive.
        stares = 0
        for number in np.unique(dot_num):
            chosen = dot_num == number
            assert len(set(np.array(dot["XCam"])[chosen])) == 1
            assert len(set(np.array(dot["YCam"])[chosen])) == 1
            assert np.all(np.diff(np.array(dot["Time"])[chosen]) > 0)
            if chosen.sum() == _TINY.frames_per_dot:
                continue
            stares += 1
            assert valid[chosen].sum() >= _TINY.stare_frames_per_dot
        is_test = content["info.json"]["Dataset"] == "test"
        assert stares == (_TINY.stare_dots_per_recording if is_test else 0)
        assert len(np.unique(dot_num)) == _TINY.dots_per_recording + stares
        found += stares
    assert found == _TINY.stare_dots_per_recording * _TINY.num_test_subjects


def test_presets_leave_dots_for_calibration_and_evaluation():
    for name, config in synthetic.PRESETS.items():
        # Up to 13 calibration dots and at least 10 others, besides the stares.
        assert config.dots_per_recording >= 23, name


def _recording_bytes(directory):
    content = {}
    for root, _, files in os.walk(directory):
        for name in files:
            path = os.path.join(root, name)
            with open(path, "rb") as f:
                content[os.path.relpath(path, directory)] = f.read()
    return content


def test_determinism_from_seed(tmp_path):
    config = dataclasses.replace(_TINY, dots_per_recording=1, frames_per_dot=2)
    outputs = []
    for run, seed in (("a", 7), ("b", 7), ("c", 8)):
        directory = str(tmp_path / run)
        synthetic.render_recording(
            directory,
            recording_index=3,
            split="train",
            config=dataclasses.replace(config, seed=seed),
        )
        outputs.append(_recording_bytes(directory))
    assert outputs[0] == outputs[1]
    assert outputs[0]["frames/00000.jpg"] != outputs[2]["frames/00000.jpg"]


def test_same_dataset_with_workers(tmp_path):
    config = dataclasses.replace(
        _TINY, num_test_subjects=0, dots_per_recording=1, frames_per_dot=1
    )
    synthetic.render_dataset(str(tmp_path / "one"), config, progress=False)
    synthetic.render_dataset(
        str(tmp_path / "two"), config, num_workers=2, progress=False
    )
    one = _recording_bytes(str(tmp_path / "one"))
    two = _recording_bytes(str(tmp_path / "two"))
    one.pop(synthetic.SUMMARY_FILE)
    two.pop(synthetic.SUMMARY_FILE)
    assert one == two


def test_blinks_are_invalid_eyes(tmp_path):
    config = dataclasses.replace(
        _TINY,
        blink_rate=1.0,
        face_miss_rate=0.0,
        edge_rate=0.0,
        dots_per_recording=1,
        frames_per_dot=10,
    )
    directory = str(tmp_path / "blink")
    synthetic.render_recording(
        directory, recording_index=0, split="train", config=config
    )
    content = _load(directory)
    # A blink lasts five frames; the eyes are lost in the three most closed,
    # the half-closed ones are kept.
    expected = [1, 0, 0, 0, 1] * 2
    assert content["appleLeftEye.json"]["IsValid"] == expected
    assert content["appleRightEye.json"]["IsValid"] == expected
    assert content["appleFace.json"]["IsValid"] == [1] * 10
    assert content["info.json"]["NumEyeDetections"] == 4


def test_faces_reach_past_the_frame_edge(tmp_path):
    config = dataclasses.replace(
        _TINY, edge_rate=1.0, face_miss_rate=0.0, dots_per_recording=4, frames_per_dot=1
    )
    directory = str(tmp_path / "edge")
    synthetic.render_recording(
        directory, recording_index=1, split="train", config=config
    )
    content = _load(directory)
    face = content["appleFace.json"]
    outside = 0
    for i, orientation in enumerate(content["screen.json"]["Orientation"]):
        width, height = (480, 640) if orientation <= 2 else (640, 480)
        x, y, w, h = (face[k][i] for k in "XYWH")
        assert face["IsValid"][i] == 1
        outside += x < 0 or y < 0 or x + w > width or y + h > height
    assert outside == 4


def _frame(target_cm, **changes):
    values = dict(
        dot_num=0,
        orientation=1,
        x_pts=0.0,
        y_pts=0.0,
        x_cm=target_cm[0],
        y_cm=target_cm[1],
        time=0.0,
        eye_mid=np.array([0.0, -3.0, 30.0]),
        head_angles=(0.0, 0.0, 0.0),
        look_at=np.array([target_cm[0], target_cm[1], 0.0]),
        drift=(0.0, 0.0),
        opening=1.0,
        face_detected=True,
        shake=None,
        exposure=1.0,
        white_balance=(1.0, 1.0, 1.0),
        noise_offset=(0, 0),
        face_error=np.zeros(3),
        eye_errors=np.zeros((2, 3)),
        gross_eye=-1,
    )
    values.update(changes)
    return plan.Frame(**values)


def _renderer(glasses_fraction=0.0, seed=0):
    rng = np.random.default_rng(seed)
    subject = synthetic.sample_subject(rng, glasses_fraction)
    conditions = synthetic.sample_conditions(rng, _TINY)
    return render.RecordingRenderer(rng, subject, conditions)


def _geometry(target_cm, renderer=None, **changes):
    renderer = renderer or _renderer()
    return renderer.geometry(_frame(target_cm, **changes))


def test_iris_turns_towards_the_dot():
    centre = _geometry((0.0, -5.0))
    for target, axis, sign in (
        ((12.0, -5.0), 0, -1),
        ((-12.0, -5.0), 0, 1),
        ((0.0, 8.0), 1, -1),
        ((0.0, -18.0), 1, 1),
    ):
        moved = _geometry(target)
        for eye_a, eye_b in zip(centre["eyes"], moved["eyes"]):
            shift = eye_b.iris[axis] - eye_a.iris[axis]
            # The subject's right (+x) is the image's left; up is the image top.
            assert np.sign(shift) == sign and abs(shift) > 3.0
    # The subject's left eye is on the right of the image.
    right_eye, left_eye = centre["eyes"]
    assert left_eye.iris[0] > right_eye.iris[0]


def test_presets_sizes():
    quick = synthetic.count_frames(synthetic.PRESETS["quick"])
    assert 3000 <= sum(quick.values()) <= 4200
    assert quick["test"] >= 8 * (3 * 30 + 26 * 2)
    # The protocol trains on 4,000 bench frames: drawn from many subjects.
    bench = synthetic.PRESETS["bench"]
    assert synthetic.count_frames(bench)["train"] >= 8000
    assert bench.num_train_subjects >= 200


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(num_train_subjects=-1), "num_train_subjects must be >= 0"),
        (
            dict(num_train_subjects=0, num_val_subjects=0, num_test_subjects=0),
            "At least one subject",
        ),
        (dict(stare_frames_per_dot=0), "stare_frames_per_dot must be >= 1"),
        (dict(devices=("Nokia",)), "devices must name profiles"),
        (dict(distance_range_cm=(50.0, 20.0)), "distance_range_cm"),
        (dict(jpeg_quality_range=(0, 90)), "jpeg_quality_range"),
        (dict(nuisances="none"), "nuisances must be one of"),
        (dict(lighting_weights=(1.0, 0.0)), "lighting_weights must be 4"),
    ],
)
def test_config_validation(kwargs, match):
    with pytest.raises(ValueError, match=match):
        synthetic.SyntheticConfig(**kwargs)


def test_refuses_non_empty_output_dir(tmp_path):
    (tmp_path / "note.txt").write_text("keep")
    config = dataclasses.replace(
        _TINY,
        num_val_subjects=0,
        num_test_subjects=0,
        num_train_subjects=1,
        dots_per_recording=1,
        frames_per_dot=1,
    )
    with pytest.raises(FileExistsError, match="output_dir is not empty"):
        synthetic.render_dataset(str(tmp_path), config, progress=False)
    synthetic.render_dataset(str(tmp_path), config, progress=False, overwrite=True)
    assert (tmp_path / "note.txt").read_text() == "keep"
    assert _recordings(str(tmp_path)) == ["00000"]


def test_glint_stays_with_the_device_while_the_iris_follows_the_dot():
    near, far = _geometry((0.0, -5.0)), _geometry((10.0, -15.0))
    for eye_a, eye_b in zip(near["eyes"], far["eyes"]):
        iris = np.hypot(*(eye_b.iris - eye_a.iris))
        glint = np.hypot(*(eye_b.glint - eye_a.glint))
        assert iris > 3.0
        # The reflection of the screen moves only with the cornea's centre of
        # curvature (0.55 cm from the eye's centre of rotation, against about
        # 1.05 cm for the iris): about half as far as the iris. A reflection of
        # the dot itself would follow it much further (over 80 %).
        assert 0.4 < glint / iris < 0.65


def test_glasses_scale_the_eye_about_the_lens():
    renderer = _renderer(glasses_fraction=1.0)
    glasses = renderer.subject.glasses
    bare = _renderer(glasses_fraction=0.0)
    assert glasses is not None and bare.subject.glasses is None
    # Same geometry with and without the lens: compare through project_head.
    frame = _frame((3.0, -8.0), head_angles=(15.0, 5.0, 0.0))
    with_lens = renderer.geometry(frame)
    subject = dataclasses.replace(renderer.subject, glasses=None)
    without = geometry.project_head(
        subject,
        renderer.conditions.device,
        frame,
        (0.0, -6.0),
        (6.0, 10.0),
    )
    for eye_a, eye_b in zip(without["eyes"], with_lens["eyes"]):
        expected = eye_b.lens + glasses.magnification * (eye_a.iris - eye_b.lens)
        np.testing.assert_allclose(eye_b.iris, expected, atol=1e-9)
        width_a = np.hypot(*(eye_a.outer - eye_a.inner))
        width_b = np.hypot(*(eye_b.outer - eye_b.inner))
        assert width_b == pytest.approx(glasses.magnification * width_a)


def test_phones_are_never_upside_down():
    config = synthetic.SyntheticConfig(orientation_weights=(0.0, 1.0, 0.0, 0.0))
    rng = np.random.default_rng(0)
    for name in roster.GAZECAPTURE_ROSTER:
        device = devices.DEVICES[name]
        probabilities = roster.orientation_probabilities(config, device)
        if device.device_type == "phone":
            assert probabilities.tolist() == [1.0, 0.0, 0.0, 0.0]
        else:
            assert probabilities.tolist() == [0.0, 1.0, 0.0, 0.0]
        assert roster.choose_orientation(rng, config, device) == (
            1 if device.device_type == "phone" else 2
        )


def test_sensor_noise_only_keeps_subjects_dots_and_boxes_still(tmp_path):
    config = dataclasses.replace(_TINY, dots_per_recording=2, stare_frames_per_dot=8)
    outputs = {}
    for mode in synthetic.NUISANCE_MODES:
        directory = str(tmp_path / mode)
        synthetic.render_recording(
            directory,
            recording_index=2,
            split="test",
            config=dataclasses.replace(config, nuisances=mode),
        )
        outputs[mode] = _load(directory)
    full, still = outputs["all"], outputs["sensor_noise_only"]
    for name in ("dotInfo.json", "screen.json", "info.json", "frames.json"):
        assert full[name] == still[name]
    for name in ("appleFace.json", "appleLeftEye.json", "appleRightEye.json"):
        assert full[name]["IsValid"] == still[name]["IsValid"]
    dot_num = np.array(still["dotInfo.json"]["DotNum"])
    moved = {}
    for mode, content in outputs.items():
        boxes = np.stack(
            [np.array(content["appleLeftEye.json"][k]) for k in "XY"], axis=-1
        )
        valid = np.array(content["appleLeftEye.json"]["IsValid"]) == 1
        spread = []
        for number in np.unique(dot_num):
            chosen = (dot_num == number) & valid
            if chosen.sum() >= 2:
                spread.append(boxes[chosen].std(axis=0).max())
        moved[mode] = max(spread)
    # Without geometric nuisances a stare's eye box stays put (rounding only).
    assert moved["sensor_noise_only"] < 1e-3 < moved["all"]


def test_detector_errors_are_correlated_over_time():
    config = dataclasses.replace(
        _TINY, dots_per_recording=1, stare_dots_per_recording=1, stare_frames_per_dot=200
    )
    _, _, _, frames = synthetic.draw_recording(config, 0, "test")
    errors = np.array([f.eye_errors[0, 0] for f in frames])
    lag_one = np.corrcoef(errors[:-1], errors[1:])[0, 1]
    assert 0.6 < lag_one < 0.95
    assert 0.6 < errors.std() < 1.4


def test_with_overrides_parses_literals_and_validates():
    quick = synthetic.PRESETS["quick"]
    config = synthetic.with_overrides(
        quick,
        ["num_train_subjects=160", "head_pose_std_deg=[0, 0, 0]",
         "nuisances=sensor_noise_only", "look_away_rate = 0.0"],
    )
    assert config.num_train_subjects == 160
    assert config.head_pose_std_deg == (0, 0, 0)  # A list becomes a tuple.
    assert config.nuisances == "sensor_noise_only"
    assert config.look_away_rate == 0.0
    assert config.num_test_subjects == quick.num_test_subjects
    assert synthetic.with_overrides(quick, []) == quick
    with pytest.raises(ValueError, match="Expected name=value"):
        synthetic.with_overrides(quick, ["glasses_fraction"])
    with pytest.raises(ValueError, match="Unknown SyntheticConfig field"):
        synthetic.with_overrides(quick, ["glases_fraction=0"])
    # The replaced config is validated like any other.
    with pytest.raises(ValueError, match="glasses_fraction must be in"):
        synthetic.with_overrides(quick, ["glasses_fraction=2"])


def test_training_subjects_can_look_at_fewer_dots(tmp_path):
    config = dataclasses.replace(_TINY, dots_per_recording=3, train_dots_per_recording=1,
                                 stare_dots_per_recording=1)
    directory = str(tmp_path)
    synthetic.render_dataset(directory, config, progress=False)
    dots = {}
    for name in _recordings(directory):
        content = _load(os.path.join(directory, name))
        with open(os.path.join(directory, name, "info.json")) as f:
            split = json.load(f)["Dataset"]
        dots.setdefault(split, set()).add(len(set(content["dotInfo.json"]["DotNum"])))
    # Training subjects: 1 dot; validation: 3; test: 3 and 1 stare dot.
    assert dots == {"train": {1}, "val": {3}, "test": {4}}


def test_train_dots_must_be_positive():
    with pytest.raises(ValueError, match="train_dots_per_recording must be None"):
        dataclasses.replace(_TINY, train_dots_per_recording=0)


def test_recordings_differ_in_length_with_a_dot_spread():
    """Each recording draws its dot count from dots +- spread; without a
    spread the plans (and so every existing preset) are unchanged."""
    from tat_keras.data.synthetic import writer

    config = dataclasses.replace(_TINY, num_train_subjects=40, num_val_subjects=0,
                                 num_test_subjects=0, dots_per_recording=6,
                                 dots_per_recording_spread=3, frames_per_dot=2)
    counts = [len(writer.draw_recording(config, i, "train")[3]) // 2
              for i in range(config.num_recordings)]
    assert min(counts) >= 3 and max(counts) <= 9
    assert len(set(counts)) >= 5  # 7 values possible; 40 draws see most.
    # The draw is the recording's: the same index gives the same length.
    assert counts[4] == len(writer.draw_recording(config, 4, "train")[3]) // 2
    flat = dataclasses.replace(config, dots_per_recording_spread=0)
    assert {len(writer.draw_recording(flat, i, "train")[3])
            for i in range(10)} == {12}
    for spread in (-1, 6, 1.5):
        with pytest.raises(ValueError, match="dots_per_recording_spread must be"):
            dataclasses.replace(config, dots_per_recording_spread=spread)


def test_tenth_preset_is_a_tenth_of_gazecapture():
    tenth = synthetic.PRESETS["tenth"]
    assert tenth.num_recordings >= 150
    # Mean frames per recording against GazeCapture's 2,445,504 / 1,474.
    mean = tenth.dots_per_recording * tenth.frames_per_dot
    assert abs(mean - 2_445_504 / 1_474) / (2_445_504 / 1_474) < 0.01
    assert tenth.num_recordings * mean >= 245_000
