"""Tests of the scale measurements and plan (`tat_keras/scale.py`)."""

import json
import os
import sys

import numpy as np
import pytest

from tat_keras import scale


def _hours(seconds):
    if seconds < 90:
        return f"{seconds:.0f} s"
    return f"{seconds / 3600:.1f} h" if seconds >= 3600 else f"{seconds / 60:.0f} min"


def test_amdahl_passes_through_both_measurements():
    for rate_1, rate_2 in ((100.0, 180.0), (50.0, 99.0), (80.0, 80.0)):
        assert scale.amdahl(rate_1, rate_2, 1) == pytest.approx(rate_1)
        assert scale.amdahl(rate_1, rate_2, 2) == pytest.approx(rate_2)
    # Re-derived: speedup at 2 is 1.8, so s = 2 / 1.8 - 1 = 1/9 and the
    # speedup at 32 is 1 / (1/9 + (8/9) / 32).
    assert scale.amdahl(100.0, 180.0, 32) == pytest.approx(100.0 / (1 / 9 + 8 / 9 / 32))
    # Two workers slower than one: everything serial, no gain from more.
    assert scale.amdahl(100.0, 90.0, 32) == pytest.approx(100.0)


def test_epoch_seconds_reads_keras_progress_bars():
    bar = "\x1b[1m{0}/{1}\x1b[0m \x1b[32m━━━━\x1b[0m \x1b[1m{2}\x1b[0m {3}/step - loss: 1.5"
    log = "".join([
        bar.format(1, 8, "0s", "250ms"), bar.format(8, 8, "412s", "51ms"),
        " - val_error_cm: 5.1\n",
        bar.format(3, 8, "1s", "70ms"), bar.format(8, 8, "38s", "4ms"),
        " - val_error_cm: 4.9\n",
        bar.format(8, 8, "9s", "1ms"), "\n",  # An evaluation: no validation.
    ])
    assert scale.epoch_seconds(log) == [412, 38]
    assert scale.epoch_seconds("nothing here") == []


def test_tree_memory_adds_up_children_and_grandchildren(tmp_path):
    """A child holding 150 MiB starts a grandchild holding 100 MiB: the
    peak of the tree counts both, once."""
    hold = ("import numpy as np, time; a = np.ones({0} * 2**20, np.uint8); "
            "time.sleep({1})")
    child = ("import subprocess, sys; "
             f"p = subprocess.Popen([sys.executable, '-c', {hold.format(100, 2.5)!r}]); "
             + hold.format(150, 4.0).replace("time.sleep(4.0)", "time.sleep(4.0); p.wait()"))
    seconds, memory, codes = scale.run_measured(
        [[sys.executable, "-c", child]], [str(tmp_path / "child.log")], period=0.1)
    assert codes == [0]
    assert seconds >= 4.0
    assert memory["peak_processes"] == 2
    assert 250 <= memory["peak_pss_mib"] < 250 + 2 * 60  # Two interpreters' own.
    assert memory["peak_rss_sum_mib"] >= memory["peak_pss_mib"]
    timeline = memory["pss_timeline_mib"]
    assert 0 < len(timeline) <= scale.TreeMemory.TIMELINE_POINTS
    assert max(mib for _, mib in timeline) == memory["peak_pss_mib"]
    assert [t for t, _ in timeline] == sorted(t for t, _ in timeline)
    # The grandchild exits a second or more before its parent: the last window
    # holds one interpreter and its 150 MiB, not both.
    assert timeline[-1][1] < memory["peak_pss_mib"] - 50


