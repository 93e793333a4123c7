import json
import os

import numpy as np
import pytest

from tat_keras import calibration
from tat_keras import smoothing
from tat_keras.data.gaze_capture import layout
from tat_keras.inference import detector as detector_lib
from tat_keras.inference import end_to_end
from tat_keras.inference import estimator as estimator_lib

FACE = np.array([200.0, 100.0, 240.0, 240.0])
LEFT = np.array([140.0, 60.0, 60.0, 60.0])
RIGHT = np.array([40.0, 60.0, 60.0, 60.0])
# What the fake detector finds: the data's boxes, shifted.
FOUND_FACE = FACE + [6.0, -4.0, 10.0, 10.0]
RATE = 25.0  # Frames per second of the recordings written here.


class _Detector:
    """The data's boxes shifted, or no face on a dark frame (mean below 40)."""

    def detect(self, frame):
        if frame.mean() < 40:
            return None
        return detector_lib.Detection(FOUND_FACE, LEFT, RIGHT, (True, True), FOUND_FACE)


def _run(inputs):
    """Gaze and a 3-D feature from the crops' mean pixels."""
    means = np.stack([inputs[k].mean(axis=(1, 2, 3)) for k in ("face", "left_eye", "right_eye")], -1)
    gaze = np.stack([0.05 * (means[:, 1] - means[:, 2]) + 0.01 * means[:, 0],
                     -0.02 * means[:, 0]], axis=-1)
    return {"gaze_cm": gaze, "final_feature": means / 255.0}


def _frames(num, dark, seed):
    rng = np.random.default_rng(seed)
    for i in range(num):
        frame = rng.integers(60, 256, (240, 480, 3), dtype=np.uint8)
        yield frame // 8 if i in dark else frame


def _write(root, name, device, split, dots, dark=(), invalid=(), seed=0):
    num = len(dots)
    valid = np.ones(num, int)
    valid[list(invalid)] = 0
    rng = np.random.default_rng(seed)
    dot_ids = np.asarray(dots)
    targets = rng.uniform(-6, 6, (dot_ids.max() + 1, 2))
    layout.write_recording(
        os.path.join(root, name), _frames(num, set(dark), seed),
        face_boxes=np.tile(FACE, (num, 1)), left_eye_boxes=LEFT, right_eye_boxes=RIGHT,
        face_grid=[8, 5, 10, 10], valid={"face": valid}, gaze_cm=targets[dot_ids],
        dot_num=dot_ids, dot_time=np.arange(num) / RATE, split=split, device=device, orientation=1)
    return os.path.join(root, name)


@pytest.fixture(scope="module")
def raw_dir(tmp_path_factory):
    root = str(tmp_path_factory.mktemp("raw"))
    # A phone: dots 0-3 of two frames, then a stare of six frames; frame 3
    # dark (no face), frame 5 invalid in the data, frame 7 a corrupt JPEG.
    phone = _write(root, "00001", "iPhone 6", "test", [0, 0, 1, 1, 2, 2, 3, 3] + [4] * 6,
                   dark=(3,), invalid=(5,), seed=1)
    with open(os.path.join(phone, "frames", "00007.jpg"), "wb") as f:
        f.write(b"not a jpeg")
    _write(root, "00002", "iPad Air 2", "test", [0, 1, 2, 3, 4, 5], seed=2)
    _write(root, "00003", "iPhone 6", "train", [0, 1], seed=3)
    os.makedirs(os.path.join(root, "00004"))
    with open(os.path.join(root, "00004", "info.json"), "w") as f:
        f.write("{broken")
    return root


@pytest.fixture(scope="module")
def results(raw_dir):
    model = end_to_end.ModelOutputs(_run, 32, "linear")
    estimators = end_to_end.make_estimators(model, _Detector())
    return {
        name: end_to_end.evaluate_recording(
            layout.read_recording(os.path.join(raw_dir, name)), estimators, model)
        for name in ("00001", "00002")
    }


def test_list_test_recordings_names_the_test_split_and_the_broken(raw_dir):
    names, skipped = end_to_end.list_test_recordings(raw_dir)
    assert names == ["00001", "00002"]
    assert [name for name, _ in skipped] == ["00004"]
    assert "unparsable_json" in skipped[0][1]
    with pytest.raises(FileNotFoundError, match="No folder of recordings"):
        end_to_end.list_test_recordings(os.path.join(raw_dir, "missing"))


