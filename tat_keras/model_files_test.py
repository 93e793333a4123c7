import zipfile

import pytest

from tat_keras import model_files


@pytest.fixture
def files(tmp_path):
    flatbuffer = tmp_path / "model.tflite"
    flatbuffer.write_bytes(b"\x1c\x00\x00\x00TFL3" + bytes(64))
    archive = tmp_path / "model.keras"
    with zipfile.ZipFile(archive, "w") as z:
        z.writestr("config.json", "{}")
        z.writestr("model.weights.h5", b"")
    other_zip = tmp_path / "photos.keras"
    with zipfile.ZipFile(other_zip, "w") as z:
        z.writestr("00000.jpg", b"")
    text = tmp_path / "notes.tflite"
    text.write_text("hello world, not a model at all")
    return {k: str(v) for k, v in dict(
        flatbuffer=flatbuffer, archive=archive, other_zip=other_zip, text=text).items()}


def test_model_kind_reads_the_content_not_the_name(files, tmp_path):
    assert model_files.model_kind(files["flatbuffer"]) == "tflite"
    assert model_files.model_kind(files["archive"]) == "keras"
    renamed = tmp_path / "model.bin"
    renamed.write_bytes(open(files["flatbuffer"], "rb").read())
    assert model_files.model_kind(str(renamed)) == "tflite"


@pytest.mark.parametrize("name", ["text", "other_zip"])
def test_neither_kind_says_what_was_expected(files, name):
    with pytest.raises(ValueError, match=r"is neither a \.tflite flatbuffer nor a \.keras "
                                         r"model: expected .*'TFL3'.*config\.json.*Received: \d+ bytes"):
        model_files.model_kind(files[name])


def test_checks_of_one_kind(files):
    assert model_files.check_tflite_file(files["flatbuffer"]) == files["flatbuffer"]
    assert model_files.check_keras_file(files["archive"]) == files["archive"]
    with pytest.raises(ValueError, match=r"notes\.tflite is not a TFLite model: expected a "
                                         r"\.tflite flatbuffer \(file identifier 'TFL3'.*"
                                         r"Received: 31 bytes starting b'hello wo'"):
        model_files.check_tflite_file(files["text"])
    with pytest.raises(ValueError, match=r"model\.tflite is not a Keras model: expected a "
                                         r"\.keras model \(a zip archive with config\.json\)"):
        model_files.check_keras_file(files["flatbuffer"])
    with pytest.raises(FileNotFoundError, match="No model file at .*missing.keras"):
        model_files.check_keras_file(files["archive"].replace("model.keras", "missing.keras"))
