"""Tests of the LiteRT runner: input checks and latency measurement."""

import numpy as np
import pytest
import tensorflow as tf

from tat_keras.export import runner


@pytest.fixture(scope="module")
def plain_tflite(tmp_path_factory):
    """A .tflite that is not a gaze model (one input `image`)."""

    @tf.function(input_signature=[tf.TensorSpec((1, 8, 8, 3), tf.float32, name="image")])
    def serve(image):
        return {"mean": tf.reduce_mean(image, axis=[1, 2])}

    folder = tmp_path_factory.mktemp("plain")
    module = tf.Module()
    module.serve = serve
    tf.saved_model.save(module, str(folder / "saved"), signatures={"serving_default": serve})
    converter = tf.lite.TFLiteConverter.from_saved_model(str(folder / "saved"))
    path = folder / "plain.tflite"
    path.write_bytes(converter.convert())
    return str(path)


def test_missing_file_says_how_to_export(tmp_path):
    with pytest.raises(FileNotFoundError, match="tflite/export.py"):
        runner.TFLiteGazeModel(str(tmp_path / "none.tflite"))


def test_rejects_a_file_without_gaze_inputs(plain_tflite):
    with pytest.raises(ValueError, match="is not a gaze model"):
        runner.TFLiteGazeModel(plain_tflite)


def test_measure_latency_reports_median_and_p90(plain_tflite):
    timing = runner.measure_latency(plain_tflite, num_threads=1, warmup=2, runs=10)
    assert timing["runs"] == 10
    assert 0 < timing["median_ms"] <= timing["p90_ms"]


def test_rejects_data_of_another_image_size(tiny_export):
    from tat_keras.export import tflite_test

    gaze_model = runner.TFLiteGazeModel(tiny_export["float32"])
    size = tflite_test.TINY_SIZE
    assert gaze_model.image_size == size
    with pytest.raises(
        ValueError, match=rf"expects face crops of shape \({size}, {size}, 3\)"
    ):
        gaze_model(tflite_test.pixels(1, size=2 * size))
    assert gaze_model(tflite_test.pixels(2)).shape == (2, 2)


def test_runner_names_are_the_model_input_names():
    from tat_keras import models

    assert runner.INPUT_NAMES is models.INPUT_NAMES
