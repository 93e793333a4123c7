"""Tests of the builders: one label-range rule, schedule, trainer per scheme."""

import dataclasses
import json
import os

import numpy as np
import pytest

from tat_keras import models
from tat_keras.training import builders
from tat_keras.training import regression
from tat_keras.training.config import TrainConfig

LABELS = np.array([[-6.0, -12.0], [4.0, -2.0], [0.0, -7.0]], np.float32)


def _config(**changes):
    config = TrainConfig(width_multiplier=0.125, x_bins=8, y_bins=6,
                         mini_generations=3, epochs_per_generation=2,
                         warmup_epochs=1, **changes).resolved()
    return builders.with_label_range(config, LABELS)


def test_bins_split_the_label_range_into_bins_plus_one_intervals():
    config = _config(label_margin=0.1)
    bins = builders.build_bins(config)
    # NumPy re-derivation: span widened by 10% on each side, num_bins + 1 bins.
    low_x, high_x = -6.0 - 1.0, 4.0 + 1.0
    assert bins["x"].low == pytest.approx(low_x)
    assert bins["x"].bin_size == pytest.approx((high_x - low_x) / 9)
    assert bins["y"].high == pytest.approx(-2.0 + 1.0)
    student = builders.build_student(config)
    assert isinstance(student, models.GazeNet)
    assert student.bins["y"].bin_size == pytest.approx(bins["y"].bin_size)
    with pytest.raises(ValueError, match="with_label_range first"):
        builders.build_bins(TrainConfig().resolved())


def test_count_outside_counts_clipped_labels():
    config = dataclasses.replace(_config(), x_low=-5.0, x_high=5.0)
    assert builders.count_outside(config, LABELS) == 1  # x = -6 lies below.


def test_schedule_restarts_per_generation_except_standard():
    steps = 5
    tat = builders.build_schedule(_config(), steps)
    assert tat.cycle_steps == [15, 10, 10] and tat.warmup_steps == 5
    standard = builders.build_schedule(_config(scheme="standard"), steps)
    assert standard.cycle_steps == [35] and standard.warmup_steps == 5
    assert type(builders.build_optimizer(_config(weight_decay=1e-4), steps)).__name__ == "AdamW"
    fresh = builders.build_optimizer(
        _config(rebirth_moments="fresh", weight_decay=1e-4), steps)
    assert type(fresh).__name__ == "RebirthAdam" and fresh.weight_decay == 1e-4


@pytest.mark.parametrize("scheme, dwo, expected", [
    ("standard", False, (1.0, 0.0, 0.0)),
    ("sd", False, (0.2, 0.0, 0.6)),
    ("tat", True, (0.2, 0.4, 0.6)),
])
def test_trainer_weights_follow_the_scheme(scheme, dwo, expected):
    config = _config(scheme=scheme, dwo=dwo, dwo_center_bins=4, jit_compile=False)
    trainer = builders.build_trainer(config, builders.build_student(config), 4)
    assert (trainer.lambda_hard, trainer.lambda_mix, trainer.lambda_teacher) == expected
    assert (trainer.dwo is not None) == dwo
    bank = builders.build_teacher_bank(config)
    assert bank.policy == {"standard": "none", "sd": "last", "tat": "random"}[scheme]


def test_same_seed_same_initial_student():
    first = builders.build_student(_config(seed=4)).get_weights()
    second = builders.build_student(_config(seed=4)).get_weights()
    for a, b in zip(first, second):
        np.testing.assert_array_equal(a, b)


def test_regression_head_one_step_matches_numpy():
    config = _config(scheme="standard", head="regression", jit_compile=False)
    student = builders.build_student(config)
    assert isinstance(student, regression.GazeRegressor)
    # The bias starts at the center of the label range.
    np.testing.assert_allclose(student.get_layer("gaze_cm").bias.numpy(),
                               [-1.0, -7.0], atol=1e-6)
    trainer = builders.build_trainer(config, student, 1)
    rng = np.random.default_rng(0)
    inputs = {n: rng.uniform(0, 255, (4, 64, 64, 3)).astype("float32")
              for n in models.INPUT_NAMES}
    gaze = rng.normal(size=(4, 2)).astype("float32") * 5
    # Eager steps: the same code as the traced ones, without tracing time.
    logs = {k: float(v) for k, v in trainer.test_step((inputs, gaze)).items()}
    predicted = np.asarray(student(inputs, training=False))
    squared = np.mean(np.sum((predicted - gaze) ** 2, axis=1))
    euclidean = np.mean(np.linalg.norm(predicted - gaze, axis=1))
    assert logs["loss"] == pytest.approx(squared, rel=1e-5)
    assert logs["error_cm"] == pytest.approx(euclidean, rel=1e-5)
    np.testing.assert_allclose(student.decode(predicted), predicted)
    # One training step moves the weights along the squared-error gradient.
    before = student.get_layer("gaze_cm").bias.numpy().copy()
    trainer.train_step((inputs, gaze))
    assert not np.allclose(before, student.get_layer("gaze_cm").bias.numpy())
    with pytest.raises(ValueError, match="without teachers"):
        trainer.set_teachers([student.get_weights()])


def test_regressor_config_round_trip():
    model = regression.GazeRegressor(width_multiplier=0.125, center_x=1.5, center_y=-3.0)
    clone = regression.GazeRegressor.from_config(model.get_config())
    assert clone.get_config() == model.get_config()
    with pytest.raises(ValueError, match="center_x must be finite. Received: center_x=nan"):
        regression.GazeRegressor(center_x=float("nan"))


def _prepared_info(data_dir, lengths):
    folder = os.path.join(data_dir, "gaze_capture", "size64", "1.0.0")
    os.makedirs(folder)
    with open(os.path.join(folder, "dataset_info.json"), "w") as f:
        json.dump({"splits": [{"name": name, "shardLengths": [str(n) for n in shards]}
                              for name, shards in lengths.items()]}, f)


def test_memory_cache_is_refused_where_the_crops_would_not_fit(tmp_path):
    _prepared_info(str(tmp_path), {"train": [600, 400], "validation": [100],
                                   "test": [200]})
    assert builders.split_sizes(str(tmp_path)) == {"train": 1000, "validation": 100,
                                                    "test": 200}
    config = TrainConfig(data_dir=str(tmp_path), max_train_examples=700).resolved()
    needed = (700 + 100 + 200) * 3 * 64 * 64 * 3  # uint8 crops: 36,864 B per frame
    builders.check_memory_cache(config, available=2 * needed)  # fits: no error
    with pytest.raises(MemoryError, match=r"--input_cache=file") as raised:
        builders.check_memory_cache(config, available=2 * needed - 1)
    assert "1,000 frames" in str(raised.value)
    # Without the validation and test splits, 700 frames.
    builders.check_memory_cache(config, validation=False,
                                available=2 * 700 * 3 * 64 * 64 * 3)
    assert builders.split_sizes(str(tmp_path / "nothing")) == {}
