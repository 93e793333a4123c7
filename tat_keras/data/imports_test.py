"""Importing the data, file-format and crop modules loads neither TensorFlow nor Keras."""

import os
import subprocess
import sys


_REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
_HEAVY = ("tensorflow", "keras", "tensorflow_datasets")
_LIGHT_MODULES = (
    "tat_keras.crops",
    "tat_keras.data",
    "tat_keras.data.devices",
    "tat_keras.data.gaze_capture",
    "tat_keras.data.gaze_capture.layout",
    "tat_keras.data.synthetic",
)


def _heavy_modules_after(statements):
    """Runs `statements` in a fresh interpreter; returns the heavy modules loaded."""
    code = "\n".join(
        ["import sys", *statements, f"print(','.join(m for m in {_HEAVY!r} if m in sys.modules))"]
    )
    env = dict(os.environ, PYTHONPATH=_REPO)
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, cwd=_REPO
    )
    assert result.returncode == 0, result.stderr
    return [m for m in result.stdout.strip().split(",") if m]


def test_data_modules_do_not_load_tensorflow_or_keras():
    # The top-level package is stood in by a bare namespace, so that this
    # checks the data package and its modules on their own.
    stub = [
        "import types",
        "package = types.ModuleType('tat_keras')",
        f"package.__path__ = [{os.path.join(_REPO, 'tat_keras')!r}]",
        "sys.modules['tat_keras'] = package",
    ]
    imports = [f"import {name}" for name in _LIGHT_MODULES]
    attributes = ["tat_keras.data.devices.DEVICES", "tat_keras.data.synthetic.PRESETS"]
    assert _heavy_modules_after(stub + imports + attributes) == []


def test_builder_module_loads_tensorflow_datasets():
    # The check above can fail: the builder module does load TFDS.
    statements = ["import tat_keras.data.gaze_capture.gaze_capture_dataset_builder"]
    assert "tensorflow_datasets" in _heavy_modules_after(statements)


def test_data_modules_stay_light_through_the_package():
    imports = [f"import {name}" for name in _LIGHT_MODULES]
    assert _heavy_modules_after(imports) == []
