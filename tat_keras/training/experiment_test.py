"""Tests of `experiment.train`: outputs, the model folder rules, determinism."""

import dataclasses
import json
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import tensorflow_datasets as tfds

from tat_keras.data.gaze_capture import layout
from tat_keras.data.gaze_capture import gaze_capture_dataset_builder
from tat_keras.training import builders
from tat_keras.training import distributed
from tat_keras.training import experiment
from tat_keras.training.config import TrainConfig

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
FACE = [200.0, 100.0, 240.0, 240.0]
EYE = [40.0, 60.0, 60.0, 60.0]


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    """Three train recordings (6 frames each), one validation, one test."""
    root = tmp_path_factory.mktemp("tiny")
    rng = np.random.default_rng(0)
    for number, split in ((1, "train"), (2, "train"), (3, "train"), (4, "val"),
                          (5, "test")):
        frames = [rng.integers(0, 255, (480, 640, 3), dtype=np.uint8) for _ in range(6)]
        layout.write_recording(
            str(root / "raw" / f"{number:05d}"), frames,
            face_boxes=[FACE] * 6, left_eye_boxes=[EYE] * 6, right_eye_boxes=[EYE] * 6,
            face_grid=[[8, 5, 10, 10]] * 6,
            gaze_cm=rng.normal(size=(6, 2)) * 3.0,
            dot_num=[0, 0, 0, 1, 1, 1], split=split, device="iPhone 6",
        )
    builder = gaze_capture_dataset_builder.GazeCapture(data_dir=str(root / "tfds"),
                                                       num_workers=1)
    builder.download_and_prepare(
        download_config=tfds.download.DownloadConfig(manual_dir=str(root / "raw")))
    return str(root / "tfds")


def _config(data_dir, **changes):
    return TrainConfig(**{
        "data_dir": data_dir, "scheme": "standard", "width_multiplier": 0.125,
        "x_bins": 8, "y_bins": 8, "batch_size": 6, "mini_generations": 1,
        "epochs_per_generation": 1, "warmup_epochs": 1, "seed": 1, **changes})


@pytest.fixture(scope="module")
def finished(data_dir, tmp_path_factory):
    """A finished two-epoch standard run: (model_dir, results)."""
    model_dir = str(tmp_path_factory.mktemp("runs") / "standard")
    return model_dir, experiment.train(_config(data_dir), model_dir, verbose=0)


def _read(*parts):
    with open(os.path.join(*parts)) as f:
        return json.load(f)


def test_a_run_writes_its_outputs(finished):
    model_dir, results = finished
    for name in ("model.keras", "config.json", "metrics.json", "history.json",
                 "generations.json", "curves.png"):
        assert os.path.exists(os.path.join(model_dir, name)), name
    assert results == _read(model_dir, "metrics.json")
    assert results["epochs"] == 2 and results["head"] == "ordinal"
    assert results["train_examples"] == 18 and results["test_examples"] == 6
    assert [h["epoch"] for h in _read(model_dir, "history.json")] == [0, 1]
    config = _read(model_dir, "config.json")
    assert config["teacher"] == "none" and config["x_low"] < config["x_high"]


def test_final_evaluation_reuses_decoded_splits_with_identical_numbers(finished, data_dir):
    import keras

    from tat_keras.data import pipeline

    model_dir, results = finished
    model = keras.models.load_model(os.path.join(model_dir, "model.keras"))
    decoded = {split: pipeline.decode_split(data_dir, split)
               for split in ("train", "validation", "test")}
    from_memory = experiment.evaluate_model(model, data_dir, decoded=decoded)
    from_files = experiment.evaluate_model(model, data_dir)
    assert from_memory == from_files
    for key, value in from_files.items():
        assert results[key] == pytest.approx(value, abs=1e-9), key


def test_finished_run_is_refused(finished, data_dir):
    model_dir, _ = finished
    with pytest.raises(FileExistsError, match="finished run .* --overwrite"):
        experiment.train(_config(data_dir), model_dir, verbose=0)


def test_bad_setting_fails_before_anything_is_written(data_dir, tmp_path):
    with pytest.raises(ValueError, match="prune_ratio"):
        experiment.train(_config(data_dir, prune_ratio=20), str(tmp_path / "run"))
    assert not os.path.exists(tmp_path / "run")


def _config_json(data_dir, **changes):
    return dataclasses.asdict(_config(data_dir, **changes).resolved())


def test_folder_with_only_a_configuration_is_a_fresh_start(data_dir, tmp_path):
    model_dir = tmp_path / "stopped"
    (model_dir / "logs" / "train").mkdir(parents=True)
    (model_dir / "checkpoints").mkdir()
    (model_dir / "config.json").write_text(json.dumps(_config_json(data_dir)))
    assert experiment._prepare_model_dir(str(model_dir), _config_json(data_dir),
                                         False) is None
    assert not (model_dir / "logs").exists()
    # Another configuration, still no checkpoint: nothing to lose either.
    (model_dir / "config.json").write_text(json.dumps(_config_json(data_dir, seed=9)))
    assert experiment._prepare_model_dir(str(model_dir), _config_json(data_dir),
                                         False) is None
    (model_dir / "notes.txt").write_text("mine")
    with pytest.raises(FileExistsError, match=r"not empty \(notes.txt\)"):
        experiment._prepare_model_dir(str(model_dir), _config_json(data_dir), False)


