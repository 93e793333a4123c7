"""Interrupted runs lose nothing: `kill -9` and resume with the same command.

A tiny TAT run (K=3 mini-generations of 2 epochs after one warm-up epoch:
epochs 0-2, 3-4, 5-6) is killed once the checkpoint of epoch 3, the first
epoch of the second mini-generation, is on disk; rerunning the same command
must resume it and continue as if nothing had happened: with
`--deterministic`, data order and augmentation depend on (seed, epoch) and
the checkpoint holds weights, optimizer moments and random-generator states,
so the first resumed epoch's loss is the uninterrupted run's (a resume that
lost the optimizer state, the data order or the teacher would not be).
Checkpoint writes themselves are checked against kills and partial folders.
"""

import json
import os
import signal
import subprocess
import sys
import textwrap
import time

import numpy as np
import pytest

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _read_json(*parts):
    with open(os.path.join(*parts)) as f:
        return json.load(f)


def _latest_epoch(model_dir):
    """Epoch of the checkpoint `latest.json` points to, or -1."""
    try:
        pointer = _read_json(model_dir, "checkpoints", "latest.json")
    except (FileNotFoundError, json.JSONDecodeError):
        return -1
    return int(pointer["folder"].split("_")[-1])


def _resume_flags(data_dir):
    return {
        "data_dir": data_dir, "scheme": "tat", "width_multiplier": 0.125,
        "x_bins": 16, "y_bins": 16, "batch_size": 8, "learning_rate": 0.003,
        "mini_generations": 3, "epochs_per_generation": 2, "warmup_epochs": 1,
        "augment": True, "deterministic": True, "seed": 3,
    }


@pytest.mark.slow
def test_kill_and_resume_matches_uninterrupted_run(tmp_path, tiny_synthetic_dir,
                                                   write_flagfile, run_recipe,
                                                   kill_when):
    flagfile = write_flagfile(tmp_path / "resume.flags",
                              **_resume_flags(tiny_synthetic_dir))
    reference_dir = str(tmp_path / "uninterrupted")
    reference = run_recipe("train_tat.py", f"--flagfile={flagfile}",
                           f"--model_dir={reference_dir}")
    assert reference.returncode == 0, reference.stderr[-3000:]

    model_dir = str(tmp_path / "killed")
    command = [sys.executable, os.path.join(REPO, "recipes", "train_tat.py"),
               f"--flagfile={flagfile}", f"--model_dir={model_dir}"]
    process = kill_when(command, lambda: _latest_epoch(model_dir) >= 3,
                        what="no checkpoint of epoch 3 in time", timeout=600,
                        log_path=tmp_path / "first_attempt.log", cwd=REPO)
    assert process.returncode == -signal.SIGKILL, (tmp_path / "first_attempt.log").read_text()
    killed_at = _latest_epoch(model_dir)
    assert 3 <= killed_at < 6
    assert not os.path.exists(os.path.join(model_dir, "metrics.json"))

    resumed = run_recipe("train_tat.py", f"--flagfile={flagfile}",
                         f"--model_dir={model_dir}")
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert "Resuming" in resumed.stdout
    assert f"after epoch {killed_at + 1}" in resumed.stdout

    history = _read_json(model_dir, "history.json")
    assert [h["epoch"] for h in history] == list(range(7))

    expected = _read_json(reference_dir, "generations.json")["generations"]
    actual = _read_json(model_dir, "generations.json")["generations"]
    assert len(actual) == len(expected) == 3
    for got, want in zip(actual, expected):
        for key in ("generation", "epochs", "teachers", "teacher_list", "dropped"):
            assert got.get(key) == want.get(key), (key, got, want)
        # The rebirth counts are fixed by the ratio; which filters depends on
        # the trained weights.
        pruned = [sum(r["pruned"] for r in g.get("rebirth", {}).values())
                  for g in (got, want)]
        assert pruned[0] == pruned[1]
    # Every epoch, the first resumed one included, is the uninterrupted
    # run's: same weights, moments, teacher, batches and mixup draws.
    reference_history = _read_json(reference_dir, "history.json")
    first_resumed = killed_at + 1
    for key in ("loss", "hard_loss", "mix_loss", "teacher_loss", "error_cm"):
        assert history[first_resumed][key] == pytest.approx(
            reference_history[first_resumed][key], rel=1e-5), key
    for got, want in zip(history, reference_history):
        assert got["loss"] == pytest.approx(want["loss"], rel=1e-5), (got, want)

    metrics = _read_json(model_dir, "metrics.json")
    reference_metrics = _read_json(reference_dir, "metrics.json")
    assert metrics["epochs"] == reference_metrics["epochs"] == 7
    for key in ("test_error_cm", "val_error_cm", "test_msd_cm"):
        assert metrics[key] == pytest.approx(reference_metrics[key], rel=1e-5), key