def test_recording_frame_rate_reads_dot_times(raw_dir):
    recording = layout.read_recording(os.path.join(raw_dir, "00001"))
    assert end_to_end.recording_frame_rate(recording) == pytest.approx(RATE, rel=1e-6)
    recording.dot["Time"] = np.zeros(recording.num_frames)
    assert end_to_end.recording_frame_rate(recording, default=12.0) == 12.0


def test_evaluate_recording_runs_both_paths_like_the_estimator(raw_dir, results):
    result = results["00001"]
    recording = layout.read_recording(os.path.join(raw_dir, "00001"))
    np.testing.assert_array_equal(result["readable"], np.arange(14) != 7)
    np.testing.assert_array_equal(result["face_found"], ~np.isin(np.arange(14), [3, 7]))
    np.testing.assert_array_equal(result["valid"], np.arange(14) != 5)
    np.testing.assert_array_equal(result["dot"], recording.dot["DotNum"])
    np.testing.assert_allclose(result["true_cm"][:, 0], recording.dot["XCam"])
    assert str(result["device"]) == "iPhone 6" and set(result["device_type"]) == {0}
    assert set(results["00002"]["device_type"]) == {1}

    # The reference: a fresh estimator without a filter, frame by frame.
    reference = estimator_lib.GazeEstimator(_run_gaze, 32, detector=_Detector(), smoother=None)
    for i in range(14):
        if i == 7:
            assert np.all(np.isnan(result["end_to_end_cm"][i]))
            assert np.all(np.isnan(result["crops_cm"][i]))
            continue
        frame = layout.decode_jpeg(os.path.join(recording.path, "frames", f"{i:05d}.jpg"))
        found = reference.estimate(frame, device="iPhone 6", orientation=1, timestamp=i)
        if i == 3:
            assert not found.face_found and np.all(np.isnan(result["end_to_end_cm"][i]))
        else:
            np.testing.assert_allclose(result["end_to_end_cm"][i], found.gaze_cm)
            np.testing.assert_allclose(result["face_box"][i], FOUND_FACE)
            np.testing.assert_allclose(
                result["end_to_end_feature"][i], _features(frame, FOUND_FACE), rtol=1e-6)
        boxed = reference.estimate_from_boxes(
            frame, FACE, LEFT, RIGHT, device="iPhone 6", orientation=1, timestamp=i + 0.5)
        if i == 5:
            assert np.all(np.isnan(result["crops_cm"][i]))
        else:
            np.testing.assert_allclose(result["crops_cm"][i], boxed.gaze_cm)
            np.testing.assert_allclose(
                result["crops_feature"][i], _features(frame, FACE), rtol=1e-6)
    # The data's crops run through the default One Euro filter at frame / rate.
    rows = np.flatnonzero(np.all(np.isfinite(result["crops_cm"]), axis=1))
    expected = smoothing.filter_sequence(
        smoothing.OneEuroFilter(estimator_lib.DEFAULT_MIN_CUTOFF, estimator_lib.DEFAULT_BETA,
                                estimator_lib.DEFAULT_D_CUTOFF),
        result["crops_cm"][rows], rows / RATE)
    np.testing.assert_allclose(result["crops_smoothed_cm"][rows], expected)
    assert np.all(result["end_to_end_seconds"][result["readable"]] >= 0)
    assert np.isnan(result["end_to_end_seconds"][7])


def _run_gaze(inputs):
    return _run(inputs)["gaze_cm"]


def _features(frame, face_box):
    """The fake model's feature for the crops of `face_box`, via the estimator."""
    model = end_to_end.ModelOutputs(_run, 32)
    estimator = estimator_lib.GazeEstimator(model, 32, detector=_Detector(), smoother=None)
    estimator.estimate_from_boxes(frame, face_box, LEFT, RIGHT, device="iPhone 6",
                                  orientation=1, timestamp=0.0)
    return model.last_feature


