r"""A prepared suite on Keras's JAX backend: step rates, then training runs.

Written for a GPU machine that has JAX but neither TensorFlow nor Keras:
Keras, namex and optree travel as wheels and the data as NumPy arrays
exported here beforehand (`recipes/export_arrays.py`); `recipes/gpu_suite.sh`
installs the wheels, runs this recipe and packs what it wrote.
BUILD_NOTES.md ("Training on JAX, and on a GPU without TensorFlow") gives the
commands. It runs the same on a CPU (`tests/test_gpu_suite.py` runs it with
TensorFlow hidden).

Usage:

    KERAS_BACKEND=jax python recipes/gpu_suite.py --data_dir=gpu/arrays \
        --output_dir=runs/gpu_suite --widths=0.125,1 \
        --dtype_policies=float32,mixed_bfloat16 \
        --runs=recipes/configs/synthetic_bench.flags --seeds=1 \
        --run_flags=--width_multiplier=1,--batch_size=256

1. Step rates (`benchmark.json`): for every width, dtype policy and scheme
   (`standard`; `tat_dwo`: Eq. 9 with one teacher, mixup and DwO), the
   samples/s of `fit` over batches already on the device (a few distinct
   batches, cycled), timed over `--steps` steps after `--warmup_steps`
   (compilation); the one-time compilation is reported beside it.
2. Runs (`runs/<flagfile>/seed<N>/`): `recipes/train_tat.py --backend=jax`
   on `--data_dir` for every flagfile of `--runs` and seed of `--seeds`,
   with `--run_flags` appended (a run on the arrays: no TensorFlow); its
   records (`config.json`, `flags.json`, `metrics.json`, `history.json`,
   `generations.json`) and its log.

`environment.json` records the versions, the devices and whether TensorFlow
could be imported; `suite.json` what ran and how long each part took. A
part that fails is recorded and the suite goes on. Nothing is asserted:
figures depend on the machine.
"""

import json
import os
import platform
import subprocess
import sys
import time

from absl import app
from absl import flags

os.environ["KERAS_BACKEND"] = "jax"  # Before Keras is imported.

import jax  # noqa: E402
import keras  # noqa: E402
import numpy as np  # noqa: E402

from tat_keras import models  # noqa: E402
from tat_keras.training import builders  # noqa: E402
from tat_keras.training import config as config_lib  # noqa: E402
from tat_keras.training import distributed  # noqa: E402

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SCHEMES = ("standard", "tat_dwo")
RECORDS = ("config.json", "flags.json", "metrics.json", "history.json",
           "generations.json")

flags.DEFINE_string("data_dir", None, "Exported arrays (recipes/export_arrays.py); "
                    "needed by --runs only.")
flags.DEFINE_string("output_dir", None, "Folder of the suite's outputs.")
flags.DEFINE_list("widths", ["0.125", "0.25", "0.5", "1"],
                  "Width multipliers of the step rates; empty: none.")
flags.DEFINE_list("dtype_policies", ["float32", "mixed_bfloat16"],
                  "Keras dtype policies of the step rates.")
flags.DEFINE_list("schemes", list(SCHEMES), f"Schemes of the step rates, of {SCHEMES}.")
flags.DEFINE_integer("batch_size", 256, "Batch of the step rates.")
flags.DEFINE_integer("bins", 133, "Ordinal bins per axis of the step rates.")
flags.DEFINE_integer("image_size", 64, "Crop size of the step rates.")
flags.DEFINE_integer("steps", 100, "Timed steps per step rate.")
flags.DEFINE_integer("warmup_steps", 3, "Untimed steps first (compilation).")
flags.DEFINE_list("runs", [], "Flagfiles of recipes/train_tat.py to train.")
flags.DEFINE_list("seeds", ["1"], "Seeds of every run.")
flags.DEFINE_list("run_flags", [], "Flags appended to every run, e.g. "
                  "--width_multiplier=1,--batch_size=256.")
flags.mark_flag_as_required("output_dir")
FLAGS = flags.FLAGS


def environment():
    """Versions, devices, and whether TensorFlow can be imported."""
    try:
        import tensorflow  # noqa: F401
        tensorflow_found = True
    except ImportError:
        tensorflow_found = False
    return {"python": platform.python_version(), "jax": jax.__version__,
            "keras": keras.__version__, "numpy": np.__version__,
            "keras_backend": keras.backend.backend(),
            "devices": [str(d) for d in jax.devices()],
            "device_kind": jax.devices()[0].device_kind,
            "cpu_count": os.cpu_count(), "tensorflow_importable": tensorflow_found}


def _config(scheme, width, batch_size, bins, image_size):
    """A resolved `TrainConfig` of the step-rate scheme (label range +-20 cm)."""
    settings = {"standard": dict(scheme="standard"),
                "tat_dwo": dict(scheme="tat", dwo=True)}[scheme]
    config = config_lib.TrainConfig(
        width_multiplier=width, batch_size=batch_size, x_bins=bins, y_bins=bins,
        image_size=image_size, x_low=-20.0, x_high=20.0, y_low=-20.0, y_high=20.0,
        backend="jax", jit_compile=True, **settings)
    return config.resolved(distributed.Placement.of(None))


class DeviceBatches(keras.utils.PyDataset):
    """`count` steps over a few batches already on the device, cycled.

    Args:
        batches: list of `(inputs, gaze_cm)` on the device.
        count: int. Batches served per epoch.
    """

    def __init__(self, batches, count):
        super().__init__()
        self.batches = batches
        self.count = count

    def __len__(self):
        return self.count

    def __getitem__(self, index):
        return self.batches[index % len(self.batches)]


