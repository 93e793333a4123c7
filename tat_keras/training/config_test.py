"""Tests of `TrainConfig` validation and the label-range rule."""

import dataclasses
import subprocess
import sys

import numpy as np
import pytest

from tat_keras.training import config as config_lib
from tat_keras.training.config import TrainConfig


@pytest.mark.parametrize("changes, message", [
    ({"prune_ratio": 20}, r"prune_ratio must be in \[0, 1\).*Received: prune_ratio=20"),
    ({"teacher_threshold": 0.5}, r"teacher_threshold .* >= 1.*Received: teacher_threshold=0.5"),
    ({"max_layer_prune_ratio": 1.5}, r"max_layer_prune_ratio must be a number in \[0.0, 1.0\]"),
    ({"dwo": True, "dwo_center_bins": 7}, r"dwo_center_bins must be an even number.*Received: dwo_center_bins=7"),
    ({"dwo": True, "dwo_center_bins": 200, "x_bins": 64}, r"no larger than the bins"),
    ({"batch_size": 0}, r"batch_size must be an integer >= 1. Received: batch_size=0"),
    ({"learning_rate": 0.0}, r"learning_rate must be a number in \(0.0, inf\)"),
    ({"lambda_mix": -1.0}, r"lambda_mix must be a number in \[0.0, inf\)"),
    ({"dwo_original_fraction": 1.1}, r"dwo_original_fraction"),
    ({"batch_norm_momentum": 1.0}, r"batch_norm_momentum must be a number in \[0.0, 1.0\)"),
    ({"scheme": "tta"}, r"scheme must be one of \('standard', 'sd', 'tat'\). Received: scheme='tta'"),
    ({"teacher": "oldest"}, r"teacher must be one of"),
    ({"pruning": "l1"}, r"pruning must be one of"),
    ({"reinit": "zeros"}, r"reinit must be one of"),
    ({"rebirth_moments": "keep"}, r"rebirth_moments must be one of"),
    ({"image_size": 96}, r"image_size must be one of \(64, 128\)"),
    ({"input_cache": "disk"}, r"input_cache must be one of"),
    ({"x_low": 3.0, "x_high": 1.0}, r"x_high must be above x_low"),
    ({"mini_generations": 1}, r"needs mini_generations >= 2"),
    ({"max_train_examples": 0}, r"max_train_examples must be an integer >= 1"),
    ({"epochs_per_generation": 2.5}, r"epochs_per_generation must be an integer"),
    ({"head": "regression"}, r"head='regression'.*Received: scheme='tat'"),
    ({"head": "regression", "scheme": "standard", "dwo": True},
     r"head='regression'.*Received: dwo=True"),
    ({"head": "regression", "scheme": "standard", "mixup": True},
     r"Received: mixup=True"),
    ({"head": "l1"}, r"head must be one of \('ordinal', 'regression'\)"),
])
def test_bad_settings_fail_at_once_with_the_setting_named(changes, message):
    with pytest.raises(ValueError, match=message):
        dataclasses.replace(TrainConfig(), **changes).resolved()


def test_scheme_defaults_fill_unset_options_only():
    assert (TrainConfig(scheme="tat").resolved().teacher,
            TrainConfig(scheme="tat").resolved().pruning,
            TrainConfig(scheme="tat").resolved().mixup) == ("random", "csp", True)
    standard = TrainConfig(scheme="standard").resolved()
    assert (standard.teacher, standard.pruning, standard.mixup) == ("none", "none", False)
    ablation = TrainConfig(scheme="tat", teacher="last", mixup=False).resolved()
    assert (ablation.teacher, ablation.mixup) == ("last", False)
    regression = TrainConfig(scheme="standard", head="regression").resolved()
    assert regression.head == "regression"
    assert TrainConfig(teacher_threshold=None).resolved().teacher_threshold is None


def test_generation_epochs_and_jit_default():
    config = TrainConfig(mini_generations=3, epochs_per_generation=2, warmup_epochs=1)
    assert config.generation_epochs() == [3, 2, 2]
    assert dataclasses.replace(config, scheme="standard").generation_epochs() == [7]
    assert TrainConfig(width_multiplier=0.25).uses_jit() is False
    assert TrainConfig(width_multiplier=0.25).uses_jit(accelerator=True) is True
    assert TrainConfig(width_multiplier=1.0, jit_compile=False).uses_jit() is False
    assert TrainConfig(width_multiplier=0.125, jit_compile=True).uses_jit() is True


def test_label_range_is_the_span_widened_by_the_margin():
    rng = np.random.default_rng(0)
    labels = rng.normal(size=(50, 2)) * [3.0, 5.0] + [1.0, -4.0]
    got = config_lib.label_range(TrainConfig(label_margin=0.1), labels)
    span = labels.max(axis=0) - labels.min(axis=0)
    low, high = labels.min(axis=0) - 0.1 * span, labels.max(axis=0) + 0.1 * span
    np.testing.assert_allclose(got, [low[0], high[0], low[1], high[1]], rtol=1e-12)
    fixed = config_lib.label_range(TrainConfig(x_low=-9.0, y_high=2.0), labels)
    assert fixed[0] == -9.0 and fixed[3] == 2.0
    with pytest.raises(ValueError, match="No training labels"):
        config_lib.label_range(TrainConfig(), np.zeros((0, 2)))


def test_importing_the_config_loads_no_keras():
    code = ("import sys; from tat_keras.training import config; "
            "config.TrainConfig().resolved(); "
            "print(sorted(m for m in ('keras', 'tensorflow') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout
    assert out.strip() == "[]"
