"""`import tat_keras` is light, yet every module is reachable from it and
every registered Keras class loads.

Each case runs in a fresh interpreter: what matters is what one import
statement does to a process.
"""

import json
import os
import subprocess
import sys
import textwrap

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _python(code, **env):
    environment = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2", **env)
    environment["PYTHONPATH"] = os.pathsep.join(
        [REPO] + [p for p in environment.get("PYTHONPATH", "").split(os.pathsep) if p])
    result = subprocess.run([sys.executable, "-c", textwrap.dedent(code)],
                            capture_output=True, text=True, env=environment, cwd=REPO)
    assert result.returncode == 0, result.stderr[-3000:]
    return result.stdout.strip().splitlines()[-1]


def test_importing_the_package_loads_neither_keras_nor_tensorflow():
    out = _python("""
        import sys
        import tat_keras
        import tat_keras.training
        print(sorted(m for m in ("keras", "tensorflow", "tensorflow_datasets")
                     if m in sys.modules))
    """)
    assert out == "[]"


@pytest.fixture(scope="module")
def saved_model(tmp_path_factory):
    """A `GazeNet` compiled with the project's schedule and loss, saved."""
    import keras

    from tat_keras import models
    from tat_keras import ordinal
    from tat_keras.training import schedules

    path = str(tmp_path_factory.mktemp("saved") / "compiled.keras")
    model = models.GazeNet(width_multiplier=0.125, x_bins=4, y_bins=4)
    schedule = schedules.RestartingCosineDecay(1e-3, [10, 10], warmup_steps=2)
    model.compile(optimizer=keras.optimizers.Adam(schedule),
                  loss={"x": ordinal.OrdinalLoss(), "y": ordinal.OrdinalLoss()})
    model.save(path)
    return path


_LOAD = """
model = keras.models.load_model({path!r})
registered = sorted(k.split(">")[1] for k in keras.saving.get_custom_objects()
                    if k.startswith("tat_keras>"))
print(type(model).__name__, type(model.optimizer._learning_rate).__name__,
      ",".join(registered))
"""


@pytest.mark.parametrize("imports", [
    "import tat_keras\nimport keras",
    pytest.param("import keras\nimport tat_keras", marks=pytest.mark.slow),
    pytest.param("import tat_keras.models\nimport keras", marks=pytest.mark.slow),
    pytest.param("import tensorflow\nimport tat_keras\nimport keras",
                 marks=pytest.mark.slow),
])
def test_saved_model_with_schedule_loads_after_import_tat_keras(saved_model, imports):
    model, schedule, registered = _python(
        imports + _LOAD.format(path=saved_model)).split()
    assert (model, schedule) == ("GazeNet", "RestartingCosineDecay")
    for name in ("GazeNet", "OrdinalLoss", "OrdinalDecoding", "GazeErrorCm",
                 "FeatureMixup", "RestartingCosineDecay", "GazeRegressor"):
        assert name in registered.split(","), name


def _public_modules():
    """Every module and package of the project, tests and private modules aside."""
    root = os.path.join(REPO, "tat_keras")
    names = []
    for folder, folders, files in os.walk(root):
        folders[:] = sorted(f for f in folders
                            if os.path.exists(os.path.join(folder, f, "__init__.py")))
        package = "tat_keras" + folder[len(root):].replace(os.sep, ".")
        names.append(package)
        names += [f"{package}.{name[:-3]}" for name in sorted(files)
                  if name.endswith(".py") and not name.startswith("_")
                  and not name.endswith("_test.py") and name != "conftest.py"]
    return names


_REACH = """
import functools, json, sys
import tat_keras

unreachable = []
for name in json.loads(sys.argv[1]):
    try:
        found = functools.reduce(getattr, name.split(".")[1:], tat_keras)
    except AttributeError as e:
        found = e
    if found is not sys.modules.get(name):
        unreachable.append(f"{name}: {found!r}")
import keras
registering = {obj.__module__ for key, obj in keras.saving.get_custom_objects().items()
               if key.startswith("tat_keras>")}
print(json.dumps({"unreachable": unreachable, "registering": sorted(registering),
                  "listed": list(tat_keras.SERIALIZABLE_MODULES)}))
"""


def test_every_module_is_reachable_and_every_registering_module_listed():
    names = _public_modules()
    assert {"tat_keras.training.distributed", "tat_keras.data.gaze_capture.layout",
            "tat_keras.export.qat", "tat_keras.submodules"} <= set(names)
    environment = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2")
    result = subprocess.run([sys.executable, "-c", _REACH, json.dumps(names)],
                            capture_output=True, text=True, env=environment, cwd=REPO)
    assert result.returncode == 0, result.stderr[-3000:]
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert report["unreachable"] == []
    # With every module imported, the classes registered under "tat_keras>"
    # come from the listed modules only (and each listed one registers some).
    assert report["registering"] == sorted(report["listed"])


def test_an_unknown_name_is_an_attribute_error():
    import tat_keras

    with pytest.raises(AttributeError, match="module 'tat_keras.training' has no "
                                             "attribute 'trainers'"):
        tat_keras.training.trainers  # noqa: B018
    assert not hasattr(tat_keras.data, "_private")
