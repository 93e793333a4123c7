"""Sub-modules imported on first use: `package.X` works after `import package`.

Every package of the project sets `__getattr__ = submodules.on_first_use(__name__)`
(PEP 562): reading `package.X` imports the sub-module `package.X` the first
time. Every module is then reachable from `import tat_keras` (for example
`tat_keras.training.distributed`), with no list of modules to keep, while a
process loads only the modules it reads (TensorFlow and Keras come with the
modules that need them, never with a package).

Example:

>>> import tat_keras
>>> tat_keras.training.config.SCHEMES
('standard', 'sd', 'tat')
"""

import importlib
import importlib.util


def on_first_use(package):
    """The `__getattr__` of `package`: imports its sub-module `name` when read.

    Args:
        package: str. The package's `__name__`.

    Returns:
        A function `name -> module`; it raises AttributeError for a name that
        is no sub-module of `package`.

    Example:

    >>> on_first_use("tat_keras.data")("devices").__name__
    'tat_keras.data.devices'
    """

    def __getattr__(name):
        module = f"{package}.{name}"
        if not name.startswith("_") and importlib.util.find_spec(module) is not None:
            return importlib.import_module(module)
        raise AttributeError(f"module {package!r} has no attribute {name!r}")

    return __getattr__
