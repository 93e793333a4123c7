"""`import tat_keras` is light, yet every registered Keras class loads.

Each case runs in a fresh interpreter: what matters is what one import
statement does to a process.
"""

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
