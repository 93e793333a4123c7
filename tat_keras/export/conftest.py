"""One tiny export shared by the export tests: a 32x32, width-0.125 GazeNet
written once per test session as float32 and int8 `.tflite` files."""

import pytest


@pytest.fixture(scope="session")
def tiny_export(tmp_path_factory):
    """`{"model": GazeNet, "float32": path, "int8": path}`."""
    from tat_keras.export import tflite
    from tat_keras.export import tflite_test

    model = tflite_test.tiny_gaze_net(image_size=tflite_test.TINY_SIZE)
    folder = tmp_path_factory.mktemp("tiny_export")
    exported = {"model": model}
    for mode in ("float32", "int8"):
        exported[mode] = str(folder / f"gaze_{mode}.tflite")
        tflite.export_tflite(
            model, exported[mode], mode, representative_dataset=tflite_test.calibration()
        )
    return exported
