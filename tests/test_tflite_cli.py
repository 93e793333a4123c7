"""End-to-end tests of tflite/export.py, evaluate.py, benchmark.py and
android_benchmark.sh on a tiny model and a tiny prepared data set."""

import json
import os
import stat
import subprocess
import sys

import numpy as np
import pytest

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FACE = [200.0, 100.0, 240.0, 240.0]
EYE = [40.0, 60.0, 60.0, 60.0]


def run_tool(script, *args, env=None):
    return subprocess.run(
        [sys.executable, os.path.join(REPO, "tflite", script), *args],
        capture_output=True, text=True, cwd=REPO, env=env, timeout=600,
    )


@pytest.fixture(scope="session")
def data_dir(tmp_path_factory):
    """Prepared gaze_capture/size64: two train, one val, one test recording."""
    import tensorflow_datasets as tfds

    from tat_keras.data.gaze_capture import layout
    from tat_keras.data.gaze_capture import gaze_capture_dataset_builder

    root = tmp_path_factory.mktemp("gaze_capture")
    rng = np.random.default_rng(0)
    for number, split in ((1, "train"), (2, "train"), (3, "val"), (4, "test")):
        frames = [rng.integers(0, 255, (480, 640, 3), dtype=np.uint8) for _ in range(6)]
        layout.write_recording(
            str(root / "raw" / f"{number:05d}"), frames,
            face_boxes=[FACE] * 6, left_eye_boxes=[EYE] * 6, right_eye_boxes=[EYE] * 6,
            face_grid=[[8, 5, 10, 10]] * 6,
            gaze_cm=np.stack([np.arange(6) - 3.0, -np.arange(6.0)], -1),
            dot_num=[0, 0, 0, 1, 1, 1], split=split,
            device="iPad Air" if number == 2 else "iPhone 6")
    builder = gaze_capture_dataset_builder.GazeCapture(data_dir=str(root / "tfds"), num_workers=1)
    builder.download_and_prepare(
        download_config=tfds.download.DownloadConfig(manual_dir=str(root / "raw")))
    return str(root / "tfds")


def write_model_dir(folder, data_dir):
    from tat_keras.export import tflite_test

    os.makedirs(folder, exist_ok=True)
    tflite_test.tiny_gaze_net().save(os.path.join(folder, "model.keras"))
    with open(os.path.join(folder, "flags.json"), "w") as f:
        json.dump({"data_dir": data_dir, "image_size": 64}, f)
    return str(folder)


@pytest.fixture(scope="session")
def model_dir(tmp_path_factory, data_dir):
    return write_model_dir(tmp_path_factory.mktemp("run") / "run", data_dir)


def test_export_without_saved_model_says_how_to_train(tmp_path):
    result = run_tool("export.py", f"--model_dir={tmp_path}", "--mode=float32")
    assert result.returncode != 0
    assert "no saved model" in result.stderr and "recipes/train_tat.py" in result.stderr


def test_export_rejects_unknown_mode(tmp_path):
    result = run_tool("export.py", f"--model_dir={tmp_path}", "--mode=int4")
    assert result.returncode != 0
    assert "value should be one of <float32|float16|dynamic|int8|qat>" in result.stderr


def test_export_never_overwrites_without_flag(tmp_path):
    (tmp_path / "model.keras").write_bytes(b"")
    output = tmp_path / "gaze.tflite"
    output.write_bytes(b"keep")
    result = run_tool("export.py", f"--model_dir={tmp_path}", f"--output={output}")
    assert result.returncode != 0 and "--overwrite" in result.stderr
    assert output.read_bytes() == b"keep"


def test_int8_export_without_calibration_data_says_where_to_point(tmp_path, data_dir):
    model_dir = write_model_dir(tmp_path / "run", str(tmp_path / "missing"))
    result = run_tool("export.py", f"--model_dir={model_dir}", "--mode=int8")
    assert result.returncode != 0
    assert "calibration/training data for mode int8 not found" in result.stderr
    assert "--data_dir" in result.stderr


def test_evaluate_rejects_a_tflite_that_does_not_take_the_data(tmp_path):
    import tensorflow as tf

    @tf.function(input_signature=[tf.TensorSpec((1, 8, 8, 3), tf.float32, name="image")])
    def serve(image):
        return {"mean": tf.reduce_mean(image, axis=[1, 2])}

    module = tf.Module()
    module.serve = serve
    tf.saved_model.save(module, str(tmp_path / "saved"), signatures={"serving_default": serve})
    path = tmp_path / "plain.tflite"
    path.write_bytes(tf.lite.TFLiteConverter.from_saved_model(str(tmp_path / "saved")).convert())
    result = run_tool("evaluate.py", f"--tflite={path}", f"--data_dir={tmp_path}")
    assert result.returncode != 0
    assert "not a gaze model" in result.stderr and "inputs ['face'" in result.stderr


