"""The JAX train step against TensorFlow's, step for step.

Keras picks its backend when it is first imported, so each backend runs in
a process of its own: this file, run as a script (`python jax_step_test.py
BACKEND OUTPUT_DIR`), trains on that backend and writes `.npz` files that
the tests compare. Both processes start from the same weights (the
TensorFlow one writes them, the JAX one reads them) and see the same
batches.

Keras's random generators are not the same function on the two backends
(TensorFlow's stateless ops against JAX's threefry), so both steps are given
the same draws: `_FixedDraws` replaces `draw_step_randomness` by NumPy draws
of a fixed seed (which samples stay original under DwO; mixup's weights and
partners). Everything else of the step, PGD included, is each backend's own.

The steps use SGD with momentum (its update is linear in the gradient) and
the rebirth Adam with `epsilon=1e-3`: Adam's first update of a weight is
`lr * g / (|g| + epsilon)`, and with Keras's default `epsilon=1e-7` a
gradient that is zero up to round-off (a convolution bias under batch norm)
becomes a full step of either sign, which no tolerance can compare.

The comparisons take minutes (two processes, every scheme), so they are
marked slow: `make test-all` and CI (`.ci/run`) run them.
"""

import json
import os
import subprocess
import sys

import numpy as np
import pytest

BACKENDS = ("tensorflow", "jax")
IMAGE_SIZE = 32
BINS = dict(x_bins=8, y_bins=8, x_low=-4.0, x_bin_size=1.0, y_low=-4.0, y_bin_size=1.0)
DWO = dict(epsilon=3.0, step_size=1.0, steps=2, num_center_bins=4,
           original_fraction=0.5)
# Eq. 9 weights per scheme, as `builders.build_trainer` sets them.
SCHEMES = {
    "standard": dict(lambda_hard=1.0),
    "standard_dwo": dict(lambda_hard=1.0, dwo=DWO),
    "sd": dict(lambda_hard=0.2, lambda_teacher=0.6, teachers=1),
    "tat": dict(lambda_hard=0.2, lambda_mix=0.4, lambda_teacher=0.6, teachers=2),
    "tat_dwo": dict(lambda_hard=0.2, lambda_mix=0.4, lambda_teacher=0.6, dwo=DWO,
                    teachers=2),
}
# Eight samples: with four, batch norm's statistics over so few values left
# the seeded weights at a point where the eye branch's loss is not smooth
# (its finite differences jump by 1e-4 at steps of 1e-3), and the two
# backends' gradients of the shared eye branch parted by 25%.
BATCH = 8


# --- The worker: one backend, every case --------------------------------------


def _batches(count, seed=0):
    rng = np.random.default_rng(seed)
    from tat_keras.crops import INPUT_NAMES

    return [({n: rng.uniform(0, 255, (BATCH, IMAGE_SIZE, IMAGE_SIZE, 3)).astype("float32")
              for n in INPUT_NAMES},
             rng.uniform(-3.5, 3.5, (BATCH, 2)).astype("float32"))
            for _ in range(count)]


def _fixed_draws(batch_size, fraction):
    rng = np.random.default_rng(100 + batch_size)
    is_original = np.zeros(batch_size, bool)
    is_original[rng.permutation(batch_size)[: int(round(fraction * batch_size))]] = True
    return {"is_original": is_original,
            "alpha": rng.uniform(size=batch_size).astype("float32"),
            "permutation": rng.permutation(batch_size).astype("int32")}


def _student(dtype=None):
    from tat_keras import models

    return models.GazeNet(image_size=IMAGE_SIZE, width_multiplier=0.125, dtype=dtype,
                          **BINS)


def _starting_weights(path):
    """Weight lists of the student and two teachers, shared by both workers.

    The TensorFlow worker draws them (batch norms with moving statistics
    away from 0 and 1, so that PGD's inference-mode passes depend on them)
    and writes them; the JAX worker reads them.
    """
    if os.path.exists(path):
        with np.load(path) as arrays:
            count = len(arrays.files) // 3
            return [[arrays[f"net{n}_{i}"] for i in range(count)] for n in range(3)]
    import keras

    keras.utils.set_random_seed(0)
    rng = np.random.default_rng(0)
    nets = []
    for _ in range(3):
        weights = []
        for variable in _student().weights:
            value = variable.numpy()
            name = variable.path.split("/")[-1]
            if name in ("gamma", "moving_variance"):
                value = rng.uniform(0.5, 1.5, value.shape)
            elif name in ("beta", "moving_mean"):
                value = rng.normal(0.0, 0.2, value.shape)
            weights.append(value.astype("float32"))
        nets.append(weights)
    np.savez(path, **{f"net{n}_{i}": w for n, net in enumerate(nets)
                      for i, w in enumerate(net)})
    return nets