# Checkpoints against kills ----------------------------------------------


def _tiny_trainer():
    from tat_keras import models
    from tat_keras.training import trainer as trainer_lib

    import keras

    keras.utils.set_random_seed(0)
    student = models.GazeNet(width_multiplier=0.125, x_bins=4, y_bins=4)
    trainer = trainer_lib.GazeTrainer(student)
    trainer.compile(optimizer=keras.optimizers.Adam(1e-3), jit_compile=False)
    trainer.optimizer.build(student.trainable_variables)
    return trainer


def _check_complete(directory, trainer):
    """`latest()` names a checkpoint that restores; returns its epoch."""
    from tat_keras.training import checkpoint
    from tat_keras.training import teachers

    state = checkpoint.latest(directory)
    assert state is not None
    for name in ("student.weights.h5", "optimizer.npz", "state.json"):
        assert os.path.exists(os.path.join(state["folder"], name)), name
    bank = teachers.TeacherBank("random")
    checkpoint.restore(state, directory, trainer, bank)
    assert len(bank) == len(state["teachers"])
    assert [h["epoch"] for h in state["history"]] == list(range(state["epoch"] + 1))
    return state["epoch"]


def test_checkpoint_interrupted_while_writing_keeps_latest(tmp_path, monkeypatch):
    from tat_keras.training import checkpoint
    from tat_keras.training import generations
    from tat_keras.training import teachers

    trainer = _tiny_trainer()
    bank = teachers.TeacherBank("random")
    bank.add(trainer.student.get_weights(), 1.0, 0)
    record, history = generations.GenerationRecord(), [{"epoch": 0}]
    directory = str(tmp_path / "checkpoints")
    checkpoint.save(directory, 0, trainer, bank, record, history)
    saved = [np.array(w) for w in trainer.student.get_weights()]

    # The next save dies after its folder and weights are written, before
    # its state and the pointer: latest() still names epoch 0.
    history.append({"epoch": 1})
    for w in trainer.student.weights:
        w.assign(w + 1.0)

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt("killed while writing")

    monkeypatch.setattr(np, "savez", interrupted)
    with pytest.raises(KeyboardInterrupt):
        checkpoint.save(directory, 1, trainer, bank, record, history)
    monkeypatch.undo()
    assert os.path.isdir(os.path.join(directory, "epoch_0001"))
    assert _check_complete(directory, trainer) == 0
    for got, want in zip(trainer.student.get_weights(), saved):
        np.testing.assert_array_equal(got, want)

    # Saving that epoch again replaces the partial folder.
    checkpoint.save(directory, 1, trainer, bank, record, history)
    assert _check_complete(directory, trainer) == 1
    assert sorted(n for n in os.listdir(directory) if n.startswith("epoch_")) == [
        "epoch_0001"]


_SAVE_FOREVER = textwrap.dedent("""
    import os, sys
    sys.path.insert(0, {repo!r})
    sys.path.insert(0, {tests!r})
    import test_resume
    from tat_keras.training import checkpoint, generations, teachers

    trainer = test_resume._tiny_trainer()
    bank = teachers.TeacherBank("random")
    record, history = generations.GenerationRecord(), []
    epoch = 0
    while True:
        if epoch % 3 == 2:
            bank.add(trainer.student.get_weights(), 1.0, epoch)
        history.append({{"epoch": epoch}})
        checkpoint.save({directory!r}, epoch, trainer, bank, record, history)
        epoch += 1
""")


def test_checkpoint_survives_kill_9_at_any_moment(tmp_path):
    directory = str(tmp_path / "checkpoints")
    script = _SAVE_FOREVER.format(repo=REPO, tests=os.path.dirname(__file__),
                                  directory=directory)
    process = subprocess.Popen([sys.executable, "-c", script], cwd=REPO,
                               stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.time() + 300
        pointer = os.path.join(directory, "latest.json")
        while not os.path.exists(pointer):
            assert process.poll() is None, process.stderr.read().decode()[-3000:]
            assert time.time() < deadline
            time.sleep(0.05)
        # Kill at an arbitrary moment of a later save.
        start = _latest_epoch(str(tmp_path))
        while _latest_epoch(str(tmp_path)) < start + 4:
            assert process.poll() is None, process.stderr.read().decode()[-3000:]
            time.sleep(0.01)
        time.sleep(np.random.default_rng().uniform(0.0, 0.2))
    finally:
        os.kill(process.pid, signal.SIGKILL)
        process.wait()
        process.stderr.close()
    epoch = _check_complete(directory, _tiny_trainer())
    assert epoch >= 4