def test_choose_recordings_takes_folder_order_and_every_split(tmp_path):
    from tat_keras.data import synthetic

    raw = str(tmp_path / "raw")
    config = synthetic.SyntheticConfig(
        num_train_subjects=5, num_val_subjects=1, num_test_subjects=1,
        dots_per_recording=3, frames_per_dot=2, stare_dots_per_recording=1,
        stare_frames_per_dot=3, seed=2)
    synthetic.render_dataset(raw, config, progress=False)
    from tat_keras.data.gaze_capture import layout

    names = layout.list_recordings(raw)
    frames = {n: layout.count_recording_frames(os.path.join(raw, n)) for n in names}
    splits = {n: layout.read_split(os.path.join(raw, n)) for n in names}
    chosen, total = scale.choose_recordings(raw, 1)
    assert names[0] in chosen
    assert {splits[n] for n in chosen} == {"train", "validation", "test"}
    assert total == sum(frames[n] for n in chosen)
    assert scale.choose_recordings(raw, None) == (names, sum(frames.values()))
    scale.link_subset(raw, chosen, str(tmp_path / "subset"))
    assert sorted(os.listdir(tmp_path / "subset")) == chosen
    scale.link_subset(raw, chosen[:1], str(tmp_path / "subset"))  # Shrinks.
    assert os.listdir(tmp_path / "subset") == chosen[:1]
    assert scale.folder_bytes(str(tmp_path / "subset")) == scale.folder_bytes(
        os.path.join(raw, chosen[0]))


def test_store_entry_replaces_the_same_measurement(tmp_path):
    path = str(tmp_path / "records" / "prepare.json")
    scale.store_entry(path, {"size": "1", "workers": 1, "seconds": 5}, ("size", "workers"))
    scale.store_entry(path, {"size": "1", "workers": 2, "seconds": 3}, ("size", "workers"))
    scale.store_entry(path, {"size": "1", "workers": 1, "seconds": 4}, ("size", "workers"))
    assert sorted((e["workers"], e["seconds"]) for e in scale.load_entries(path)) == [
        (1, 4), (2, 3)]


def _write_records(results, gpu):
    os.makedirs(results)
    prepare = [
        {"size": "13000", "workers": 1, "frames": 13000, "frames_per_second": 100.0,
         "raw_bytes": 13000 * 30_000, "prepared_bytes": 13000 * 16_000},
        {"size": "13000", "workers": 2, "frames": 13000, "frames_per_second": 180.0,
         "raw_bytes": 13000 * 30_000, "prepared_bytes": 13000 * 16_000},
        {"size": "60000", "workers": 1, "frames": 60_000, "frames_per_second": 120.0,
         "raw_bytes": 60_000 * 30_000, "prepared_bytes": 60_000 * 16_000},
        {"size": "60000", "workers": 2, "frames": 60_000, "frames_per_second": 220.0,
         "raw_bytes": 60_000 * 30_000, "prepared_bytes": 60_000 * 16_000},
        {"size": "all", "workers": 2, "frames": 250_000, "frames_per_second": 170.0,
         "raw_bytes": 250_000 * 32_000, "prepared_bytes": 250_000 * 15_000},
    ]
    train = [
        {"size": "all", "strategy": "default", "train_examples": 200_000,
         "validation_examples": 10_000, "epoch_seconds": [900, 500],
         "samples_per_second_per_epoch": [222.2, 400.0], "cache_bytes": 210_000 * 37_000,
         "max_train_examples": None},
    ]
    steps = {"rows": [
        {"scheme": "standard", "width": 0.125, "jit_default": False,
         "step_samples_per_s": {"jit_false": 500.0}},
        {"scheme": "standard", "width": 0.25, "jit_default": False,
         "step_samples_per_s": {"jit_false": 200.0}},
        {"scheme": "standard", "width": 1.0, "jit_default": False,
         "step_samples_per_s": {"jit_false": 6.0}},
    ]}
    for name, content in (("prepare.json", prepare), ("train.json", train),
                          ("cpu_steps.json", steps)):
        with open(os.path.join(results, name), "w") as f:
            json.dump(content, f)
    with open(gpu, "w") as f:
        json.dump([{"scheme": "standard", "width_multiplier": 1.0,
                    "samples_per_second": 20_000.0},
                   {"scheme": "tat_dwo", "width_multiplier": 1.0,
                    "samples_per_second": 12_000.0}], f)