def _trainer(scheme, weights, optimizer, run_eagerly=False, dtype=None):
    import keras

    from tat_keras.training import trainer as trainer_lib

    class _FixedDraws(trainer_lib.GazeTrainer):
        def draw_step_randomness(self, batch_size):
            drawn = super().draw_step_randomness(batch_size)
            fraction = self.dwo["original_fraction"] if self.dwo else 1.0
            fixed = _fixed_draws(int(batch_size), fraction)
            return {key: keras.ops.convert_to_tensor(fixed[key]) for key in drawn}

    settings = dict(SCHEMES[scheme])
    teachers = settings.pop("teachers", 0)
    student = _student(dtype)
    student.set_weights(weights[0])
    trainer = _FixedDraws(student, seed=0, **settings)
    trainer.compile(optimizer=optimizer, run_eagerly=run_eagerly)
    if teachers:
        trainer.set_teachers(weights[1: 1 + teachers])
    return trainer


def _arrays(values):
    return [np.asarray(v) for v in values]


def run_steps(output_dir, weights):
    """One train step per scheme: losses, perturbations, weights, momenta."""
    import keras

    batches = _batches(1)
    for scheme in SCHEMES:
        trainer = _trainer(scheme, weights, keras.optimizers.SGD(0.1, momentum=0.9),
                           run_eagerly=True)
        # PGD's samples of the batch, computed as the step computes them
        # (the student is not changed by it).
        perturbed = trainer.prepare_step(batches[0])[0]
        logs = [trainer.train_on_batch(*batch, return_dict=True) for batch in batches]
        np.savez(os.path.join(output_dir, f"step_{scheme}.npz"),
                 **{f"perturbed_{k}": np.asarray(v) for k, v in perturbed.items()},
                 **{f"loss_{k}": np.array([log[k] for log in logs]) for k in logs[0]},
                 **{f"weight_{i}": w for i, w in enumerate(_arrays(
                     trainer.student.weights))},
                 **{f"optimizer_{i}": w for i, w in enumerate(_arrays(
                     trainer.optimizer.variables))})


def run_bfloat16(output_dir, weights):
    """One TAT + DwO step with `mixed_bfloat16` and the same with float32."""
    import keras

    losses = {}
    for dtype in ("mixed_bfloat16", "float32"):
        trainer = _trainer("tat_dwo", weights, keras.optimizers.SGD(0.1),
                           run_eagerly=True, dtype=dtype)
        logs = trainer.train_on_batch(*_batches(1)[0], return_dict=True)
        losses.update({f"{dtype}_{k}": np.asarray(v) for k, v in logs.items()})
    np.savez(os.path.join(output_dir, "bfloat16.npz"), **losses)


def run_rebirth(output_dir, weights):
    """A rebirth after one step: CSP's choice, AOI's filters, zeroed moments."""
    from tat_keras.training import optimizers
    from tat_keras.training import rebirth

    trainer = _trainer("tat_dwo", weights, optimizers.RebirthAdam(1e-3, epsilon=1e-3),
                       run_eagerly=True)
    trainer.train_on_batch(*_batches(1)[0])
    record = rebirth.apply_rebirth(trainer.student, pruning_method="csp", ratio=0.2,
                                   max_layer_ratio=0.5, seed=7,
                                   optimizer=trainer.optimizer)
    with open(os.path.join(output_dir, "rebirth.json"), "w") as f:
        json.dump(record, f, default=float)
    # The first step after the rebirth moves the re-born filters alike.
    trainer.train_on_batch(*_batches(2, seed=1)[1])
    np.savez(os.path.join(output_dir, "rebirth.npz"),
             **{f"weight_{i}": w for i, w in enumerate(_arrays(trainer.student.weights))},
             **{f"optimizer_{i}": w for i, w in enumerate(_arrays(
                 trainer.optimizer.variables))})