def test_evaluate_recording_with_a_stride_and_a_clock(raw_dir):
    recording = layout.read_recording(os.path.join(raw_dir, "00002"))
    model = end_to_end.ModelOutputs(_run, 32)
    ticks = iter(np.arange(0.0, 1000.0, 0.5))
    result = end_to_end.evaluate_recording(
        recording, end_to_end.make_estimators(model, _Detector()), model,
        frame_stride=2, frame_rate=10.0, clock=lambda: next(ticks))
    np.testing.assert_array_equal(result["frame"], [0, 2, 4])
    np.testing.assert_allclose(result["end_to_end_seconds"], 0.5)
    with pytest.raises(ValueError, match="frame_stride must be a positive integer"):
        end_to_end.evaluate_recording(recording, {}, model, frame_stride=0)


def test_save_and_load_result_keep_arrays_and_refuse_another_signature(tmp_path, results):
    path = str(tmp_path / "recordings" / "00001.npz")
    signature = {"model_sha256": "abc", "detector": "haar"}
    end_to_end.save_result(path, results["00001"], signature)
    loaded = end_to_end.load_result(path, signature)
    assert sorted(loaded) == sorted(results["00001"])
    for key, value in results["00001"].items():
        np.testing.assert_array_equal(loaded[key], value)
    assert end_to_end.load_result(path, {**signature, "detector": "blazeface"}) is None
    assert end_to_end.load_result(str(tmp_path / "none.npz"), signature) is None
    with open(path, "wb") as f:
        f.write(b"truncated")
    assert end_to_end.load_result(path, signature) is None
    assert os.listdir(tmp_path / "recordings") == ["00001.npz"]


def _sequence_msd(predicted, recording, dot, min_length):
    sigmas = []
    for key in sorted(set(zip(recording.tolist(), dot.tolist()))):
        rows = (recording == key[0]) & (dot == key[1])
        if rows.sum() >= min_length:
            centred = predicted[rows] - predicted[rows].mean(axis=0)
            sigmas.append(np.sqrt(np.mean(np.sum(centred**2, axis=1))))
    return np.mean(sigmas)


def test_summarize_against_numpy():
    rng = np.random.default_rng(3)
    n = 60
    merged = {
        "recording": np.repeat([1, 2, 3], 20),
        "dot": np.tile(np.repeat([0, 1, 2, 3], 5), 3),
        "device_type": np.repeat([0, 0, 1], 20),
        "true_cm": rng.normal(size=(n, 2)),
        "readable": rng.uniform(size=n) > 0.05,
        "valid": rng.uniform(size=n) > 0.1,
        "end_to_end_seconds": rng.uniform(0.002, 0.02, n),
        "decode_seconds": rng.uniform(0.001, 0.002, n),
        "face_box": rng.uniform(50, 60, (n, 4)),
        "data_face_box": rng.uniform(50, 60, (n, 4)),
    }
    merged["face_found"] = merged["readable"] & (rng.uniform(size=n) > 0.2)
    for path, noise in (("end_to_end", 1.0), ("crops", 0.8)):
        estimate = merged["true_cm"] + rng.normal(0, noise, (n, 2))
        has = merged["face_found"] if path == "end_to_end" else merged["valid"] & merged["readable"]
        merged[f"{path}_cm"] = np.where(has[:, None], estimate, np.nan)
        merged[f"{path}_smoothed_cm"] = np.where(has[:, None], 0.5 * estimate, np.nan)
    summary = end_to_end.summarize(merged, msd_min_length=3)

    readable, found, valid = merged["readable"], merged["face_found"], merged["valid"]
    assert summary["frames"]["with_face"] == found.sum()
    assert summary["frames"]["face_share"] == pytest.approx(found.sum() / readable.sum())
    assert summary["frames"]["face_share_of_valid"] == pytest.approx(
        (found & valid).sum() / (valid & readable).sum())
    assert summary["frames"]["unreadable"] == (~readable).sum()
    for path in end_to_end.PATHS:
        rows = np.all(np.isfinite(merged[f"{path}_cm"]), axis=1)
        errors = np.linalg.norm(merged[f"{path}_cm"] - merged["true_cm"], axis=1)
        block = summary[path]
        assert block["frames"] == rows.sum()
        assert block["error_cm"] == pytest.approx(errors[rows].mean())
        assert block["error_cm_phone"] == pytest.approx(
            errors[rows & (merged["device_type"] == 0)].mean())
        assert block["error_cm_tablet"] == pytest.approx(
            errors[rows & (merged["device_type"] == 1)].mean())
        assert block["msd_cm"] == pytest.approx(_sequence_msd(
            merged[f"{path}_cm"][rows], merged["recording"][rows], merged["dot"][rows], 3))
        assert block["smoothed_msd_cm"] == pytest.approx(0.5 * block["msd_cm"])
    both = found & valid
    e2e = np.linalg.norm(merged["end_to_end_cm"][both] - merged["true_cm"][both], axis=1).mean()
    crops = np.linalg.norm(merged["crops_cm"][both] - merged["true_cm"][both], axis=1).mean()
    same = summary["same_frames"]
    assert same["frames"] == both.sum()
    assert same["ratio"] == pytest.approx(e2e / crops)
    assert same["target_holds"] == (e2e / crops <= 1.1)
    seconds = merged["end_to_end_seconds"]
    assert summary["latency"]["median_ms"] == pytest.approx(1000 * np.median(seconds[readable]))
    assert summary["latency"]["p95_ms"] == pytest.approx(1000 * np.percentile(seconds[readable], 95))
    assert summary["latency"]["with_face_p95_ms"] == pytest.approx(
        1000 * np.percentile(seconds[found], 95))
    assert summary["face_iou"] == pytest.approx(np.median(detector_lib.box_iou(
        merged["face_box"][both], merged["data_face_box"][both])))


