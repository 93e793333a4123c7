"""What GazeCapture-sized data costs: the measuring tools of
`recipes/benchmark_scale.py` and the plan of `recipes/scale_plan.py`
(docs/data.md, "At GazeCapture's size").

Measuring: `run_measured` runs commands as child processes while
`TreeMemory` samples the proportional set size (PSS: pages shared between
processes counted once) of each and all its descendants; the peak over time
of the sum is what preparation's worker pool or a training process needed.
Planning: `plan` turns the records into the table's rows, every figure
marked measured here or estimated with its arithmetic.

Importing this module loads neither TensorFlow nor Keras (`forward_flops`
does, when called).

Example:

>>> round(amdahl(100.0, 180.0, 8), 1)
450.0
>>> epoch_seconds("8/8 ━━━ 17s 491ms/step - loss: 1.2 - val_error_cm: 7.1")
[17]
"""

import json
import os
import re
import subprocess
import threading
import time

MIB = 2.0 ** 20

# GazeCapture as published: frames, and valid frames per split (train,
# validation, test; they add up to its 1,490,959 valid frames).
GAZECAPTURE_FRAMES = 2_445_504
GAZECAPTURE_SPLITS = {"train": 1_251_983, "validation": 59_480, "test": 179_496}
WIDTHS = (0.125, 0.25, 1.0)
CORES = (2, 8, 32)
# The paper's schedule as this project reads it: K = 5 mini-generations of
# L = 7 epochs and one warm-up epoch (docs/interpretation.md); and K = 5 of 8.
SCHEDULES = {"K = 5, L = 7 + 1 warm-up (36 epochs)": 36, "K = 5 of 8 epochs (40)": 40}
# A train step is a forward and a backward pass: about 3 forward passes.
TRAIN_FLOPS_PER_FORWARD = 3


# The end of an epoch in Keras's progress bar (ANSI codes removed): steps,
# bar, seconds, time per step, ... validation metrics.
_ANSI = re.compile(r"\x1b\[[0-9;]*m")
_EPOCH_END = re.compile(r"(\d+)/\1 \S+ (\d+)s [\d.]+\w+/step[^\r\n]*?val_error_cm")


def epoch_seconds(log_text):
    """Seconds of each finished epoch in a training log (Keras progress bar).

    >>> epoch_seconds("\x1b[1m8/8\x1b[0m ━━ \x1b[1m17s\x1b[0m 491ms/step - "
    ...               "loss: 1 - val_error_cm: 7")
    [17]
    """
    return [int(m.group(2)) for m in _EPOCH_END.finditer(_ANSI.sub("", log_text))]


class TreeMemory:
    """Samples the memory of process trees in a thread: the peak over time of
    the summed PSS (and RSS) of the roots and all their descendants, and the
    PSS over time (`timeline`, at most `TIMELINE_POINTS` windows, each its
    largest sample)."""

    TIMELINE_POINTS = 120

    def __init__(self, pids, period):
        import psutil

        self._psutil = psutil
        self._roots = [psutil.Process(pid) for pid in pids]
        self._period = period
        self.peak_pss = 0
        self.peak_rss = 0
        self.peak_processes = 0
        self.samples = []  # (seconds since the start, PSS bytes)
        self._started = time.perf_counter()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _sample(self):
        processes = []
        for root in self._roots:
            try:
                processes += [root, *root.children(recursive=True)]
            except self._psutil.Error:
                continue
        pss = rss = 0
        for process in processes:
            try:
                info = process.memory_full_info()
            except self._psutil.Error:
                continue
            rss += info.rss
            pss += getattr(info, "pss", info.rss)
        self.samples.append((time.perf_counter() - self._started, pss))
        self.peak_pss = max(self.peak_pss, pss)
        self.peak_rss = max(self.peak_rss, rss)
        self.peak_processes = max(self.peak_processes, len(processes))

    def _run(self):
        while not self._stop.is_set():
            self._sample()
            self._stop.wait(self._period)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()

    def timeline(self):
        """`[[seconds, MiB], ...]`: the largest PSS sample of each of at most
        `TIMELINE_POINTS` equal windows, at the window's end."""
        if not self.samples:
            return []
        window = max(self.samples[-1][0] / self.TIMELINE_POINTS, 1e-9)
        peaks = {}
        for seconds, pss in self.samples:
            index = min(int(seconds / window), self.TIMELINE_POINTS - 1)
            peaks[index] = max(peaks.get(index, 0), pss)
        return [[round((i + 1) * window, 1), round(v / MIB, 1)]
                for i, v in sorted(peaks.items())]

    def as_dict(self):
        return {"peak_pss_mib": round(self.peak_pss / MIB, 1),
                "peak_rss_sum_mib": round(self.peak_rss / MIB, 1),
                "peak_processes": self.peak_processes,
                "pss_timeline_mib": self.timeline()}