def step_rate(scheme, width, dtype_policy, *, batch_size, bins, image_size, steps,
              warmup_steps, distinct_batches=4):
    """Samples/s of `fit` on batches already on the device, and the
    seconds of the warm-up (compilation)."""
    keras.backend.clear_session()
    keras.config.set_dtype_policy(dtype_policy)
    try:
        config = _config(scheme, width, batch_size, bins, image_size)
        student = builders.build_student(config)
        trainer = builders.build_trainer(config, student, steps_per_epoch=steps)
        if config.lambda_teacher:
            trainer.set_teachers([student.get_weights()])
    finally:
        keras.config.set_dtype_policy("float32")
    rng = np.random.default_rng(0)
    batches = [jax.device_put((
        {name: rng.uniform(0, 255, (batch_size, image_size, image_size, 3)).astype(
            np.float32) for name in models.INPUT_NAMES},
        rng.uniform(-15, 15, (batch_size, 2)).astype(np.float32)))
        for _ in range(distinct_batches)]
    started = time.perf_counter()
    trainer.fit(DeviceBatches(batches, warmup_steps), epochs=1, verbose=0)
    compiled = time.perf_counter() - started
    started = time.perf_counter()
    history = trainer.fit(DeviceBatches(batches, steps), epochs=1, verbose=0)
    seconds = time.perf_counter() - started
    return {"scheme": scheme, "width_multiplier": width, "dtype_policy": dtype_policy,
            "batch_size": batch_size, "bins": bins, "steps": steps,
            "samples_per_second": round(steps * batch_size / seconds, 1),
            "warmup_seconds": round(compiled, 2),
            "final_loss": float(history.history["loss"][-1])}


def train_run(flagfile, seed, data_dir, run_dir, extra_flags):
    """`recipes/train_tat.py --backend=jax` on the arrays; returns its record."""
    os.makedirs(run_dir, exist_ok=True)
    command = [sys.executable, os.path.join(REPO_ROOT, "recipes", "train_tat.py"),
               f"--flagfile={flagfile}", f"--data_dir={data_dir}",
               f"--model_dir={run_dir}", f"--seed={seed}", "--backend=jax",
               "--overwrite", *extra_flags]
    started = time.perf_counter()
    with open(os.path.join(run_dir, "log.txt"), "w") as log:
        result = subprocess.run(command, stdout=log, stderr=subprocess.STDOUT,
                                env={**os.environ, "KERAS_BACKEND": "jax"})
    record = {"flagfile": flagfile, "seed": seed, "command": command[1:],
              "returncode": result.returncode,
              "seconds": round(time.perf_counter() - started, 1)}
    metrics = os.path.join(run_dir, "metrics.json")
    if os.path.exists(metrics):
        with open(metrics) as f:
            record["metrics"] = json.load(f)
    return record


def _write(path, data):
    with open(path, "w") as f:
        json.dump(data, f, indent=2)


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"Unexpected arguments: {argv[1:]}")
    unknown = sorted(set(FLAGS.schemes) - set(SCHEMES))
    if unknown:
        raise app.UsageError(f"--schemes takes {', '.join(SCHEMES)}. "
                             f"Received: {', '.join(unknown)}")
    if FLAGS.runs and not FLAGS.data_dir:
        raise app.UsageError("--runs trains on --data_dir: give the exported arrays.")
    if keras.backend.backend() != "jax":
        raise app.UsageError(f"Keras runs on {keras.backend.backend()}; run this "
                             "recipe in a fresh process.")
    os.makedirs(FLAGS.output_dir, exist_ok=True)
    suite = {"argv": sys.argv[1:], "environment": environment(), "parts": []}
    _write(os.path.join(FLAGS.output_dir, "environment.json"), suite["environment"])
    print(json.dumps(suite["environment"]), flush=True)
    rates = []
    for width in map(float, FLAGS.widths):
        for dtype_policy in FLAGS.dtype_policies:
            for scheme in FLAGS.schemes:
                started = time.perf_counter()
                try:
                    rate = step_rate(scheme, width, dtype_policy,
                                     batch_size=FLAGS.batch_size, bins=FLAGS.bins,
                                     image_size=FLAGS.image_size, steps=FLAGS.steps,
                                     warmup_steps=FLAGS.warmup_steps)
                except Exception as error:  # Recorded; the suite goes on.
                    rate = {"scheme": scheme, "width_multiplier": width,
                            "dtype_policy": dtype_policy, "error": repr(error)}
                rates.append(rate)
                suite["parts"].append({"part": "step_rate", **rate,
                                       "seconds": round(time.perf_counter() - started, 1)})
                print(json.dumps(rate), flush=True)
                _write(os.path.join(FLAGS.output_dir, "benchmark.json"), rates)
                _write(os.path.join(FLAGS.output_dir, "suite.json"), suite)
    for flagfile in FLAGS.runs:
        name = os.path.splitext(os.path.basename(flagfile))[0]
        for seed in map(int, FLAGS.seeds):
            run_dir = os.path.join(FLAGS.output_dir, "runs", name, f"seed{seed}")
            record = train_run(flagfile, seed, FLAGS.data_dir, run_dir, FLAGS.run_flags)
            suite["parts"].append({"part": "run", **record})
            print(json.dumps({k: v for k, v in record.items() if k != "command"}),
                  flush=True)
            _write(os.path.join(FLAGS.output_dir, "suite.json"), suite)
    failed = [p for p in suite["parts"] if p.get("error") or p.get("returncode")]
    print(f"{len(suite['parts'])} parts, {len(failed)} failed; outputs in "
          f"{FLAGS.output_dir}", flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    app.run(main)