def test_plan_rows_recompute_from_the_records(tmp_path):
    results, gpu = str(tmp_path / "scale"), str(tmp_path / "gpu.json")
    _write_records(results, gpu)
    flops = {"0.125": 32e6, "0.25": 120e6, "1.0": 1.8e9}
    rows, inputs = scale.plan(results, [gpu], 790.0, 0.15, flops)
    text = {row["quantity"].split(" (")[0]: row for row in rows}
    frames = scale.GAZECAPTURE_FRAMES
    train = scale.GAZECAPTURE_SPLITS["train"]
    # Preparation: measured at 170 frames/s on the whole twin; 8 and 32 cores
    # by Amdahl's law from the largest size measured at 1 and 2 workers:
    # s = 2 * 120 / 220 - 1.
    prep = text["preparation of GazeCapture"]
    assert prep["measured"].startswith(f"2 cores: {_hours(frames / 170.0)}")
    serial = 2 * 120 / 220 - 1
    assert inputs["serial"] == pytest.approx(serial)
    for cores in (8, 32):
        rate = 170.0 / 220.0 * 120.0 / (serial + (1 - serial) / cores)
        assert f"{cores} cores: {_hours(frames / rate)}" in prep["estimated"]
    # Disk, scaled by GazeCapture's counts.
    disk = text["disk: raw frames / prepared dataset / training's file cache"]
    cached = scale.GAZECAPTURE_SPLITS["train"] + scale.GAZECAPTURE_SPLITS["validation"]
    assert disk["estimated"].startswith(
        f"{32_000 * frames / 1e9:.0f} / {15_000 * frames / 1e9:.0f} / "
        f"{37_000 * cached / 1e9:.0f} GB")
    # Epochs: measured at 1/8 (steady epoch 400 samples/s); the other CPU
    # widths from their step rates times the epoch/step ratio 400 / 500.
    assert _hours(train / 400.0) in text["training epoch at width 0.125"]["measured"]
    assert _hours(train / (200.0 * 0.8)) in text["training epoch at width 0.25"]["measured"]
    full = text["training epoch at width 1"]
    assert _hours(train / (6.0 * 0.8)) in full["measured"]
    assert f"{_hours(train / 20_000.0)} per epoch of steps" in full["measured"]
    rate = 790e12 * 0.15 / (3 * 1.8e9)
    assert full["estimated"].startswith(f"one GPU: {_hours(train / rate)}")
    # The schedule: 36 epochs at the measured TAT + DwO and standard rates.
    schedule = [r for r in rows if r["quantity"].startswith("the paper's schedule")]
    assert schedule[0]["estimated"].startswith(_hours(36 * train / 12_000.0))
    assert _hours(36 * train / 20_000.0) in schedule[0]["estimated"]
    assert inputs["achieved_utilisation"][1.0] == pytest.approx(
        20_000 * 3 * 1.8e9 / 790e12)
    table = scale.markdown(rows)
    assert table.count("\n") == len(rows) + 2


def test_plan_needs_a_size_measured_with_one_and_two_workers(tmp_path):
    results, gpu = str(tmp_path / "scale"), str(tmp_path / "gpu.json")
    _write_records(results, gpu)
    path = os.path.join(results, "prepare.json")
    with open(path) as f:
        entries = [e for e in json.load(f) if e["workers"] == 2]
    assert len(entries) == 3
    with open(path, "w") as f:
        json.dump(entries, f)
    with pytest.raises(ValueError, match="one size measured with 1 and 2 workers"):
        scale.plan(results, [gpu], 790.0, 0.15, {"0.125": 1, "0.25": 1, "1.0": 1})


def test_forward_flops_against_the_layers():
    """The profiler's count at one-eighth width against a count from the
    layers: 2 x the multiply-adds of every convolution and dense layer, each
    counted once per call (the shared eye branch runs once per eye)."""
    import keras

    from tat_keras import models

    model = models.GazeNet(image_size=64, width_multiplier=0.125, x_bins=133, y_bins=133)
    macs = 0
    for layer in model._flatten_layers(include_self=False):
        for node in layer._inbound_nodes:
            out = node.output_tensors[0].shape
            if isinstance(layer, keras.layers.Conv2D):
                kh, kw, cin, cout = layer.kernel.shape
                macs += out[1] * out[2] * cout * kh * kw * cin
            elif isinstance(layer, keras.layers.Dense):
                macs += layer.kernel.shape[0] * layer.kernel.shape[1]
    assert sum(len(l._inbound_nodes) for l in model._flatten_layers(include_self=False)
               if l.name == "eye_conv11") == 2
    counted = scale.forward_flops(0.125)
    # The profiler also counts batch norm, activations, pooling and the
    # head's sigmoid: a little above 2 x MACs.
    assert 2 * macs <= counted <= 1.1 * 2 * macs