def test_summarize_of_real_results_is_json_ready(results):
    merged = end_to_end.merge(results.values())
    summary = end_to_end.summarize(merged)
    json.dumps(summary)
    assert summary["frames"]["total"] == 20 and summary["frames"]["unreadable"] == 1
    assert summary["end_to_end"]["msd_sequences"] == 1  # The phone's stare of six frames.
    text = end_to_end.format_markdown(summary, description="linear model")
    assert text.startswith("linear model")
    assert f"| end to end (the detector's boxes) | {summary['end_to_end']['frames']} |" in text
    with pytest.raises(ValueError, match="No recording was evaluated"):
        end_to_end.merge([])


def test_dots_in_order_keeps_the_order_shown():
    assert end_to_end.dots_in_order([7, 7, 2, 9, 2, 1]).tolist() == [7, 2, 9, 1]


def _calibration_data(with_feature=True):
    """Two subjects, eight dots of three frames; a biased linear prediction."""
    rng = np.random.default_rng(5)
    recording = np.repeat([10, 11], 24)
    dot = np.tile(np.repeat([5, 3, 0, 7, 1, 2, 6, 4], 3), 2)
    targets = rng.uniform(-5, 5, (2, 8, 2))
    true = targets[np.repeat([0, 1], 24), dot]
    predicted = 0.8 * true + [0.7, -1.2] + rng.normal(0, 0.3, true.shape)
    predicted[4] = np.nan  # A frame without a face (second frame of dot 3).
    feature = np.concatenate([predicted, rng.normal(size=(48, 2))], axis=1)
    return {
        "recording": recording, "dot": dot, "true_cm": true,
        "device_type": np.repeat([0, 1], 24),
        "end_to_end_cm": predicted,
        "end_to_end_feature": feature if with_feature else np.zeros((48, 0), np.float32),
    }