@pytest.mark.parametrize("script", ["evaluate.py", "benchmark.py"])
def test_a_file_that_is_not_a_tflite_model_is_refused(tmp_path, script):
    path = tmp_path / "notes.tflite"
    path.write_text("hello world, not a model at all")
    result = run_tool(script, f"--tflite={path}", f"--data_dir={tmp_path}" if script == "evaluate.py"
                      else "--runs=1")
    assert result.returncode == 1
    assert (f"error: {path} is not a TFLite model: expected a .tflite flatbuffer "
            "(file identifier 'TFL3' at byte 4)") in result.stderr
    assert "Traceback" not in result.stderr and "struct.error" not in result.stderr


def test_android_benchmark_against_fake_adb(tmp_path):
    log = tmp_path / "adb.log"
    fake = tmp_path / "bin" / "adb"
    fake.parent.mkdir()
    fake.write_text(
        "#!/usr/bin/env bash\n"
        f'echo "$*" >> {log}\n'
        'case "$*" in\n'
        '  *benchmark_model\\ --graph*) echo "Inference timings in us: Init: 900, '
        'First inference: 3000, Warmup (avg): 2600, Inference (avg): 2500";;\n'
        '  *getprop*) echo "Pixel Fake";;\n'
        "esac\n")
    fake.chmod(fake.stat().st_mode | stat.S_IEXEC)
    model = tmp_path / "gaze_int8.tflite"
    model.write_bytes(b"tflite")
    binary = tmp_path / "benchmark_model"
    binary.write_bytes(b"elf")
    env = {**os.environ, "PATH": f"{fake.parent}:{os.environ['PATH']}", "THREADS": "1 2"}
    result = subprocess.run(
        ["bash", os.path.join(REPO, "tflite", "android_benchmark.sh"), str(model), str(binary)],
        capture_output=True, text=True, env=env, timeout=60)
    assert result.returncode == 0, result.stderr
    assert "xnnpack threads=1" in result.stdout and "2.500 ms" in result.stdout
    assert "gpu" in result.stdout and "Pixel Fake" in result.stdout
    commands = log.read_text().splitlines()
    assert any(c.startswith("push") and c.endswith("gaze_int8.tflite") for c in commands)
    assert any(c.startswith("push") and "benchmark_model" in c for c in commands)
    runs = [c for c in commands if "--graph=" in c]
    assert any("--num_threads=2" in c and "--use_xnnpack=true" in c for c in runs)
    assert any("--use_gpu=true" in c for c in runs)
    assert any("--use_xnnpack=false" in c for c in runs)


def test_android_benchmark_says_when_no_device(tmp_path):
    fake = tmp_path / "bin" / "adb"
    fake.parent.mkdir()
    fake.write_text("#!/usr/bin/env bash\nexit 1\n")
    fake.chmod(fake.stat().st_mode | stat.S_IEXEC)
    (tmp_path / "m.tflite").write_bytes(b"x")
    (tmp_path / "bm").write_bytes(b"x")
    env = {**os.environ, "PATH": f"{fake.parent}:{os.environ['PATH']}"}
    result = subprocess.run(
        ["bash", os.path.join(REPO, "tflite", "android_benchmark.sh"),
         str(tmp_path / "m.tflite"), str(tmp_path / "bm")],
        capture_output=True, text=True, env=env, timeout=60)
    assert result.returncode != 0 and "no Android device" in result.stderr


@pytest.mark.slow
def test_float32_export_evaluate_benchmark_matches_keras(model_dir, data_dir, tmp_path):
    import keras

    import tat_keras  # noqa: F401
    from tat_keras import evaluation

    output = str(tmp_path / "gaze_float32.tflite")
    result = run_tool("export.py", f"--model_dir={model_dir}", "--mode=float32",
                      f"--output={output}")
    assert result.returncode == 0, result.stderr
    assert json.load(open(output + ".json"))["data_dir"] == data_dir
    result = run_tool("evaluate.py", f"--tflite={output}", f"--output={tmp_path / 'e.json'}")
    assert result.returncode == 0, result.stderr
    metrics = json.load(open(tmp_path / "e.json"))
    model = keras.models.load_model(os.path.join(model_dir, "model.keras"))
    expected = evaluation.summarize(*evaluation.predict_split(model.predict_cm, data_dir, "test"))
    for key in ("test_error_cm", "test_error_cm_phone", "test_msd_cm", "test_msd_sequences"):
        assert metrics[key] == pytest.approx(expected[key], abs=1e-3), key
    result = run_tool("benchmark.py", f"--tflite={output}", "--warmup=2", "--runs=5",
                      f"--output={tmp_path / 'b.json'}")
    assert result.returncode == 0, result.stderr
    assert "| gaze_float32.tflite | float32 |" in result.stdout
    assert "median ms (2 thr)" in result.stdout


@pytest.mark.slow
@pytest.mark.parametrize("mode", ["float16", "dynamic", "int8", "qat"])
def test_every_mode_exports_and_evaluates(model_dir, tmp_path, mode):
    output = str(tmp_path / f"gaze_{mode}.tflite")
    result = run_tool("export.py", f"--model_dir={model_dir}", f"--mode={mode}",
                      f"--output={output}", "--num_calibration_samples=8", "--qat_steps=2",
                      "--qat_batch_size=4")
    assert result.returncode == 0, result.stderr
    result = run_tool("evaluate.py", f"--tflite={output}")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["mode"] == mode
