"""The GPU suite end to end on CPU, with TensorFlow hidden.

`recipes/gpu_suite.sh` runs `recipes/gpu_suite.py` on a tiny set of exported
arrays in processes where `import tensorflow` fails (a `sitecustomize`
module on PYTHONPATH puts a blocker first on `sys.meta_path`, in the suite
and in the training runs it starts), as on a GPU machine that has JAX but no
TensorFlow: step rates, a TAT + DwO run with its mini-generations, and the
archive of their records.
"""

import json
import os
import subprocess
import sys
import tarfile

import numpy as np
import pytest

from tat_keras.data import arrays

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

_HIDE_TENSORFLOW = '''
import sys


class _HideTensorFlow:
    """Finds nothing for TensorFlow's packages, as if none were installed."""

    def find_spec(self, name, path=None, target=None):
        if name.partition(".")[0] in ("tensorflow", "tensorflow_datasets", "tf_keras"):
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
        return None


sys.meta_path.insert(0, _HideTensorFlow())
'''


def _tiny_arrays(folder, counts={"train": 48, "validation": 16, "test": 24}):
    rng = np.random.default_rng(0)
    for split, count in counts.items():
        images = {k: rng.integers(0, 256, (count, 64, 64, 3), dtype=np.uint8)
                  for k in arrays.INPUT_NAMES}
        metadata = {"recording": np.arange(count) // 8, "dot": np.arange(count) // 4,
                    "frame": np.arange(count) % 4,
                    "device_type": np.zeros(count, np.int64)}
        arrays.write_split(folder, split, images,
                           rng.uniform(-4, 4, (count, 2)).astype(np.float32), metadata)
    arrays.write_info(folder, image_size=64)


@pytest.mark.slow
def test_suite_runs_without_tensorflow(tmp_path):
    _tiny_arrays(str(tmp_path / "arrays"))
    shim = tmp_path / "shim"
    shim.mkdir()
    (shim / "sitecustomize.py").write_text(_HIDE_TENSORFLOW)
    (tmp_path / "wheels").mkdir()  # Keras is installed here: nothing to add.
    archive = tmp_path / "suite.tar.gz"
    run_flags = ["--width_multiplier=0.125", "--x_bins=8", "--y_bins=8",
                 "--batch_size=16", "--mini_generations=2", "--epochs_per_generation=1",
                 "--warmup_epochs=0", "--dwo", "--msd_min_length=2"]
    env = {**os.environ, "PYTHONPATH": str(shim), "PYTHON": sys.executable,
           "GPU_SUITE_WHEELS": str(tmp_path / "wheels"),
        "GPU_SUITE_DIR": str(tmp_path / "suite"), "TF_CPP_MIN_LOG_LEVEL": "3"}
    result = subprocess.run(
        ["bash", "recipes/gpu_suite.sh", str(tmp_path / "arrays"), str(archive),
         "--widths=0.125", "--dtype_policies=mixed_bfloat16", "--schemes=tat_dwo",
         "--batch_size=8", "--bins=8", "--steps=2", "--warmup_steps=1",
         "--runs=recipes/configs/synthetic_quick_tat.flags", "--seeds=3",
         f"--run_flags={','.join(run_flags)}"],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=1500)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]

    with tarfile.open(archive) as packed:
        names = packed.getnames()
        packed.extractall(tmp_path / "unpacked", filter="data")
    suite = tmp_path / "unpacked" / "suite"
    run = suite / "runs" / "synthetic_quick_tat" / "seed3"
    assert not any(n.endswith(".keras") or "/checkpoints" in n for n in names)
    environment = json.loads((suite / "environment.json").read_text())
    assert environment["tensorflow_importable"] is False
    assert environment["keras_backend"] == "jax"
    (rate,) = json.loads((suite / "benchmark.json").read_text())
    assert rate["samples_per_second"] > 0 and np.isfinite(rate["final_loss"])
    metrics = json.loads((run / "metrics.json").read_text())
    assert (metrics["backend"], metrics["scheme"], metrics["dwo"], metrics["seed"]) == (
        "jax", "tat", True, 3)
    assert metrics["test_examples"] == 24
    generations = json.loads((run / "generations.json").read_text())["generations"]
    assert len(generations) == 2 and generations[0]["rebirth"]
    assert generations[1]["teachers"] == [[0]]
    history = json.loads((run / "history.json").read_text())
    assert [h["epoch"] for h in history] == [0, 1]
    config = json.loads((run / "config.json").read_text())
    assert (config["backend"], config["jit_compile"]) == ("jax", True)
