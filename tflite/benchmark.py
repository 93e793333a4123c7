r"""Host latency of `.tflite` gaze models with LiteRT (XNNPACK), one table.

Usage:
    python tflite/benchmark.py --tflite=runs/quick/tflite/gaze_float32.tflite,runs/quick/tflite/gaze_int8.tflite
    python tflite/benchmark.py --tflite=a.tflite --tflite=b.tflite \
        --threads=1,2 --warmup=50 --runs=500 --output=runs/quick/tflite/benchmark.json

For each file and thread count: warm-up invocations, then the median and 90th
percentile over `--runs` single invocations (batch 1) with LiteRT's default
XNNPACK delegate; plus the file size and the network's multiply-accumulates
(stored in the file's metadata by tflite/export.py), so ms can be read
against the host's rate. Prints one markdown table (and writes JSON with
--output). LiteRT's own tool runs the same files:

    python -m ai_edge_litert.tools.benchmark_litert_model --model=FILE --num_threads=1

These are host (x86) figures; int8's speed-up belongs to ARM phones
(tflite/android_benchmark.sh).
"""

import json
import os
import sys

from absl import app
from absl import flags

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

flags.DEFINE_multi_string("tflite", None, "The .tflite files (repeat the flag or separate with commas).")
flags.DEFINE_list("threads", ["1", "2"], "Thread counts.")
flags.DEFINE_integer("warmup", 50, "Untimed invocations first.")
flags.DEFINE_integer("runs", 500, "Timed invocations.")
flags.DEFINE_string("output", None, "Also write the results to this JSON file.")
flags.DEFINE_boolean("overwrite", False, "Replace an existing --output file.")
flags.mark_flag_as_required("tflite")
FLAGS = flags.FLAGS


def markdown_table(rows, threads):
    header = ["file", "mode", "size (KB)", "MMACs"]
    for t in threads:
        header += [f"median ms ({t} thr)", f"p90 ms ({t} thr)"]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for row in rows:
        cells = [
            os.path.basename(row["tflite"]), str(row["mode"]),
            f"{row['file_bytes'] / 1024:.1f}",
            f"{row['macs'] / 1e6:.1f}" if row["macs"] else "?",
        ]
        for t in threads:
            timing = row["latency"][str(t)]
            cells += [f"{timing['median_ms']:.3f}", f"{timing['p90_ms']:.3f}"]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"Unexpected arguments: {argv[1:]}")
    if FLAGS.output and os.path.exists(FLAGS.output) and not FLAGS.overwrite:
        print(f"error: {FLAGS.output} exists; pass --overwrite to replace it.", file=sys.stderr)
        return 1
    from tat_keras import model_files
    from tat_keras.export import runner as runner_lib
    from tat_keras.export import tflite as tflite_lib

    paths = [p for value in FLAGS.tflite for p in value.split(",") if p]
    threads = [int(t) for t in FLAGS.threads]
    rows = []
    for path in paths:
        if not os.path.isfile(path):
            print(f"error: no .tflite file at {path}; export one with "
                  "tflite/export.py.", file=sys.stderr)
            return 1
        try:
            model_files.check_tflite_file(path)
        except ValueError as error:
            print(f"error: {error}", file=sys.stderr)
            return 1
        metadata = tflite_lib.read_metadata(path) or {}
        row = {
            "tflite": path,
            "mode": metadata.get("mode", "?"),
            "file_bytes": os.path.getsize(path),
            "macs": metadata.get("macs"),
            "latency": {},
        }
        for t in threads:
            row["latency"][str(t)] = runner_lib.measure_latency(
                path, num_threads=t, warmup=FLAGS.warmup, runs=FLAGS.runs
            )
            if row["macs"]:
                row["latency"][str(t)]["gmacs_per_s"] = (
                    row["macs"] / (row["latency"][str(t)]["median_ms"] / 1000.0) / 1e9
                )
        rows.append(row)
    print(markdown_table(rows, threads))
    if FLAGS.output:
        with open(FLAGS.output, "w") as f:
            json.dump({"rows": rows, "warmup": FLAGS.warmup, "runs": FLAGS.runs}, f, indent=2)
    return 0


if __name__ == "__main__":
    app.run(main)
