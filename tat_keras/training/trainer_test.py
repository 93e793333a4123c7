import keras
import numpy as np
import pytest

from tat_keras import models
from tat_keras.training import trainer as trainer_lib

BINS = dict(x_bins=10, y_bins=10, x_low=-5.0, x_bin_size=1.0, y_low=-5.0,
            y_bin_size=1.0)


def _data(n=8, seed=0, size=32):
    rng = np.random.default_rng(seed)
    inputs = {name: rng.uniform(0, 255, (n, size, size, 3)).astype("float32")
              for name in models.INPUT_NAMES}
    gaze = rng.uniform(-4, 4, (n, 2)).astype("float32")
    return inputs, gaze


def _student(seed=0):
    keras.utils.set_random_seed(seed)
    return models.GazeNet(image_size=32, width_multiplier=0.125, **BINS)


def _bce_sum(targets, probs):
    p = np.clip(probs, 1e-7, 1 - 1e-7)
    return np.mean(np.sum(-(targets * np.log(p) + (1 - targets) * np.log(1 - p)), -1))


def test_loss_is_eq9_with_hard_and_teacher_terms():
    inputs, gaze = _data()
    student = _student()
    teacher = _student(seed=1)
    trainer = trainer_lib.GazeTrainer(
        student, lambda_hard=0.2, lambda_mix=0.0, lambda_teacher=0.6)
    trainer.compile(optimizer=keras.optimizers.SGD(0.0))
    trainer.set_teachers([teacher.get_weights()])
    # NumPy side of Eq. 9 on the same batch (batch norm in training mode).
    probs = {k: np.asarray(v) for k, v in student(inputs, training=True).items()}
    teacher_probs = {k: np.asarray(v) for k, v in teacher(inputs).items()}
    targets = {"x": student.bins["x"].encode(gaze[:, 0]),
               "y": student.bins["y"].encode(gaze[:, 1])}
    hard = sum(_bce_sum(targets[k], probs[k]) for k in "xy")
    soft = sum(_bce_sum(teacher_probs[k], probs[k]) for k in "xy")
    logs = trainer.train_on_batch(inputs, gaze, return_dict=True)
    np.testing.assert_allclose(logs["hard_loss"], hard, rtol=1e-4)
    np.testing.assert_allclose(logs["teacher_loss"], soft, rtol=1e-4)
    np.testing.assert_allclose(logs["loss"], 0.2 * hard + 0.6 * soft, rtol=1e-4)


def test_teacher_never_trains_and_student_does():
    inputs, gaze = _data()
    student = _student()
    trainer = trainer_lib.GazeTrainer(
        student, lambda_hard=0.2, lambda_mix=0.4, lambda_teacher=0.6)
    trainer.compile(optimizer=keras.optimizers.Adam(1e-2), run_eagerly=True)
    teacher_weights = _student(seed=1).get_weights()
    trainer.set_teachers([teacher_weights])
    before = [np.array(w) for w in student.trainable_weights]
    trainer.fit(inputs, gaze, batch_size=4, epochs=2, verbose=0)
    for held, original in zip(trainer.teacher_models[0].get_weights(), teacher_weights):
        np.testing.assert_array_equal(held, original)
    changed = [not np.array_equal(b, np.array(a))
               for b, a in zip(before, student.trainable_weights)]
    assert all(changed)


def test_mean_teacher_averages_probabilities():
    inputs, _ = _data(4)
    student = _student()
    trainer = trainer_lib.GazeTrainer(student, lambda_teacher=1.0)
    trainer.compile(optimizer="adam")
    teachers = [_student(seed=s) for s in (1, 2)]
    trainer.set_teachers([t.get_weights() for t in teachers])
    mean = trainer._teacher_probs(inputs)
    for key in "xy":
        expected = np.mean([np.asarray(t(inputs)[key]) for t in teachers], axis=0)
        np.testing.assert_allclose(np.asarray(mean[key]), expected, rtol=1e-5,
                                   atol=1e-6)


@pytest.mark.parametrize("lambda_mix, dwo", [
    (0.0, None),
    (0.4, None),
    (0.0, dict(epsilon=3.0, step_size=1.0, steps=1, num_center_bins=8,
               original_fraction=0.5)),
])
def test_training_reduces_the_hard_loss(lambda_mix, dwo):
    inputs, gaze = _data(16)
    trainer = trainer_lib.GazeTrainer(_student(), lambda_mix=lambda_mix, dwo=dwo)
    # Eager: the graph path is covered by the end-to-end training tests.
    trainer.compile(optimizer=keras.optimizers.Adam(3e-3), run_eagerly=True)
    history = trainer.fit(inputs, gaze, batch_size=8, epochs=6, verbose=0)
    losses = history.history["hard_loss"]
    assert losses[-1] < losses[0]
    assert "mix_loss" in history.history if lambda_mix else True


def test_invalid_arguments():
    with pytest.raises(ValueError, match="lambda_mix must be >= 0"):
        trainer_lib.GazeTrainer(_student(), lambda_mix=-1.0)
    with pytest.raises(ValueError, match="dwo settings miss"):
        trainer_lib.GazeTrainer(_student(), dwo={"epsilon": 3.0})
