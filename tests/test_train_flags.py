"""The flags of `recipes/train_tat.py`: one per `TrainConfig` field, and the
flagfiles of `recipes/configs/` parse to the configs they always gave."""

import dataclasses
import importlib.util
import os
import sys

from absl import flags
import pytest

from tat_keras.training.config import TrainConfig

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CONFIGS = os.path.join(REPO, "recipes", "configs")

# What each flagfile gave with --model_dir=runs/x when its flags were written
# by hand, one DEFINE per setting: the settings the five files share, then
# what each changes.
_SHARED = {
    "data_dir": "data/quick/tfds", "image_size": 64, "scheme": "tat",
    "width_multiplier": 0.125, "share_eye_weights": True, "batch_norm_momentum": 0.9,
    "x_bins": 64, "y_bins": 64, "x_low": None, "x_high": None, "y_low": None,
    "y_high": None, "label_margin": 0.05, "batch_size": 32, "learning_rate": 0.002,
    "weight_decay": 0.0, "mini_generations": 3, "epochs_per_generation": 2,
    "warmup_epochs": 1, "lambda_hard": 0.2, "lambda_mix": 0.4, "lambda_teacher": 0.6,
    "teacher": None, "teacher_threshold": 1.05, "pruning": None, "prune_ratio": 0.2,
    "max_layer_prune_ratio": 0.5, "reinit": "aoi", "rebirth_moments": "zero",
    "mixup": None, "dwo": True, "dwo_epsilon": 3.0, "dwo_step": 1.0, "dwo_steps": 1,
    "dwo_center_bins": 8, "dwo_original_fraction": 0.9, "augment": True,
    "max_train_examples": None, "msd_min_length": 5, "seed": 0, "head": "ordinal",
    "deterministic": False, "jit_compile": None, "input_cache": "memory",
    "cache_dir": None,
}
FLAGFILE_CONFIGS = {
    "gazecapture_tat.flags": {
        "batch_size": 128, "cache_dir": "runs/x/input_cache",
        "data_dir": "data/gazecapture/tfds", "dwo": False, "epochs_per_generation": 7,
        "input_cache": "file", "learning_rate": 0.001, "mini_generations": 5,
        "width_multiplier": 1.0, "x_bins": 133, "y_bins": 133},
    "synthetic_bench.flags": {
        "data_dir": "data/bench/tfds", "dwo": False, "max_train_examples": 4000},
    "synthetic_demo.flags": {
        "data_dir": "data/bench/tfds", "deterministic": True, "epochs_per_generation": 5,
        "max_train_examples": 4000, "mini_generations": 5, "scheme": "standard",
        "seed": 1},
    "synthetic_quick.flags": {"scheme": "standard", "width_multiplier": 0.25},
    "synthetic_quick_tat.flags": {"width_multiplier": 0.25},
}


@pytest.fixture(scope="module")
def train_tat():
    """The recipe as a module (its flags defined once per process)."""
    if "train_tat" not in sys.modules:
        spec = importlib.util.spec_from_file_location(
            "train_tat", os.path.join(REPO, "recipes", "train_tat.py"))
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        sys.modules["train_tat"] = module
    return sys.modules["train_tat"]


def _parse(train_tat, *args):
    flag_values = flags.FlagValues()
    train_tat.define_flags(flag_values)
    flag_values(["train_tat.py", "--model_dir=runs/x", *args])
    return train_tat.config_from_flags(flag_values)


def test_every_flagfile_is_listed():
    assert sorted(os.listdir(CONFIGS)) == sorted(FLAGFILE_CONFIGS)


@pytest.mark.parametrize("name", sorted(FLAGFILE_CONFIGS))
def test_flagfile_parses_to_the_config_it_gave(train_tat, name):
    config = dataclasses.asdict(
        _parse(train_tat, f"--flagfile={os.path.join(CONFIGS, name)}"))
    expected = {**_SHARED, **FLAGFILE_CONFIGS[name]}
    assert {k: config[k] for k in expected} == expected
    # A setting added since takes its default.
    defaults = dataclasses.asdict(TrainConfig())
    assert {k: v for k, v in config.items() if k not in expected} == {
        k: defaults[k] for k in config if k not in expected}


def test_one_flag_per_setting_with_its_default_and_help(train_tat):
    flag_values = flags.FlagValues()
    train_tat.define_flags(flag_values)
    for field in dataclasses.fields(TrainConfig):
        flag = flag_values[field.name]
        assert flag.default == field.default, field.name
        assert flag.help.endswith(field.metadata["help"]), field.name
        if field.metadata["choices"]:
            assert flag.parser.enum_values == list(field.metadata["choices"])
    assert dataclasses.asdict(_parse(train_tat)) == dataclasses.asdict(TrainConfig())


@pytest.mark.parametrize("args, expected", [
    (["--dwo_center_bins=all"], {"dwo_center_bins": None}),
    (["--dwo_center_bins=4"], {"dwo_center_bins": 4}),
    (["--jit_compile=auto"], {"jit_compile": None}),
    (["--jit_compile=true"], {"jit_compile": True}),
    (["--jit_compile=false"], {"jit_compile": False}),
    (["--nomixup", "--teacher=last", "--pruning=none"],
     {"mixup": False, "teacher": "last", "pruning": "none"}),
    (["--x_low=-3.5", "--max_train_examples=10", "--nodwo", "--cache_dir=/c"],
     {"x_low": -3.5, "max_train_examples": 10, "dwo": False, "cache_dir": "/c"}),
])
def test_flag_spellings(train_tat, args, expected):
    config = _parse(train_tat, *args)
    assert {k: getattr(config, k) for k in expected} == expected


@pytest.mark.parametrize("args, message", [
    (["--dwo_center_bins=seven"], r"expected 'all' or a value of type int"),
    (["--jit_compile=maybe"], r"expected 'auto' or a value of type bool"),
    (["--scheme=tta"], r"one of <standard\|sd\|tat>"),
])
def test_bad_flag_values_are_refused_when_parsed(train_tat, args, message):
    with pytest.raises(flags.IllegalFlagValueError, match=message):
        _parse(train_tat, *args)
