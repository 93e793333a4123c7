r"""A plan for the full GazeCapture: the table of docs/data.md, "At
GazeCapture's size", computed from the records of `benchmark_scale.py`,
`benchmark_training.py` and the GPU suite (every figure marked measured or
estimated, with the arithmetic of each estimate).

  python recipes/scale_plan.py --results_dir=docs/results/scale \
      --gpu_results=docs/results/gpu/benchmark.json,docs/results/gpu/benchmark_full_width_bf16.json

Reads `prepare.json`, `train.json` and `cpu_steps.json` (benchmark_training's
output) from `--results_dir`, counts the network's floating-point operations
per example with TensorFlow's profiler (written to `flops.json`), and
writes `plan.md` and `plan.json` there.
"""

import json
import os

from absl import app
from absl import flags

from tat_keras import scale

_RESULTS_DIR = flags.DEFINE_string("results_dir", "docs/results/scale", "Records.")
_GPU_RESULTS = flags.DEFINE_list(
    "gpu_results", ["docs/results/gpu/benchmark.json",
                    "docs/results/gpu/benchmark_full_width_bf16.json"],
    "GPU suite records (recipes/gpu_suite.py).")
_GPU_TFLOPS = flags.DEFINE_float(
    "gpu_tflops", 790.0, "Peak of one GPU (TFLOP/s): a bf16 matrix product measured "
    "on one H200.")
_UTILISATION = flags.DEFINE_float(
    "utilisation", 0.15, "Share of `gpu_tflops` a training step reaches (stated; "
    "the H200's measured full-width step reached 14.7%).")

def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"Unexpected arguments: {argv[1:]}")
    results_dir = _RESULTS_DIR.value
    flops_path = os.path.join(results_dir, "flops.json")
    if os.path.exists(flops_path):
        with open(flops_path) as f:
            flops = json.load(f)
    else:
        flops = {str(w): scale.forward_flops(w) for w in scale.WIDTHS}
        with open(flops_path, "w") as f:
            json.dump(flops, f, indent=1)
    rows, inputs = scale.plan(results_dir, _GPU_RESULTS.value, _GPU_TFLOPS.value,
                        _UTILISATION.value, flops)
    with open(os.path.join(results_dir, "plan.json"), "w") as f:
        json.dump({"rows": rows, "inputs": inputs}, f, indent=1)
    with open(os.path.join(results_dir, "plan.md"), "w") as f:
        f.write(scale.markdown(rows))
    print(scale.markdown(rows))
    for width, share in inputs["achieved_utilisation"].items():
        print(f"The H200's measured standard step at width {width:g} reached "
              f"{share:.1%} of {_GPU_TFLOPS.value:g} TFLOP/s.")


if __name__ == "__main__":
    app.run(main)