def _fake_checkpoint(model_dir, config_json):
    folder = model_dir / "checkpoints" / "epoch_0000"
    folder.mkdir(parents=True)
    (folder / "state.json").write_text(json.dumps({"epoch": 0}))
    (model_dir / "checkpoints" / "latest.json").write_text(
        json.dumps({"folder": "epoch_0000"}))
    (model_dir / "config.json").write_text(json.dumps(config_json))


def test_resume_needs_the_same_settings_but_not_the_same_speed_settings(data_dir,
                                                                       tmp_path):
    model_dir = tmp_path / "interrupted"
    _fake_checkpoint(model_dir, _config_json(data_dir))
    state = experiment._prepare_model_dir(
        str(model_dir), _config_json(data_dir, input_cache="none", jit_compile=True),
        False)
    assert state["epoch"] == 0
    with pytest.raises(ValueError, match=r"other settings \(seed: 1 -> 2\)"):
        experiment._prepare_model_dir(str(model_dir), _config_json(data_dir, seed=2),
                                      False)
    assert experiment._prepare_model_dir(str(model_dir), _config_json(data_dir),
                                         True) is None
    assert os.listdir(model_dir) == []


def test_a_config_json_saved_before_resolving_its_weights_resumes(data_dir, tmp_path):
    # Written by an earlier version: the scheme's weights unresolved (the
    # standard scheme trained with lambda_hard=1 all the same), a field missing.
    saved = {**_config_json(data_dir), "lambda_hard": 0.2, "lambda_mix": 0.4}
    del saved["rebirth_moments"]
    model_dir = tmp_path / "older"
    _fake_checkpoint(model_dir, saved)
    assert experiment._prepare_model_dir(str(model_dir), _config_json(data_dir),
                                         False)["epoch"] == 0
    with pytest.raises(ValueError, match=r"other settings \(rebirth_moments: "
                                         r"'zero' -> 'fresh'\)"):
        experiment._prepare_model_dir(
            str(model_dir), _config_json(data_dir, rebirth_moments="fresh"), False)


class _Built(Exception):
    """Stops `experiment.train` once every piece of the run is built."""


PLACEMENTS = {
    "default": distributed.Placement(),
    "mirrored": distributed.Placement(num_replicas=2),
    "multi_worker": distributed.Placement(num_workers=2, num_replicas=2),
}


@pytest.mark.parametrize("strategy", sorted(PLACEMENTS))
@pytest.mark.parametrize("scheme", ["standard", "sd", "tat"])
def test_config_json_records_what_every_piece_is_built_from(data_dir, tmp_path,
                                                           monkeypatch, scheme,
                                                           strategy):
    # The pieces of a run under each strategy's placement, up to `fit`.
    monkeypatch.setattr(distributed.Placement, "of",
                        staticmethod(lambda strategy_: PLACEMENTS[strategy]))
    used = {}

    def recording(name, stop=False, run=True):
        build = getattr(builders, name)

        def wrapper(config, *args, **kwargs):
            used[name] = (config, build(config, *args, **kwargs) if run else None)
            if stop:
                raise _Built()
            return used[name][1]
        monkeypatch.setattr(builders, name, wrapper)

    # Op determinism is process-wide: recorded here, not switched on.
    recording("set_determinism", run=False)
    for name in ("build_student", "build_trainer", "build_teacher_bank",
                 "build_inputs"):
        recording(name)
    recording("build_callbacks", stop=True)
    model_dir = tmp_path / "run"
    with pytest.raises(_Built):
        experiment.train(_config(data_dir, scheme=scheme, mini_generations=2, dwo=True,
                                 dwo_center_bins=4), str(model_dir), verbose=0)
    recorded = _read(model_dir, "config.json")
    assert len(used) == 6
    for name, (config, _) in used.items():
        assert dataclasses.asdict(config) == recorded, name
    trainer, bank, inputs = (used[name][1] for name in (
        "build_trainer", "build_teacher_bank", "build_inputs"))
    assert (trainer.lambda_hard, trainer.lambda_mix, trainer.lambda_teacher) == (
        recorded["lambda_hard"], recorded["lambda_mix"], recorded["lambda_teacher"])
    assert (trainer.mixup is not None) == recorded["mixup"]
    assert trainer.dwo["num_center_bins"] == recorded["dwo_center_bins"] == 4
    assert bool(trainer.jit_compile) == recorded["jit_compile"]
    assert bank.policy == recorded["teacher"]
    assert bool(inputs.decoded) == (recorded["input_cache"] == "memory")
    # What each scheme and strategy resolves to, written out.
    assert (recorded["teacher"], recorded["lambda_hard"], recorded["lambda_mix"]) == {
        "standard": ("none", 1.0, 0.0), "sd": ("last", 0.2, 0.0),
        "tat": ("random", 0.2, 0.4)}[scheme]
    assert (recorded["jit_compile"], recorded["input_cache"],
            recorded["deterministic"]) == {
        "default": (False, "memory", False), "mirrored": (False, "none", False),
        "multi_worker": (False, "none", True)}[strategy]