def run_measured(commands, log_paths, env=None, period=0.5):
    """Runs commands side by side as child processes, sampling their memory
    every `period` seconds (`TreeMemory`); `env`: one dict of extra
    environment variables per command, or None.

    Returns:
        (seconds, memory dict, list of return codes).
    """
    started = time.perf_counter()
    logs = [open(path, "w") for path in log_paths]
    processes = [subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT,
                                  env={**os.environ, **(env[i] if env else {})})
                 for i, (command, log) in enumerate(zip(commands, logs))]
    with TreeMemory([p.pid for p in processes], period) as memory:
        codes = [p.wait() for p in processes]
    for log in logs:
        log.close()
    return time.perf_counter() - started, memory.as_dict(), codes


def folder_bytes(path):
    """Bytes of the files under `path`, links followed to their targets."""
    total = 0
    for root, _, files in os.walk(path, followlinks=True):
        for name in files:
            try:
                total += os.path.getsize(os.path.join(root, name))
            except OSError:
                continue
    return total


def choose_recordings(raw_dir, size):
    """The first recordings (folder order) holding at least `size` frames,
    with at least one validation and one test recording; `size=None`: all.

    Returns:
        (list of recording names, frame count).
    """
    from tat_keras.data.gaze_capture import layout

    names = layout.list_recordings(raw_dir)
    frames = {n: layout.count_recording_frames(os.path.join(raw_dir, n)) for n in names}
    if size is None:
        return names, sum(frames.values())
    splits = {}
    for name in names:
        try:
            splits[name] = layout.read_split(os.path.join(raw_dir, name))
        except layout.RecordingError:
            splits[name] = None
    chosen, total = [], 0
    for name in names:
        if total >= size:
            break
        chosen.append(name)
        total += frames[name]
    for split in ("validation", "test"):
        if not any(splits[n] == split for n in chosen):
            extra = next((n for n in names if splits[n] == split), None)
            if extra is not None:
                chosen.append(extra)
                total += frames[extra]
    return sorted(chosen), total


def link_subset(raw_dir, names, target):
    """Makes `target` hold links to exactly the recordings `names` of `raw_dir`."""
    os.makedirs(target, exist_ok=True)
    for name in names:
        link = os.path.join(target, name)
        if not os.path.lexists(link):
            os.symlink(os.path.abspath(os.path.join(raw_dir, name)), link)
    for name in os.listdir(target):
        if name not in names:
            os.remove(os.path.join(target, name))


def load_entries(path):
    """The entries of a records file, or [] when it does not exist."""
    if os.path.exists(path):
        with open(path) as f:
            return json.load(f)
    return []


def store_entry(path, entry, key):
    """Adds `entry` to the records file at `path`, replacing an entry whose
    `key` fields are equal."""
    entries = [e for e in load_entries(path) if {k: e.get(k) for k in key} !=
               {k: entry[k] for k in key}]
    entries.append(entry)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as f:
        json.dump(entries, f, indent=1)


def forward_flops(width, image_size=64, bins=133):
    """Floating-point operations of one example's forward pass through
    GazeNet (both eyes through the eye branch), by TensorFlow's profiler."""
    import tensorflow as tf
    from tensorflow.python.framework import convert_to_constants

    from tat_keras import models

    model = models.GazeNet(image_size=image_size, width_multiplier=width,
                           x_bins=bins, y_bins=bins)
    spec = {k: tf.TensorSpec([1, image_size, image_size, 3], tf.float32)
            for k in ("face", "left_eye", "right_eye")}
    function = tf.function(lambda x: model(x, training=False)).get_concrete_function(spec)
    frozen = convert_to_constants.convert_variables_to_constants_v2(function)
    options = tf.compat.v1.profiler.ProfileOptionBuilder.float_operation()
    options["output"] = "none"
    return int(tf.compat.v1.profiler.profile(graph=frozen.graph,
                                             options=options).total_float_ops)


def serial_share(rate_1, rate_2):
    """Amdahl's serial share from the rates at 1 and 2 workers:
    `s = 2 / speedup_2 - 1`, clipped to [0, 1].

    >>> round(serial_share(100.0, 180.0), 4)
    0.1111
    """
    return min(1.0, max(0.0, 2.0 * rate_1 / rate_2 - 1.0))


