import keras
import numpy as np
import pytest

from tat_keras import models
from tat_keras.training import rebirth
from tat_keras.training.optimizers import RebirthAdam

BETA_1, BETA_2, EPSILON = 0.9, 0.999, 1e-7


def _numpy_adam(weights, gradients, lr, births_at, weight_decay=0.0):
    """Adam (Keras's form: epsilon outside the bias-corrected root, decoupled
    weight decay before the step) with per-element restarts: at step `s` in
    `births_at`, the elements of `births_at[s]` (a boolean mask) get zero
    moments and start counting their own steps from there."""
    w = weights.astype(np.float64).copy()
    m = np.zeros_like(w)
    v = np.zeros_like(w)
    birth = np.zeros_like(w)
    trajectory = []
    for step, g in enumerate(gradients):
        if step in births_at:
            mask = births_at[step]
            m[mask], v[mask], birth[mask] = 0.0, 0.0, step
        w = w - lr * weight_decay * w
        age = step + 1 - birth
        alpha = lr * np.sqrt(1 - BETA_2**age) / (1 - BETA_1**age)
        m = m + (g - m) * (1 - BETA_1)
        v = v + (g**2 - v) * (1 - BETA_2)
        w = w - m * alpha / (np.sqrt(v) + EPSILON)
        trajectory.append(w.copy())
    return np.stack(trajectory)


def _keras_run(optimizer, weights, gradients, restarts=None):
    variable = keras.Variable(weights.astype("float32"))
    trajectory = []
    for step, g in enumerate(gradients):
        if restarts and step in restarts:
            rebirth.reset_optimizer_state(optimizer, variable, restarts[step])
        optimizer.apply_gradients([(g.astype("float32"), variable)])
        trajectory.append(np.asarray(variable).copy())
    return np.stack(trajectory)


@pytest.fixture
def problem():
    rng = np.random.default_rng(3)
    weights = rng.normal(size=(3, 4))
    gradients = rng.normal(size=(30, 3, 4)) * rng.uniform(0.1, 2.0, size=(1, 1, 4))
    return weights, gradients


@pytest.mark.parametrize("weight_decay", [None, 0.01])
def test_without_restarts_it_is_keras_adam(problem, weight_decay):
    weights, gradients = problem
    expected = _keras_run(
        keras.optimizers.AdamW(0.01, weight_decay=weight_decay) if weight_decay
        else keras.optimizers.Adam(0.01), weights, gradients)
    got = _keras_run(RebirthAdam(0.01, weight_decay=weight_decay), weights, gradients)
    np.testing.assert_array_equal(got, expected)  # to the last bit
    np.testing.assert_allclose(
        got, _numpy_adam(weights, gradients, 0.01, {}, weight_decay or 0.0),
        rtol=1e-4, atol=1e-5)


def test_restarted_channels_follow_adam_from_their_birth(problem):
    weights, gradients = problem
    restarts = {12: [1, 3], 20: [3]}
    masks = {}
    for step, channels in restarts.items():
        mask = np.zeros(weights.shape, bool)
        mask[:, channels] = True
        masks[step] = mask
    got = _keras_run(RebirthAdam(0.01), weights, gradients, restarts)
    np.testing.assert_allclose(got, _numpy_adam(weights, gradients, 0.01, masks),
                               rtol=1e-4, atol=1e-5)
    # Channel 1 after step 12 moves as under a new optimizer started there.
    fresh = _numpy_adam(got[11][:, 1:2], gradients[12:, :, 1:2], 0.01, {})
    np.testing.assert_allclose(got[12:, :, 1:2], fresh, rtol=1e-4, atol=1e-5)
    # Untouched channels do not notice.
    plain = _numpy_adam(weights, gradients, 0.01, {})
    np.testing.assert_allclose(got[:, :, [0, 2]], plain[:, :, [0, 2]],
                               rtol=1e-4, atol=1e-5)


