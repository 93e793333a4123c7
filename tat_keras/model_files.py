"""Which kind of model file a path holds: a `.tflite` flatbuffer or a `.keras` archive.

A file is recognised by its content, not its name: a TFLite flatbuffer
carries the file identifier `TFL3` at bytes 4-8; a Keras 3 `.keras` file is
a zip archive holding `config.json`. Anything else fails here with a message
that names what was expected, before an interpreter or a loader reads it
(where a text file or an image ends in `struct.error` or a misleading "File
not found"). This module imports nothing of the project, nor TensorFlow.

Example:

>>> import os, tempfile
>>> path = os.path.join(tempfile.mkdtemp(), "notes.tflite")
>>> _ = open(path, "w").write("not a model")
>>> model_kind(path)
Traceback (most recent call last):
...
ValueError: ...notes.tflite is neither a .tflite flatbuffer nor a .keras model...
"""

import os
import zipfile

TFLITE_IDENTIFIER = b"TFL3"
_EXPECTED = {
    "tflite": "a .tflite flatbuffer (file identifier 'TFL3' at byte 4), as "
              "tflite/export.py writes it",
    "keras": "a .keras model (a zip archive with config.json), as "
             "recipes/train_tat.py or keras.Model.save writes it",
}


def _check_file(path):
    if not os.path.isfile(path):
        raise FileNotFoundError(
            f"No model file at {path}: pass a .keras model or a .tflite file. "
            f"Received: path={path!r}"
        )


def _head(path):
    with open(path, "rb") as f:
        return f.read(8)


def _describe(path):
    head = _head(path)
    return f"{os.path.getsize(path)} bytes starting {head!r}"


def is_tflite(path):
    """Whether the file at `path` is a TFLite flatbuffer (by its identifier)."""
    return _head(path)[4:8] == TFLITE_IDENTIFIER


def is_keras(path):
    """Whether the file at `path` is a Keras 3 `.keras` archive."""
    if not zipfile.is_zipfile(path):
        return False
    with zipfile.ZipFile(path) as archive:
        return "config.json" in archive.namelist()


def _check_kind(path, kind, test, name):
    _check_file(path)
    if not test(path):
        raise ValueError(
            f"{path} is not a {name} model: expected {_EXPECTED[kind]}. "
            f"Received: {_describe(path)}"
        )
    return path


def check_tflite_file(path):
    """Fails unless `path` is a TFLite flatbuffer; returns `path`.

    Raises:
      FileNotFoundError: no file at `path`.
      ValueError: a file of another kind; the message says what was expected.
    """
    return _check_kind(path, "tflite", is_tflite, "TFLite")


def check_keras_file(path):
    """Fails unless `path` is a Keras 3 `.keras` archive; returns `path`.

    Raises:
      FileNotFoundError: no file at `path`.
      ValueError: a file of another kind; the message says what was expected.
    """
    return _check_kind(path, "keras", is_keras, "Keras")


def model_kind(path):
    """"tflite" or "keras", from the file's content.

    Raises:
      FileNotFoundError: no file at `path`.
      ValueError: neither kind; the message says what was expected.
    """
    _check_file(path)
    if is_tflite(path):
        return "tflite"
    if is_keras(path):
        return "keras"
    raise ValueError(
        f"{path} is neither a .tflite flatbuffer nor a .keras model: expected "
        f"{_EXPECTED['tflite']}, or {_EXPECTED['keras']}. Received: {_describe(path)}"
    )
