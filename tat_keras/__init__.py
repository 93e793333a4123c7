"""tat_keras: TAT and DwO gaze estimation (Guo et al. 2019) in Keras 3.

Importing the package is instant: it loads neither TensorFlow nor Keras, so
that the data and file-format modules stay light (`tat_keras.data...`,
rendering workers, flag parsing). Every module is reachable from it and
imports on first use (`tat_keras.models`, `tat_keras.training.distributed`;
`submodules.on_first_use`).

Saved models load after `import tat_keras` with no `custom_objects`: Keras
finds the project's classes (`GazeNet`, the ordinal loss and decoding, the
gaze metric, feature mixup, the learning-rate schedule, the regression
baseline) by their registered names once `SERIALIZABLE_MODULES` are
imported. Those modules import Keras, so they are imported when Keras is:
at once if it is already loaded, else by `_RegisterAfterKeras`, right after
the first `import keras` of the process finishes.

Example:

>>> import tat_keras
>>> import keras
>>> "tat_keras>RestartingCosineDecay" in keras.saving.get_custom_objects()
True
"""

import importlib
import importlib.abc
import sys

from tat_keras import submodules

__version__ = "0.1.0"

__getattr__ = submodules.on_first_use(__name__)

# The modules that register classes with
# `keras.saving.register_keras_serializable(package="tat_keras")`;
# `package_test.py` checks that no other module does.
SERIALIZABLE_MODULES = (
    "tat_keras.ordinal",
    "tat_keras.metrics",
    "tat_keras.mixup",
    "tat_keras.models",
    "tat_keras.training.schedules",
    "tat_keras.training.regression",
)


def register_keras_objects():
    """Imports `SERIALIZABLE_MODULES`, which registers their classes with Keras."""
    for name in SERIALIZABLE_MODULES:
        importlib.import_module(name)


class _RegisterAfterKeras(importlib.abc.MetaPathFinder):
    """Calls `register_keras_objects` once Keras and this package are loaded.

    An import hook that loads nothing itself: the next finder on
    `sys.meta_path` finds `keras` and this package's modules, and each is
    executed by `_ThenRegister`, which afterwards calls `after_import`.
    Registration waits while one of this package's modules is half-imported
    (a module that imports Keras first, `tat_keras.models` say, registers
    once it has finished), then the hook removes itself.
    """

    def find_spec(self, fullname, path=None, target=None):
        if fullname != "keras" and not fullname.startswith("tat_keras."):
            return None
        for finder in sys.meta_path[sys.meta_path.index(self) + 1:]:
            spec = finder.find_spec(fullname, path, target) if hasattr(
                finder, "find_spec") else None
            if spec is not None:
                break
        else:
            return None
        if hasattr(spec.loader, "exec_module"):
            spec.loader = _ThenRegister(spec.loader, self)
        return spec

    def after_import(self, name):
        if self not in sys.meta_path or "keras" not in sys.modules:
            return
        if any(_importing(module) for module in list(sys.modules)
               if module != name and (module == "keras" or module.startswith("tat_keras."))):
            return
        sys.meta_path.remove(self)
        register_keras_objects()


class _ThenRegister(importlib.abc.Loader):
    """A module's own loader, then `_RegisterAfterKeras.after_import`."""

    def __init__(self, loader, hook):
        self._loader = loader
        self._hook = hook

    def create_module(self, spec):
        return self._loader.create_module(spec)

    def exec_module(self, module):
        self._loader.exec_module(module)
        self._hook.after_import(module.__name__)

    def __getattr__(self, name):
        return getattr(self._loader, name)


def _importing(name):
    """Whether module `name` is still executing its import."""
    spec = getattr(sys.modules.get(name), "__spec__", None)
    return bool(getattr(spec, "_initializing", False))


if "keras" in sys.modules:
    register_keras_objects()
elif not any(isinstance(finder, _RegisterAfterKeras) for finder in sys.meta_path):
    sys.meta_path.insert(0, _RegisterAfterKeras())