def test_zeroed_moments_under_plain_adam_overshoot(problem):
    """What `--rebirth_moments=zero` does, re-derived: after a reset at a
    late step the first update of a zeroed weight is
    lr * (1 - beta_1) / sqrt(1 - beta_2) ~ 3.16 lr in size."""
    weights, gradients = problem
    gradients = np.abs(gradients) + 0.5  # one sign, so steps do not cancel
    restarts = {25: [2]}
    got = _keras_run(keras.optimizers.Adam(0.01), weights, gradients, restarts)
    first = got[24, :, 2] - got[25, :, 2]
    np.testing.assert_allclose(
        first, 0.01 * (1 - BETA_1) / np.sqrt(1 - BETA_2) * (1 - BETA_2**26) ** 0.5
        / (1 - BETA_1**26), rtol=1e-3)
    fresh = _keras_run(RebirthAdam(0.01), weights, gradients, restarts)
    np.testing.assert_allclose(fresh[24, :, 2] - fresh[25, :, 2], 0.01, rtol=1e-3)


@pytest.mark.parametrize("pruning_method", ["csp", "scratch"])
def test_a_rebirth_restarts_exactly_the_reborn_weights(pruning_method):
    model = models.GazeNet(width_multiplier=0.125, x_bins=8, y_bins=8)
    optimizer = RebirthAdam(0.01)
    optimizer.build(model.trainable_variables)
    optimizer.iterations.assign(40)
    for slots in (optimizer._momentums, optimizer._velocities):
        for slot in slots:
            slot.assign(np.ones(slot.shape, "float32"))
    record = rebirth.apply_rebirth(model, pruning_method=pruning_method, seed=0,
                                   optimizer=optimizer)
    restarted = 0
    for variable in model.trainable_variables:
        index = optimizer._get_variable_index(variable)
        birth = np.asarray(optimizer._births[index])
        momentum = np.asarray(optimizer._momentums[index])
        velocity = np.asarray(optimizer._velocities[index])
        # Restarted elements: birth 40 and zero moments; others untouched.
        assert set(np.unique(birth)) <= {0.0, 40.0}
        np.testing.assert_array_equal(momentum == 0, birth == 40)
        np.testing.assert_array_equal(velocity == 0, birth == 40)
        if variable.path.endswith("kernel") and len(variable.shape) == 4:
            restarted += int(np.all(birth == 40, axis=(0, 1, 2)).sum())
    expected = sum(r["pruned"] for r in record.values())
    assert restarted == expected


def test_amsgrad_is_refused():
    with pytest.raises(ValueError, match="amsgrad"):
        RebirthAdam(0.01, amsgrad=True)


def test_restarts_survive_a_checkpoint(tmp_path):
    from tat_keras.training import checkpoint
    from tat_keras.training import generations
    from tat_keras.training import teachers
    from tat_keras.training import trainer as trainer_lib

    rng = np.random.default_rng(0)
    batch = {n: rng.uniform(0, 255, (4, 64, 64, 3)).astype("float32")
             for n in models.INPUT_NAMES}
    gaze = rng.normal(size=(4, 2)).astype("float32")

    def make_trainer():
        keras.utils.set_random_seed(0)
        student = models.GazeNet(width_multiplier=0.125, x_bins=4, y_bins=4,
                                 x_low=-3.0, x_bin_size=1.5, y_low=-3.0, y_bin_size=1.5)
        trainer = trainer_lib.GazeTrainer(student, seed=0)
        trainer.compile(optimizer=RebirthAdam(1e-2), jit_compile=False)
        return trainer

    trained = make_trainer()
    for _ in range(2):
        trained.train_step((batch, gaze))
    rebirth.apply_rebirth(trained.student, seed=0, optimizer=trained.optimizer)
    trained.train_step((batch, gaze))
    births = [np.asarray(b) for b in trained.optimizer._births]
    assert max(b.max() for b in births) == 2.0  # restarted at step 2
    directory = str(tmp_path / "checkpoints")
    checkpoint.save(directory, 0, trained, teachers.TeacherBank("random", seed=1),
                    generations.GenerationRecord([{"generation": 0, "epochs": [0]}]),
                    [], train_seconds=1.0)
    fresh = make_trainer()
    fresh.optimizer.build(fresh.student.trainable_variables)
    checkpoint.restore(checkpoint.latest(directory), directory, fresh,
                       teachers.TeacherBank("random", seed=1))
    for got, want in zip(fresh.optimizer._births, births):
        np.testing.assert_array_equal(np.asarray(got), want)