def run_short(output_dir, weights):
    """Three epochs of TAT with `fit`: mini-generations [2, 1], the teacher
    bank, a rebirth and the checkpoint callback. (Without DwO: over several
    steps, a pixel whose input gradient is within round-off of zero may take
    either sign, and the two runs part by more than round-off.)"""
    import keras

    from tat_keras.training import checkpoint
    from tat_keras.training import generations
    from tat_keras.training import teachers

    trainer = _trainer("tat", weights, keras.optimizers.SGD(0.05, momentum=0.9))
    trainer.set_teachers([])
    bank = teachers.TeacherBank("random", threshold=None, seed=0)
    record, history = generations.GenerationRecord(), []
    saver = checkpoint.RunCheckpoint(os.path.join(output_dir, "checkpoints"), trainer,
                                     bank, record, history)
    callbacks = [generations.MiniGenerations(trainer, bank, [2, 1], record,
                                             prune_ratio=0.2, seed=0), saver]
    batches = _batches(2, seed=2)
    inputs = {k: np.concatenate([b[0][k] for b in batches]) for k in batches[0][0]}
    labels = np.concatenate([b[1] for b in batches])
    trainer.fit(inputs, labels, batch_size=BATCH, epochs=3, shuffle=False,
                validation_data=(inputs, labels), callbacks=callbacks, verbose=0)
    with open(os.path.join(output_dir, "short.json"), "w") as f:
        json.dump({"history": history, "record": record.to_json()}, f,
                  default=generations._jsonable)
    np.savez(os.path.join(output_dir, "short.npz"),
             **{f"weight_{i}": w for i, w in enumerate(_arrays(trainer.student.weights))})


def main(backend, output_dir, weights_path, parts):
    os.environ["KERAS_BACKEND"] = backend
    import keras

    if keras.backend.backend() != backend:
        raise RuntimeError(f"Keras runs on {keras.backend.backend()}, not {backend}: "
                           "run this worker in a fresh process.")
    weights = _starting_weights(weights_path)
    runs = {"steps": run_steps, "bfloat16": run_bfloat16, "rebirth": run_rebirth,
            "short": run_short}
    for part in parts.split(","):
        runs[part](output_dir, weights)


# --- The tests ----------------------------------------------------------------


def _run_backends(root, parts):
    """Runs the worker on each backend; returns backend -> output folder."""
    weights = os.path.join(root, "weights.npz")
    outputs = {}
    for backend in BACKENDS:  # TensorFlow first: it writes the weights.
        output = os.path.join(root, backend)
        os.makedirs(output)
        env = {**os.environ, "KERAS_BACKEND": backend, "TF_CPP_MIN_LOG_LEVEL": "3",
               "JAX_PLATFORMS": "cpu"}
        result = subprocess.run(
            [sys.executable, os.path.abspath(__file__), backend, output, weights,
             ",".join(parts)],
            env=env, capture_output=True, text=True, timeout=1200)
        assert result.returncode == 0, result.stderr[-3000:]
        outputs[backend] = output
    return outputs


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """Steps and a rebirth, run eagerly on both backends (the cheapest: a
    compiled JAX step costs more to compile than to run eagerly here)."""
    return _run_backends(str(tmp_path_factory.mktemp("backends")),
                         ("steps", "bfloat16", "rebirth"))


@pytest.fixture(scope="module")
def short_runs(tmp_path_factory):
    """A short `fit`, its JAX step compiled with `jax.jit`."""
    return _run_backends(str(tmp_path_factory.mktemp("short")), ("short",))


def _load(runs, name):
    loaded = []
    for backend in BACKENDS:
        with np.load(os.path.join(runs[backend], name)) as arrays:
            loaded.append({k: arrays[k] for k in arrays.files})
    return loaded


def _assert_same_step(tf_run, jax_run):
    assert sorted(tf_run) == sorted(jax_run)
    for key in sorted(tf_run):
        if key.startswith("loss_"):
            np.testing.assert_allclose(jax_run[key], tf_run[key], rtol=2e-5,
                                       err_msg=key)
        elif key.startswith("perturbed_"):
            np.testing.assert_allclose(jax_run[key], tf_run[key], atol=1e-4,
                                       err_msg=key)
        else:
            np.testing.assert_allclose(jax_run[key], tf_run[key], rtol=1e-4,
                                       atol=1e-5, err_msg=key)


@pytest.mark.slow
@pytest.mark.parametrize("scheme", list(SCHEMES))
def test_one_step_is_the_same_on_both_backends(runs, scheme):
    tf_run, jax_run = _load(runs, f"step_{scheme}.npz")
    expected_losses = {"standard": {"loss", "hard_loss", "error_cm"},
                       "standard_dwo": {"loss", "hard_loss", "error_cm"},
                       "sd": {"loss", "hard_loss", "teacher_loss", "error_cm"},
                       "tat": {"loss", "hard_loss", "mix_loss", "teacher_loss",
                               "error_cm"},
                       "tat_dwo": {"loss", "hard_loss", "mix_loss", "teacher_loss",
                                   "error_cm"}}[scheme]
    assert {k[len("loss_"):] for k in tf_run if k.startswith("loss_")} == expected_losses
    _assert_same_step(tf_run, jax_run)


