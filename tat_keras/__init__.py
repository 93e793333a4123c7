"""tat_keras: TAT and DwO gaze estimation (Guo et al. 2019) in Keras 3.

Importing the package is instant: it loads neither TensorFlow nor Keras, and
its modules load on first use (`tat_keras.models`, `tat_keras.training`, ...).
Yet every Keras class the project registers (`GazeNet`, the ordinal loss and
decoding, the gaze metric, feature mixup, the learning-rate schedule, the
regression baseline) is known to `keras.models.load_model` after
`import tat_keras`: the registering modules are imported as soon as Keras is
(at once if it already is), so a saved `.keras` model loads with no
`custom_objects`.

Example:

>>> import tat_keras
>>> import keras
>>> "tat_keras>RestartingCosineDecay" in keras.saving.get_custom_objects()
True
"""

import importlib
import importlib.abc
import sys

__version__ = "0.1.0"

# Every module that defines a class registered with
# `keras.saving.register_keras_serializable(package="tat_keras")`.
KERAS_MODULES = (
    "tat_keras.ordinal",
    "tat_keras.metrics",
    "tat_keras.mixup",
    "tat_keras.models",
    "tat_keras.training.schedules",
    "tat_keras.training.regression",
)
_SUBMODULES = ("adversarial", "calibration", "crops", "data", "evaluation", "export",
               "inference", "metrics", "mixup", "models", "ordinal", "plots",
               "pruning", "reinit", "reporting", "reproduction", "smoothing",
               "training")


def __getattr__(name):
    if name in _SUBMODULES:
        return importlib.import_module(f"tat_keras.{name}")
    raise AttributeError(f"module 'tat_keras' has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | set(_SUBMODULES))


def register_keras_objects():
    """Imports the modules that register the project's Keras classes."""
    for name in KERAS_MODULES:
        importlib.import_module(name)


def _initializing(name):
    spec = getattr(sys.modules.get(name), "__spec__", None)
    return bool(getattr(spec, "_initializing", False))


class _RegisterWhenKerasLoads(importlib.abc.MetaPathFinder):
    """Import hook: once `keras` is loaded, imports `KERAS_MODULES`.

    It wraps the loaders of `keras` and of this package's modules; after
    each one runs, registration happens if Keras is loaded and no module of
    this package is still half-imported (a package module that imports
    Keras finishes first), then the hook removes itself.
    """

    def find_spec(self, fullname, path=None, target=None):
        if fullname != "keras" and not fullname.startswith("tat_keras."):
            return None
        finders = sys.meta_path[sys.meta_path.index(self) + 1:]
        for finder in finders:
            find = getattr(finder, "find_spec", None)
            spec = find(fullname, path, target) if find else None
            if spec is not None:
                break
        else:
            return None
        if spec.loader is not None and hasattr(spec.loader, "exec_module"):
            spec.loader = _RegisteringLoader(spec.loader, self)
        return spec

    def maybe_register(self, just_loaded):
        if "keras" not in sys.modules or (
                just_loaded != "keras" and _initializing("keras")):
            return
        if any(name.startswith("tat_keras.") and name != just_loaded
               and _initializing(name) for name in list(sys.modules)):
            return
        if self in sys.meta_path:
            sys.meta_path.remove(self)
        register_keras_objects()


class _RegisteringLoader(importlib.abc.Loader):
    def __init__(self, loader, hook):
        self._loader = loader
        self._hook = hook

    def create_module(self, spec):
        return self._loader.create_module(spec)

    def exec_module(self, module):
        self._loader.exec_module(module)
        self._hook.maybe_register(module.__name__)

    def __getattr__(self, name):
        return getattr(self._loader, name)


if "keras" in sys.modules:
    register_keras_objects()
elif not any(isinstance(f, _RegisterWhenKerasLoads) for f in sys.meta_path):
    sys.meta_path.insert(0, _RegisterWhenKerasLoads())