@pytest.mark.slow  # builders_test checks the regression step against NumPy.
def test_regression_head_trains_saves_and_evaluates(data_dir, tmp_path):
    import keras

    import tat_keras  # noqa: F401

    config = _config(data_dir, head="regression", epochs_per_generation=1,
                     warmup_epochs=0)
    results = experiment.train(config, str(tmp_path / "l2"), verbose=0)
    assert results["head"] == "regression" and np.isfinite(results["test_error_cm"])
    model = keras.models.load_model(str(tmp_path / "l2" / "model.keras"))
    assert type(model).__name__ == "GazeRegressor"
    again = experiment.evaluate_model(model, data_dir)
    assert again["test_error_cm"] == pytest.approx(results["test_error_cm"], abs=1e-9)


_TWICE = textwrap.dedent("""
    import json, sys
    import numpy as np
    import keras
    from tat_keras.training import experiment
    from tat_keras.training.config import TrainConfig

    config = TrainConfig(**json.loads(sys.argv[1]))
    results, weights = [], []
    for name in ("a", "b"):
        results.append(experiment.train(config, sys.argv[2] + name, verbose=0))
        model = keras.models.load_model(sys.argv[2] + name + "/model.keras")
        weights.append(model.get_weights())
    same = all(np.array_equal(x, y) for x, y in zip(*weights))
    histories = [json.load(open(sys.argv[2] + n + "/history.json")) for n in "ab"]
    for r in results:
        r.pop("train_seconds")
    print(json.dumps({"same_weights": same, "same_metrics": results[0] == results[1],
                      "same_history": histories[0] == histories[1],
                      "loss": histories[0][-1]["loss"]}))
""")


@pytest.mark.slow
def test_deterministic_runs_repeat_to_the_last_digit(data_dir, tmp_path):
    # TAT with mixup, DwO and augmentation: every random draw of a run.
    config = dict(data_dir=data_dir, scheme="tat", dwo=True, dwo_center_bins=4,
                  width_multiplier=0.125, x_bins=8, y_bins=8, batch_size=6,
                  mini_generations=2, epochs_per_generation=1, warmup_epochs=0,
                  augment=True, deterministic=True, seed=4)
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2",
               PYTHONPATH=os.pathsep.join([REPO, os.environ.get("PYTHONPATH", "")]))
    result = subprocess.run([sys.executable, "-c", _TWICE, json.dumps(config),
                             str(tmp_path / "run_")], capture_output=True, text=True,
                            env=env, cwd=REPO)
    assert result.returncode == 0, result.stderr[-3000:]
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert report["same_weights"] and report["same_metrics"] and report["same_history"]
    assert np.isfinite(report["loss"])


def test_split_error_matches_the_eager_forward_pass(finished, data_dir):
    import keras

    from tat_keras import metrics
    from tat_keras.data import pipeline

    model_dir, _ = finished
    model = keras.models.load_model(os.path.join(model_dir, "model.keras"))
    test = pipeline.decode_split(data_dir, "test")
    inputs = {k: v.astype(np.float32) for k, v in test.images.items()}
    eager = model(inputs, training=False)
    compiled = model.predict_on_batch(inputs)
    for key in ("x", "y"):
        np.testing.assert_allclose(compiled[key], np.asarray(eager[key]), atol=1e-5)
    gaze = np.asarray(model.decode({k: np.asarray(v) for k, v in eager.items()}))
    expected = float(np.mean(np.linalg.norm(gaze - test.gaze_cm, axis=1)))
    assert experiment.split_error(model, data_dir, "test") == pytest.approx(expected,
                                                                             abs=1e-6)


def test_a_later_run_reuses_the_decoded_splits_until_the_data_changes(
        data_dir, monkeypatch):
    from tat_keras.data import pipeline

    config = _config(data_dir).resolved()
    first = builders.build_inputs(config).decoded
    calls = []
    decode = pipeline.decode_split

    def counting(*args, **kwargs):
        calls.append(args[1])
        return decode(*args, **kwargs)

    monkeypatch.setattr(pipeline, "decode_split", counting)
    again = builders.build_inputs(config).decoded
    assert all(again[split] is first[split] for split in first)
    assert not first["train"].images["face"].flags.writeable
    builders.build_inputs(dataclasses.replace(config, max_train_examples=5))
    assert calls == ["train"]
    info = os.path.join(data_dir, "gaze_capture", "size64")
    version = sorted(os.listdir(info))[-1]
    path = os.path.join(info, version, "dataset_info.json")
    stat = os.stat(path)
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000_000))
    builders.build_inputs(config)
    assert sorted(calls[1:]) == ["test", "train", "validation"]
    builders.clear_decoded()
    assert builders._DECODED.splits == {}