def test_calibrate_recordings_against_the_calibrators():
    merged = _calibration_data()
    records, skipped = end_to_end.calibrate_recordings(merged, [0, 3, 5, 9])
    assert [(s["subject"], s["k"]) for s in skipped] == [(10, 9), (11, 9)]
    by_key = {(r["subject"], r["k"]): r for r in records}
    rows = (merged["recording"] == 10) & np.isfinite(merged["end_to_end_cm"][:, 0])
    errors = np.linalg.norm(merged["end_to_end_cm"] - merged["true_cm"], axis=1)
    assert by_key[10, 0]["error_after"] == by_key[10, 0]["error_before"] == pytest.approx(
        errors[rows].mean())
    assert by_key[10, 0]["calibrator"] == "none"
    for k, method in ((3, "affine"), (5, "ridge")):
        first = [5, 3, 0, 7, 1][:k]  # The order the subject saw the dots.
        chosen = rows & np.isin(merged["dot"], first)
        test = rows & ~np.isin(merged["dot"], first)
        calibrator = calibration.make_calibrator(method)
        samples = {"gaze_cm": merged["end_to_end_cm"], "final_feature": merged["end_to_end_feature"]}
        samples = {key: samples[key] for key in calibrator.requires}
        calibrator.fit({key: v[chosen] for key, v in samples.items()}, merged["true_cm"][chosen])
        after = calibrator.predict({key: v[test] for key, v in samples.items()})
        record = by_key[10, k]
        assert record["calibrator"] == method and record["num_calibration_points"] == k
        assert record["calibration_dots"] == first
        assert record["num_calibration_samples"] == chosen.sum()
        assert record["num_test_samples"] == test.sum()
        assert record["error_before"] == pytest.approx(errors[test].mean())
        assert record["error_after"] == pytest.approx(
            np.linalg.norm(after - merged["true_cm"][test], axis=1).mean())
        assert record["error_after"] < record["error_before"]
    rows = end_to_end.summarize_calibration(records, merged)
    phone = [r for r in rows if r["group"] == "phone" and r["k"] == 3][0]
    assert phone["num_subjects"] == 1 and phone["error_after"] == by_key[10, 3]["error_after"]
    assert {r["group"] for r in rows} == {"all", "phone", "tablet"}


def test_calibrate_recordings_refuses_what_it_cannot_do():
    with pytest.raises(ValueError, match="does not output"):
        end_to_end.calibrate_recordings(_calibration_data(with_feature=False), [5])
    records, _ = end_to_end.calibrate_recordings(_calibration_data(with_feature=False), [3])
    assert {r["calibrator"] for r in records} == {"affine"}
    with pytest.raises(ValueError, match="must be >= 0"):
        end_to_end.calibrate_recordings(_calibration_data(), [-1])
    with pytest.raises(ValueError, match="paths must be among"):
        end_to_end.calibrate_recordings(_calibration_data(), [3], paths=("camera",))


def test_plot_calibration_and_its_table(tmp_path):
    merged = _calibration_data()
    records, _ = end_to_end.calibrate_recordings(merged, [0, 3, 5])
    rows = end_to_end.summarize_calibration(records, merged)
    path = end_to_end.plot_calibration(rows, str(tmp_path / "plots" / "calibration.png"),
                                       title="test")
    with open(path, "rb") as f:
        assert f.read(8) == b"\x89PNG\r\n\x1a\n"
    with pytest.raises(ValueError, match="must name a .png"):
        end_to_end.plot_calibration(rows, str(tmp_path / "calibration.jpg"))
    with pytest.raises(ValueError, match="No end-to-end calibration rows"):
        end_to_end.plot_calibration([], str(tmp_path / "empty.png"))
    summary = end_to_end.summarize({
        **merged,
        "readable": np.ones(48, bool), "valid": np.ones(48, bool),
        "face_found": np.isfinite(merged["end_to_end_cm"][:, 0]),
        "end_to_end_smoothed_cm": merged["end_to_end_cm"],
        "crops_cm": merged["true_cm"] + 0.5, "crops_smoothed_cm": merged["true_cm"] + 0.5,
        "end_to_end_seconds": np.full(48, 0.004), "decode_seconds": np.full(48, 0.001),
        "face_box": np.tile(FACE, (48, 1)), "data_face_box": np.tile(FACE, (48, 1)),
    })
    text = end_to_end.format_markdown(summary, rows)
    three = [r for r in rows if r["k"] == 3 and r["group"] == "all"][0]
    assert (f"| 3 | all | 2 | {three['error_before']:.2f} | {three['error_after']:.2f} ("
            in text)
    assert "| end to end, every readable frame | 48 | 4.00 | 4.00 |" in text


def test_load_model_refuses_other_files(tmp_path):
    path = tmp_path / "model.tflite"
    path.write_bytes(b"abc")
    with pytest.raises(ValueError, match="neither a .tflite flatbuffer nor a .keras model"):
        end_to_end.load_model(str(path))
    with pytest.raises(FileNotFoundError, match="No model file at"):
        end_to_end.load_model(str(tmp_path / "missing.tflite"))
    assert end_to_end.file_fingerprint(str(path)) == (
        "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")
