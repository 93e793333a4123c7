r"""What GazeCapture-sized data costs: preparation and training input at
several sizes, with throughput, peak memory and disk (docs/data.md, "At
GazeCapture's size").

Each size is a subset of the rendered recordings (`--raw_dir`), taken in
folder order until it holds that many frames (with at least one validation
and one test recording), linked into `--work_dir/size<N>/raw` and prepared
there; `all` is every recording. Every step runs as a child process while a
sampler adds up the proportional set size (PSS: shared pages counted once)
of the child and its descendants every `--sample_seconds`, so the peak
includes preparation's worker pool and TensorFlow's threads.

Preparation throughput with 1 and 2 worker processes, at one size:

  python recipes/benchmark_scale.py --raw_dir=data/tenth/raw --work_dir=runs/scale \
      --sizes=13000 --prepare_workers=1,2

Peak memory at three sizes, preparation and then one epoch of training with
the file cache (plus a second epoch: the first writes the cache):

  python recipes/benchmark_scale.py --raw_dir=data/tenth/raw --work_dir=runs/scale \
      --sizes=13000,60000,all --prepare_workers=2 --train_epochs=2

Two loopback workers (`--strategy=multi_worker`) on the first 20,000
training frames of the whole set, against one process on the same frames:

  python recipes/benchmark_scale.py --raw_dir=data/tenth/raw --work_dir=runs/scale \
      --sizes=all --prepare_workers=2 --train_epochs=1 --max_train_examples=20000 \
      --train_strategies=default,multi_worker

A size already prepared by an earlier call with the same workers is reused
(`--reprepare` prepares it again). Records go to `--results_dir`:
`prepare.json` and `train.json`, one entry per measurement; measuring the
same thing again replaces its entry. Nothing here is asserted: the figures
depend on the machine and its load (recorded with each entry).
"""

import json
import os
import shutil
import sys

from absl import app
from absl import flags

from tat_keras import scale

_RAW_DIR = flags.DEFINE_string("raw_dir", None, "Rendered (or real) recordings.")
_WORK_DIR = flags.DEFINE_string(
    "work_dir", "runs/scale", "Subsets, prepared sets, caches and runs (not committed).")
_RESULTS_DIR = flags.DEFINE_string(
    "results_dir", "docs/results/scale", "Where prepare.json and train.json go.")
_SIZES = flags.DEFINE_list("sizes", ["13000"], "Frame counts of the subsets, or `all`.")
_PREPARE_WORKERS = flags.DEFINE_list(
    "prepare_workers", ["2"], "Worker processes of preparation; each is measured.")
_REPREPARE = flags.DEFINE_bool("reprepare", False, "Prepare a size again even if done.")
_TRAIN_EPOCHS = flags.DEFINE_integer(
    "train_epochs", 0, "Epochs of training measured per size (0: none).")
_TRAIN_STRATEGIES = flags.DEFINE_list(
    "train_strategies", ["default"], "`default` (one process) and/or `multi_worker` "
    "(two loopback workers).")
_MAX_TRAIN_EXAMPLES = flags.DEFINE_integer(
    "max_train_examples", None, "Training frames per epoch (default: all).")
_WIDTH = flags.DEFINE_float("width_multiplier", 0.125, "Width of the trained network.")
_SAMPLE_SECONDS = flags.DEFINE_float("sample_seconds", 0.5, "Memory sampling period.")

# Training settings of the measured epochs: the bench flagfile's network and
# batch (one-eighth width, 64 bins, batch 32), standard training.
TRAIN_FLAGS = ("--scheme=standard", "--x_bins=64", "--y_bins=64", "--batch_size=32",
               "--learning_rate=0.002", "--mini_generations=1", "--warmup_epochs=0",
               "--input_cache=file", "--seed=0")


def _machine():
    return {"cpu_count": os.cpu_count(), "load_average": [round(v, 2) for v in os.getloadavg()]}


def prepare_size(label, names, frames, workers):
    from tat_keras.data.gaze_capture import layout

    base = os.path.join(_WORK_DIR.value, f"size{label}")
    raw = os.path.join(base, "raw")
    scale.link_subset(_RAW_DIR.value, names, raw)
    data_dir = os.path.join(base, f"tfds_w{workers}")
    done = layout.prepared_dataset_info(data_dir) is not None
    if done and not _REPREPARE.value:
        print(f"size {label}: prepared with {workers} workers already ({data_dir}).")
        return data_dir
    shutil.rmtree(data_dir, ignore_errors=True)
    command = [sys.executable, "recipes/prepare_gazecapture.py", f"--manual_dir={raw}",
               f"--data_dir={data_dir}", f"--num_workers={workers}"]
    print(f"size {label}: preparing {len(names)} recordings, {frames:,} frames, "
          f"{workers} workers ...", flush=True)
    machine = _machine()
    seconds, memory, (code,) = scale.run_measured([command], [data_dir + ".log"],
                                                 period=_SAMPLE_SECONDS.value)
    if code:
        raise RuntimeError(f"Preparation failed ({code}); see {data_dir}.log")
    from tat_keras.training import builders

    version, _ = layout.prepared_dataset_info(data_dir)
    examples = builders.split_sizes(data_dir)
    skips_path = os.path.join(data_dir, "gaze_capture", "size64", version, "skips.json")
    with open(skips_path) as f:
        skips = json.load(f)
    entry = {
        "size": label, "workers": workers, "recordings": len(names), "frames": frames,
        "examples": examples, "seconds": round(seconds, 1),
        "frames_per_second": round(frames / seconds, 1), **memory,
        "raw_bytes": scale.folder_bytes(raw), "prepared_bytes": scale.folder_bytes(data_dir),
        "skips": skips, "machine_before": machine, "machine_after": _machine(),
        "command": " ".join(command),
    }
    scale.store_entry(os.path.join(_RESULTS_DIR.value, "prepare.json"), entry, ("size", "workers"))
    print(f"size {label}: {seconds:.0f} s, {entry['frames_per_second']} frames/s, "
          f"peak {memory['peak_pss_mib']:.0f} MiB (PSS), prepared "
          f"{entry['prepared_bytes'] / scale.MIB:.0f} MiB", flush=True)
    return data_dir


