"""Running exported `.tflite` gaze models with LiteRT, for evaluation and timing.

`TFLiteGazeModel` wraps `ai_edge_litert.interpreter.Interpreter`'s
signature runner (the only place where the input and output names
survive conversion) and turns batches of float32 pixels, as the data
pipeline yields them, into `(B, 2)` gaze in cm, one sample at a time.
`measure_latency` times single invocations with the default XNNPACK
delegate.
"""

import os
import time

import numpy as np

from tat_keras.crops import INPUT_NAMES
from tat_keras.export import tflite as tflite_lib


class TFLiteGazeModel:
    """A `.tflite` gaze model behind the `predict_fn` of `tat_keras.evaluation`.

    Args:
        path: str. The `.tflite` file.
        num_threads: int or None. Interpreter threads (None: LiteRT's
            default).

    Example:

    >>> runner = TFLiteGazeModel("gaze_int8.tflite")  # doctest: +SKIP
    >>> runner({n: np.zeros((4, 64, 64, 3), "float32") for n in INPUT_NAMES})  # doctest: +SKIP
    """

    def __init__(self, path, num_threads=None):
        from ai_edge_litert.interpreter import Interpreter

        if not os.path.isfile(path):
            raise FileNotFoundError(
                f"No .tflite file at {path}. Export one with "
                f"`python tflite/export.py --model_dir=DIR --mode=MODE`. "
                f"Received: path={path}"
            )
        self.path = path
        self.metadata = tflite_lib.read_metadata(path)
        self._interpreter = Interpreter(model_path=path, num_threads=num_threads)
        signatures = self._interpreter.get_signature_list()
        if "serving_default" not in signatures:
            raise ValueError(
                f"{path} has no 'serving_default' signature: it is not a gaze model "
                f"from tflite/export.py; export one with that script. Received: signatures={sorted(signatures)}"
            )
        self._runner = self._interpreter.get_signature_runner("serving_default")
        details = self._runner.get_input_details()
        missing = [name for name in INPUT_NAMES if name not in details]
        if missing or "gaze_cm" not in self._runner.get_output_details():
            raise ValueError(
                f"{path} is not a gaze model from tflite/export.py: it needs "
                f"inputs {list(INPUT_NAMES)} and output 'gaze_cm'. Received: "
                f"inputs={sorted(details)}, "
                f"outputs={sorted(self._runner.get_output_details())}"
            )
        self.input_shapes = {n: tuple(int(d) for d in details[n]["shape"]) for n in INPUT_NAMES}
        self.input_dtypes = {n: np.dtype(details[n]["dtype"]) for n in INPUT_NAMES}

    @property
    def image_size(self):
        """Height and width of the model's inputs."""
        return int(self.input_shapes["face"][1])

    def _check(self, inputs):
        for name in INPUT_NAMES:
            if name not in inputs:
                raise ValueError(
                    f"The data has no '{name}' input. Received: keys={sorted(inputs)}"
                )
            expected = self.input_shapes[name][1:]
            shape = tuple(np.shape(inputs[name])[1:])
            if shape != expected:
                raise ValueError(
                    f"{self.path} expects {name} crops of shape {expected}, but "
                    f"the data has {shape}. Use data prepared at image_size="
                    f"{expected[0]} (e.g. --image_size={expected[0]} for the "
                    f"pipeline) or export a model trained at image_size={shape[0]}. "
                    f"Received: shape={shape}"
                )

    def _feed(self, name, pixels):
        dtype = self.input_dtypes[name]
        pixels = np.asarray(pixels)[None]
        if dtype == np.uint8:
            return np.clip(np.rint(pixels), 0, 255).astype(np.uint8)
        return pixels.astype(dtype)

    def run(self, inputs):
        """All outputs (`gaze_cm`, `x`, `y`) for a batch, as NumPy arrays."""
        self._check(inputs)
        batch = len(inputs["face"])
        results = []
        for i in range(batch):
            feeds = {n: self._feed(n, inputs[n][i]) for n in INPUT_NAMES}
            results.append(self._runner(**feeds))
        return {k: np.concatenate([r[k] for r in results]) for k in results[0]} if results else {}

    def __call__(self, inputs):
        """Gaze in cm, `(B, 2)` float32, from a dict of pixel batches."""
        if len(inputs["face"]) == 0:
            return np.zeros((0, 2), np.float32)
        return self.run(inputs)["gaze_cm"].astype(np.float32)


def measure_latency(path, num_threads=1, warmup=20, runs=200, seed=0):
    """Times single invocations of a `.tflite` with LiteRT (XNNPACK).

    Args:
        path: str. The `.tflite` file.
        num_threads: int. Interpreter threads.
        warmup: int. Untimed invocations first.
        runs: int. Timed invocations.
        seed: int. Seed of the random input pixels.

    Returns:
        dict with `median_ms`, `p90_ms`, `mean_ms`, `runs`, `num_threads`.
    """
    from ai_edge_litert.interpreter import Interpreter

    interpreter = Interpreter(model_path=path, num_threads=num_threads)
    runner = interpreter.get_signature_runner("serving_default")
    rng = np.random.default_rng(seed)
    feeds = {}
    for name, detail in runner.get_input_details().items():
        pixels = rng.integers(0, 256, size=detail["shape"])
        feeds[name] = pixels.astype(detail["dtype"])
    for _ in range(warmup):
        runner(**feeds)
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        runner(**feeds)
        times.append((time.perf_counter() - start) * 1000.0)
    times = np.asarray(times)
    return {
        "num_threads": int(num_threads),
        "runs": int(runs),
        "median_ms": float(np.median(times)),
        "p90_ms": float(np.percentile(times, 90)),
        "mean_ms": float(np.mean(times)),
    }