def amdahl(rate_1, rate_2, workers):
    """Rate at `workers` from the rates at 1 and 2 workers, by Amdahl's law.

    >>> round(amdahl(100.0, 180.0, 8), 1)
    450.0
    """
    serial = serial_share(rate_1, rate_2)
    return rate_1 / (serial + (1.0 - serial) / workers)


def _hours(seconds):
    """`seconds` for a table: "45 s", "12 min" or "1.3 h"."""
    if seconds < 90:
        return f"{seconds:.0f} s"
    return f"{seconds / 60:.0f} min" if seconds < 3600 else f"{seconds / 3600:.1f} h"


def _read_json(path):
    with open(path) as f:
        return json.load(f)


def plan(results_dir, gpu_paths, gpu_tflops, utilisation, flops):
    """The table's rows (dicts: quantity, measured, estimated) and the inputs."""
    prepare = _read_json(os.path.join(results_dir, "prepare.json"))
    train = _read_json(os.path.join(results_dir, "train.json"))
    cpu_steps = _read_json(os.path.join(results_dir, "cpu_steps.json"))
    by = {(e["size"], e["workers"]): e for e in prepare}
    largest = max((e for e in prepare if e["workers"] == 2), key=lambda e: e["frames"])
    pairs = [size for size, w in by if w == 1 and (size, 2) in by]
    if not pairs:
        raise ValueError("prepare.json needs one size measured with 1 and 2 workers.")
    # The largest such size: its fixed start-up weighs least.
    pair = max(pairs, key=lambda size: by[size, 1]["frames"])
    rate_1, rate_2 = by[pair, 1]["frames_per_second"], by[pair, 2]["frames_per_second"]
    rows = []
    # Preparation time.
    measured_rate = largest["frames_per_second"]
    estimates = []
    for cores in CORES[1:]:
        rate = measured_rate * amdahl(rate_1, rate_2, cores) / rate_2
        estimates.append(f"{cores} cores: {_hours(GAZECAPTURE_FRAMES / rate)}")
    serial = serial_share(rate_1, rate_2)
    rows.append({
        "quantity": f"preparation of GazeCapture ({GAZECAPTURE_FRAMES:,} frames)",
        "measured": (f"2 cores: {_hours(GAZECAPTURE_FRAMES / measured_rate)} "
                     f"({measured_rate:.0f} frames/s on the {largest['frames']:,}-frame "
                     "twin, 2 workers)"),
        "estimated": "; ".join(estimates) + (
            f". Amdahl's law from {rate_1:.0f} and {rate_2:.0f} frames/s at 1 and 2 "
            f"workers ({by[pair, 1]['frames']:,} frames): serial share {serial:.2f}")})
    # Disk.
    raw_per_frame = largest["raw_bytes"] / largest["frames"]
    prepared_per_frame = largest["prepared_bytes"] / largest["frames"]
    cache_entries = [e for e in train if e["strategy"] == "default" and e["cache_bytes"]]
    cache = max(cache_entries, key=lambda e: e["train_examples"])
    cache_per_example = cache["cache_bytes"] / (cache["train_examples"]
                                                + cache["validation_examples"])
    cached_examples = GAZECAPTURE_SPLITS["train"] + GAZECAPTURE_SPLITS["validation"]
    rows.append({
        "quantity": "disk: raw frames / prepared dataset / training's file cache",
        "measured": (f"{largest['raw_bytes'] / 1e9:.1f} / "
                     f"{largest['prepared_bytes'] / 1e9:.1f} GB for the twin's "
                     f"{largest['frames']:,} frames; cache "
                     f"{cache['cache_bytes'] / 1e9:.1f} GB for "
                     f"{cache['train_examples'] + cache['validation_examples']:,} "
                     "training and validation examples"),
        "estimated": (f"{raw_per_frame * GAZECAPTURE_FRAMES / 1e9:.0f} / "
                      f"{prepared_per_frame * GAZECAPTURE_FRAMES / 1e9:.0f} / "
                      f"{cache_per_example * cached_examples / 1e9:.0f} GB: "
                      f"{raw_per_frame / 1e3:.1f} KB, {prepared_per_frame / 1e3:.1f} KB "
                      f"per frame and {cache_per_example / 1e3:.1f} KB per cached "
                      "example, times GazeCapture's counts (the twin's JPEGs, not "
                      "GazeCapture's, set the raw size)")})
    # Training time per epoch.
    train_frames = GAZECAPTURE_SPLITS["train"]
    epochs = [e for e in train if e["size"] == "all" and e["strategy"] == "default"
              and len(e["epoch_seconds"]) >= 2 and not e.get("max_train_examples")]
    steady = None
    if epochs:
        run = max(epochs, key=lambda e: e["train_examples"])
        steady = run["samples_per_second_per_epoch"][-1]
    step_rates = {row["width"]: row["step_samples_per_s"][f"jit_{str(row['jit_default']).lower()}"]
                  for row in cpu_steps["rows"] if row["scheme"] == "standard"}
    gpu_rates, gpu_tat_dwo = {}, {}
    for path in gpu_paths:
        for row in _read_json(path):
            rates = {"standard": gpu_rates, "tat_dwo": gpu_tat_dwo}.get(row["scheme"])
            if rates is not None:
                key = row["width_multiplier"]
                rates[key] = max(rates.get(key, 0.0), row["samples_per_second"])
    epoch_cost = {}
    for width in WIDTHS:
        cpu_rate = step_rates.get(width)
        ratio = steady / step_rates[0.125] if steady and 0.125 in step_rates else None
        measured = []
        if width == 0.125 and steady:
            measured.append(f"CPU (2 cores): {_hours(train_frames / steady)} "
                            f"({steady:.0f} samples/s, a whole epoch of the twin's "
                            f"{run['train_examples']:,} frames with the file cache)")
        elif cpu_rate and ratio:
            measured.append(f"CPU (2 cores): {_hours(train_frames / (cpu_rate * ratio))} "
                            f"(train step {cpu_rate:.1f} samples/s times the epoch/step "
                            f"ratio {ratio:.2f} measured at 1/8)")
        if width in gpu_rates:
            measured.append(f"H200 train step: {gpu_rates[width]:,.0f} samples/s, "
                            f"{_hours(train_frames / gpu_rates[width])} per epoch of "
                            "steps (input and evaluation not counted)")
        train_flops = TRAIN_FLOPS_PER_FORWARD * flops[str(width)]
        rate = gpu_tflops * 1e12 * utilisation / train_flops
        epoch_cost[width] = train_frames / (gpu_rates.get(width) or rate)
        reached = ""
        if width in gpu_rates:
            share = gpu_rates[width] * train_flops / (gpu_tflops * 1e12)
            reached = (f"; the H200's measured step reached {share:.1%}"
                       + (", so per-step overhead, not arithmetic, sets its pace"
                          if share < utilisation / 2 else ""))
        rows.append({
            "quantity": f"training epoch at width {width:g} ({train_frames:,} frames)",
            "measured": "; ".join(measured) or "–",
            "estimated": (f"one GPU: {_hours(train_frames / rate)} "
                          f"({flops[str(width)] / 1e6:,.0f} MFLOP forward, x "
                          f"{TRAIN_FLOPS_PER_FORWARD} for a train step, at "
                          f"{utilisation:.0%} of {gpu_tflops:g} TFLOP/s: "
                          f"{rate:,.0f} samples/s{reached})")})
    tat_rate = gpu_tat_dwo.get(1.0)
    for name, count in SCHEDULES.items():
        cost = (f"{_hours(count * train_frames / tat_rate)} with TAT + DwO "
                f"({tat_rate:,.0f} samples/s, measured train step); " if tat_rate else "")
        rows.append({
            "quantity": f"the paper's schedule, {name}, width 1, one H200",
            "measured": "–",
            "estimated": (cost + f"{_hours(count * epoch_cost[1.0])} with standard "
                          f"training: {count} epochs of {train_frames:,} frames at "
                          "the measured step rate, input and evaluation not counted")})
    achieved = {width: rate * TRAIN_FLOPS_PER_FORWARD * flops[str(width)]
                / (gpu_tflops * 1e12) for width, rate in gpu_rates.items()}
    return rows, {"achieved_utilisation": achieved, "rate_1": rate_1,
                  "rate_2": rate_2, "serial": serial,
                  "steady_epoch_rate": steady, "cpu_step_rates": step_rates,
                  "gpu_step_rates": gpu_rates, "forward_flops": flops,
                  "gpu_tflops": gpu_tflops, "utilisation": utilisation}


def markdown(rows):
    lines = ["| quantity | measured here | estimated |", "|---|---|---|"]
    lines += [f"| {r['quantity']} | {r['measured']} | {r['estimated']} |" for r in rows]
    return "\n".join(lines) + "\n"