def _free_ports(count):
    import socket

    sockets = [socket.socket() for _ in range(count)]
    for s in sockets:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in sockets]
    for s in sockets:
        s.close()
    return ports


def train_size(label, data_dir, strategy):
    from tat_keras.training import builders

    sizes = builders.split_sizes(data_dir)
    train_examples = sizes.get("train", 0)
    if _MAX_TRAIN_EXAMPLES.value:
        train_examples = min(train_examples, _MAX_TRAIN_EXAMPLES.value)
    base = os.path.join(_WORK_DIR.value, f"size{label}", f"train_{strategy}")
    shutil.rmtree(base, ignore_errors=True)
    os.makedirs(base)
    train_flags = [*TRAIN_FLAGS, f"--width_multiplier={_WIDTH.value:g}",
                   f"--epochs_per_generation={_TRAIN_EPOCHS.value}"]
    if _MAX_TRAIN_EXAMPLES.value:
        train_flags.append(f"--max_train_examples={_MAX_TRAIN_EXAMPLES.value}")
    common = [sys.executable, "recipes/train_tat.py", *train_flags,
              f"--data_dir={data_dir}", "--overwrite"]
    if strategy == "default":
        commands = [common + [f"--model_dir={base}/run", f"--cache_dir={base}/cache"]]
        env = None
    else:
        ports = _free_ports(2)
        cluster = [f"127.0.0.1:{p}" for p in ports]
        commands = [common + [f"--model_dir={base}/run", "--strategy=multi_worker",
                              f"--cache_dir={base}/cache{i}"] for i in range(2)]
        env = [{"TF_CONFIG": json.dumps({"cluster": {"worker": cluster},
                                         "task": {"type": "worker", "index": i}})}
               for i in range(2)]
    logs = [os.path.join(base, f"worker{i}.log") for i in range(len(commands))]
    print(f"size {label}: training {_TRAIN_EPOCHS.value} epochs on {train_examples:,} "
          f"frames ({strategy}) ...", flush=True)
    machine = _machine()
    seconds, memory, codes = scale.run_measured(commands, logs, env,
                                                period=_SAMPLE_SECONDS.value)
    if any(codes):
        raise RuntimeError(f"Training failed ({codes}); see {logs}")
    with open(logs[0]) as f:
        seconds_per_epoch = scale.epoch_seconds(f.read())
    with open(os.path.join(base, "run", "metrics.json")) as f:
        metrics = json.load(f)
    entry = {
        "size": label, "strategy": strategy, "train_examples": train_examples,
        "validation_examples": sizes.get("validation", 0),
        "epochs": _TRAIN_EPOCHS.value, "width_multiplier": _WIDTH.value,
        "max_train_examples": _MAX_TRAIN_EXAMPLES.value,
        "seconds": round(seconds, 1), "train_seconds": metrics["train_seconds"],
        "epoch_seconds": seconds_per_epoch,
        "samples_per_second_per_epoch": [round(train_examples / s, 1)
                                         for s in seconds_per_epoch if s],
        **memory,
        "cache_bytes": sum(scale.folder_bytes(os.path.join(base, n)) for n in os.listdir(base)
                           if n.startswith("cache")),
        "test_error_cm": metrics.get("test_error_cm"),
        "machine_before": machine, "machine_after": _machine(),
        "flags": train_flags,
    }
    scale.store_entry(os.path.join(_RESULTS_DIR.value, "train.json"), entry,
                      ("size", "strategy", "train_examples", "epochs"))
    print(f"size {label}: epochs {seconds_per_epoch} s, peak {memory['peak_pss_mib']:.0f} "
          "MiB (PSS)", flush=True)


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"Unexpected arguments: {argv[1:]}")
    if not _RAW_DIR.value or not os.path.isdir(_RAW_DIR.value):
        raise app.UsageError(
            f"--raw_dir must be a folder of recordings. Received: {_RAW_DIR.value!r}. "
            "Render one: python recipes/make_synthetic.py --output_dir=data/tenth/raw "
            "--preset=tenth --jobs=2")
    strategies = set(_TRAIN_STRATEGIES.value) - {"default", "multi_worker"}
    if strategies:
        raise app.UsageError(f"--train_strategies: unknown {sorted(strategies)}; "
                             "use default and/or multi_worker.")
    workers = [int(w) for w in _PREPARE_WORKERS.value]
    for size in _SIZES.value:
        label = "all" if size == "all" else str(int(size))
        names, frames = scale.choose_recordings(_RAW_DIR.value,
                                                None if size == "all" else int(size))
        data_dir = None
        for count in workers:
            data_dir = prepare_size(label, names, frames, count)
        if _TRAIN_EPOCHS.value > 0:
            for strategy in _TRAIN_STRATEGIES.value:
                train_size(label, data_dir, strategy)


if __name__ == "__main__":
    app.run(main)
