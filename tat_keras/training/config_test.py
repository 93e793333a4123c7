"""Tests of `TrainConfig`: validation, resolved settings, the label-range rule."""

import dataclasses
import subprocess
import sys

import numpy as np
import pytest

from tat_keras.training import config as config_lib
from tat_keras.training.distributed import Placement
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


@pytest.mark.parametrize("changes, expected", [
    # (teacher, pruning, mixup, lambda_hard, lambda_mix, lambda_teacher)
    ({"scheme": "standard"}, ("none", "none", False, 1.0, 0.0, 0.0)),
    ({"scheme": "sd"}, ("last", "none", False, 0.2, 0.0, 0.6)),
    ({"scheme": "tat"}, ("random", "csp", True, 0.2, 0.4, 0.6)),
    # Options set by hand: what the trainer then uses.
    ({"scheme": "standard", "teacher": "random", "pruning": "csp", "mixup": True},
     ("none", "none", True, 1.0, 0.4, 0.0)),
    ({"scheme": "tat", "teacher": "none", "mixup": False},
     ("none", "csp", False, 0.2, 0.0, 0.0)),
    ({"scheme": "tat", "lambda_mix": 0.0}, ("random", "csp", False, 0.2, 0.0, 0.6)),
    ({"scheme": "sd", "lambda_teacher": 0.3, "lambda_hard": 0.7},
     ("last", "none", False, 0.7, 0.0, 0.3)),
])
def test_resolved_states_the_weights_and_teacher_the_trainer_uses(changes, expected):
    config = TrainConfig(**changes).resolved()
    assert (config.teacher, config.pruning, config.mixup, config.lambda_hard,
            config.lambda_mix, config.lambda_teacher) == expected


ONE_CPU = Placement()
ONE_GPU = Placement(accelerator=True)
TWO_REPLICAS = Placement(num_replicas=2, accelerator=True)
TWO_WORKERS = Placement("worker", 1, False, num_workers=2, num_replicas=2)


@pytest.mark.parametrize("changes, placement, expected", [
    # (jit_compile, input_cache, deterministic)
    ({}, None, (None, "memory", False)),
    ({}, ONE_CPU, (False, "memory", False)),
    ({}, ONE_GPU, (True, "memory", False)),
    ({"jit_compile": True}, ONE_CPU, (True, "memory", False)),
    ({"jit_compile": True}, TWO_REPLICAS, (False, "none", False)),
    ({"input_cache": "file"}, TWO_REPLICAS, (False, "file", False)),
    ({}, TWO_WORKERS, (False, "none", True)),
    ({"deterministic": True, "input_cache": "none"}, ONE_CPU, (False, "none", True)),
])
def test_resolved_for_a_placement(changes, placement, expected):
    config = TrainConfig(**changes).resolved(placement)
    assert (config.jit_compile, config.input_cache, config.deterministic) == expected
    # Resolving again changes nothing: a saved config.json resolves to itself.
    assert config.resolved(placement) == config
    assert config.resolved() == config


@pytest.mark.parametrize("changes, placement, message", [
    ({"batch_size": 15}, TWO_REPLICAS,
     r"multiple of the 2 replicas. Received: batch_size=15"),
    ({"scheme": "standard", "head": "regression"}, TWO_WORKERS,
     r"ordinal head only. Received: head='regression', replicas=2"),
])
def test_settings_that_several_replicas_cannot_run(changes, placement, message):
    TrainConfig(**changes).resolved(ONE_CPU)
    with pytest.raises(ValueError, match=message):
        TrainConfig(**changes).resolved(placement)


def test_every_field_says_what_it_does():
    for field in dataclasses.fields(TrainConfig):
        assert field.metadata["help"].endswith("."), field.name
        for choice in field.metadata["choices"] or ():
            # Every listed choice passes validation.
            TrainConfig(**{field.name: choice, "scheme": "standard",
                           "mixup": False}).resolved()


@pytest.mark.parametrize("args, message", [
    ((0, 7, 1), r"mini_generations must be at least 1. Received: 0"),
    ((5, 0, 1), r"epochs_per_generation must be at least 1. Received: 0"),
    ((5, 7, -1), r"warmup_epochs must be >= 0. Received: -1"),
])
def test_generation_epochs_refuses_empty_generations(args, message):
    with pytest.raises(ValueError, match=message):
        config_lib.generation_epochs(*args)


def test_generation_epochs_and_jit_default():
    assert config_lib.generation_epochs(5, 7, 1) == [8, 7, 7, 7, 7]
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


def test_backend_comes_from_keras_backend_and_jax_compiles_its_step(monkeypatch):
    monkeypatch.setenv("KERAS_BACKEND", "jax")
    config = TrainConfig(width_multiplier=0.25).resolved(ONE_CPU)
    assert (config.backend, config.jit_compile) == ("jax", True)
    monkeypatch.delenv("KERAS_BACKEND")
    config = TrainConfig(width_multiplier=0.25).resolved(ONE_CPU)
    assert (config.backend, config.jit_compile) == ("tensorflow", False)
    config = TrainConfig(backend="jax", jit_compile=False).resolved(ONE_CPU)
    assert (config.backend, config.jit_compile) == ("jax", False)


@pytest.mark.parametrize("settings, placement, match", [
    (dict(backend="torch"), ONE_CPU, "backend must be one of"),
    (dict(backend="jax", scheme="standard", head="regression"), ONE_CPU,
     "tensorflow backend only"),
    (dict(backend="jax"), Placement(num_replicas=2), "Several replicas train"),
])
def test_what_jax_does_not_train_is_refused(settings, placement, match):
    with pytest.raises(ValueError, match=match):
        TrainConfig(**settings).resolved(placement)