@pytest.mark.slow
@pytest.mark.parametrize("scheme", ["standard_dwo", "tat_dwo"])
def test_dwo_moves_the_replaced_samples_alike(runs, scheme):
    """The same samples get the same PGD perturbation, pixel for pixel."""
    tf_run, jax_run = _load(runs, f"step_{scheme}.npz")
    clean = _batches(1)[0][0]
    is_original = _fixed_draws(BATCH, DWO["original_fraction"])["is_original"]
    largest = DWO["steps"] * DWO["step_size"]  # Within epsilon: no clipping.
    for name, value in clean.items():
        for run in (tf_run, jax_run):
            moved = np.abs(run[f"perturbed_{name}"] - value)
            np.testing.assert_array_equal(moved[is_original], 0.0)
            np.testing.assert_allclose(moved[~is_original].max(axis=(1, 2, 3)), largest,
                                       rtol=1e-5)
        np.testing.assert_array_equal(jax_run[f"perturbed_{name}"],
                                      tf_run[f"perturbed_{name}"])


@pytest.mark.slow
def test_mixed_bfloat16_steps_on_both_backends(runs):
    """A bfloat16 step computes the float32 step's losses to bfloat16's
    precision (8 significant bits: a relative 2**-8) on either backend."""
    for run in _load(runs, "bfloat16.npz"):
        names = sorted(k[len("float32_"):] for k in run if k.startswith("float32_"))
        assert names == ["error_cm", "hard_loss", "loss", "mix_loss", "teacher_loss"]
        # Not the error in cm: it counts probabilities above 0.5, and one
        # within bfloat16's precision of 0.5 moves a prediction by a bin.
        assert np.isfinite(run["mixed_bfloat16_error_cm"])
        for name in names[1:]:
            np.testing.assert_allclose(run[f"mixed_bfloat16_{name}"],
                                       run[f"float32_{name}"], rtol=2.0 ** -8,
                                       err_msg=name)


@pytest.mark.slow
def test_rebirth_reinitializes_the_same_filters(runs):
    records = []
    for backend in BACKENDS:
        with open(os.path.join(runs[backend], "rebirth.json")) as f:
            records.append(json.load(f))
    assert records[0] and records[0].keys() == records[1].keys()
    for name in records[0]:
        assert records[0][name]["pruned"] == records[1][name]["pruned"]
        for key, value in records[0][name].items():
            if isinstance(value, float):
                np.testing.assert_allclose(records[1][name][key], value, rtol=1e-4)
    tf_run, jax_run = _load(runs, "rebirth.npz")
    _assert_same_step(tf_run, jax_run)


@pytest.mark.slow
def test_short_run_writes_the_same_records(short_runs):
    runs = short_runs
    records = []
    for backend in BACKENDS:
        with open(os.path.join(runs[backend], "short.json")) as f:
            records.append(json.load(f))
        assert sorted(os.listdir(os.path.join(runs[backend], "checkpoints"))) == [
            "epoch_0002", "latest.json", "teachers"]
    tf_record, jax_record = records
    assert [h.keys() for h in tf_record["history"]] == [
        h.keys() for h in jax_record["history"]]
    for tf_epoch, jax_epoch in zip(tf_record["history"], jax_record["history"]):
        # The losses; not the errors in cm, which count probabilities above
        # 0.5: one within round-off of 0.5 moves a prediction by a bin.
        for key in ("loss", "hard_loss", "mix_loss", "teacher_loss", "val_loss"):
            np.testing.assert_allclose(jax_epoch[key], tf_epoch[key], rtol=1e-4,
                                       err_msg=key)
    tf_generations = tf_record["record"]["generations"]
    jax_generations = jax_record["record"]["generations"]
    assert [g.keys() for g in tf_generations] == [g.keys() for g in jax_generations]
    assert [g["teachers"] for g in tf_generations] == [g["teachers"] for g in
                                                        jax_generations]
    assert ({n: r["pruned"] for n, r in tf_generations[0]["rebirth"].items()}
            == {n: r["pruned"] for n, r in jax_generations[0]["rebirth"].items()})
    # Three epochs of SGD with momentum compound float32 round-off: a single
    # weight can part by about 1% (one of 288 did, by 1.3e-4), while each
    # tensor as a whole stayed within 4e-4 of TensorFlow's (relative norm of
    # the difference, two runs). The check is on that norm.
    tf_run, jax_run = _load(runs, "short.npz")
    for key in tf_run:
        difference = np.linalg.norm(jax_run[key] - tf_run[key])
        assert difference <= 1e-3 * np.linalg.norm(tf_run[key]), key


if __name__ == "__main__":
    main(*sys.argv[1:])
