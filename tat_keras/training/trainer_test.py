import keras
import numpy as np
import pytest
import tensorflow as tf

from tat_keras import adversarial
from tat_keras import mixup
from tat_keras import models
from tat_keras import ordinal
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
    trainer.compile(optimizer=keras.optimizers.SGD(0.0), run_eagerly=True)
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
    trainer.fit(inputs, gaze, batch_size=4, epochs=1, verbose=0)
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


def _sigmoid(z):
    return 1.0 / (1.0 + np.exp(-z))


def _numpy(value):
    return keras.ops.convert_to_numpy(value).astype(np.float64)


def test_mix_loss_is_eq9_mixup_term_against_numpy():
    """One step's mix loss: the heads on the mixed final features against
    the mixed labels (Eq. 8), with the step's own alpha and permutation."""
    inputs, gaze = _data()
    student = _student()
    trainer = trainer_lib.GazeTrainer(student, lambda_hard=0.3, lambda_mix=0.7, seed=5)
    trainer.compile(optimizer=keras.optimizers.SGD(0.0), run_eagerly=True)
    # The trainer's FeatureMixup draws alpha and the permutation first
    # thing in its call; a twin with the same seed draws the same.
    alpha, permutation = (_numpy(t) for t in mixup.FeatureMixup(seed=5).sample(8))
    permutation = permutation.astype(int)
    features = _numpy(trainer.feature_extractor(inputs, training=True))
    targets = {"x": student.bins["x"].encode(gaze[:, 0]),
               "y": student.bins["y"].encode(gaze[:, 1])}
    a = alpha[:, None]
    mixed_features = a * features + (1 - a) * features[permutation]
    hard = mix = 0.0
    for key in "xy":
        kernel, bias = (np.asarray(w, np.float64) for w in student.get_layer(key).weights)
        mixed_targets = a * targets[key] + (1 - a) * targets[key][permutation]
        mix += _bce_sum(mixed_targets, _sigmoid(mixed_features @ kernel + bias))
        hard += _bce_sum(targets[key], _sigmoid(features @ kernel + bias))
    logs = trainer.train_on_batch(inputs, gaze, return_dict=True)
    np.testing.assert_allclose(logs["mix_loss"], mix, rtol=1e-4)
    np.testing.assert_allclose(logs["hard_loss"], hard, rtol=1e-4)
    np.testing.assert_allclose(logs["loss"], 0.3 * hard + 0.7 * mix, rtol=1e-4)


def test_dwo_step_trains_on_pgd_samples():
    """The step sees Org.% clean samples and the rest moved by one PGD step
    (Eq. 14) from the center-bin loss's input gradient, re-derived here; a
    trainer whose adversary did nothing would fail."""
    step, num_center_bins = 20.0, 4
    inputs, gaze = _data()
    student = _student()
    trainer = trainer_lib.GazeTrainer(student, seed=0, dwo=dict(
        epsilon=step, step_size=step, steps=1, num_center_bins=num_center_bins,
        original_fraction=0.5))
    trainer.compile(optimizer=keras.optimizers.SGD(0.0), run_eagerly=True)
    seen = []
    extractor = trainer.feature_extractor

    def spy(batch, training=False):
        seen.append({k: _numpy(v) for k, v in batch.items()})
        return extractor(batch, training=training)

    # Re-derivation: which samples stay clean (the trainer's generator is
    # seeded with seed + 1), and the gradient of the center-bin ordinal
    # loss with batch norm in inference mode.
    is_original = np.asarray(adversarial.original_sample_mask(
        8, 0.5, seed=keras.random.SeedGenerator(1)))
    targets = {"x": student.bins["x"].encode(gaze[:, 0]),
               "y": student.bins["y"].encode(gaze[:, 1])}
    watched = {k: tf.constant(v) for k, v in inputs.items()}
    with tf.GradientTape() as tape:
        tape.watch(list(watched.values()))
        probs = student(watched, training=False)
        total = 0.0
        for key in "xy":
            p = tf.clip_by_value(probs[key], 1e-7, 1 - 1e-7)
            mask = ordinal.center_bin_mask(probs[key].numpy(), num_center_bins)
            t = targets[key]
            total += tf.reduce_sum(mask * -(t * tf.math.log(p) + (1 - t) * tf.math.log(1 - p)))
    gradients = tape.gradient(total, watched)

    trainer.feature_extractor = spy
    logs = trainer.train_on_batch(inputs, gaze, return_dict=True)
    (batch,) = seen
    assert 0 < is_original.sum() < 8
    for name in models.INPUT_NAMES:
        clean = inputs[name].astype(np.float64)
        np.testing.assert_array_equal(batch[name][is_original], clean[is_original])
        gradient = gradients[name].numpy()
        expected = np.clip(clean + step * np.sign(gradient), 0.0, 255.0)
        moved = ~is_original
        # Pixels whose gradient is within round-off of 0 may take either sign.
        decided = np.abs(gradient[moved]) > 1e-6 * np.abs(gradient).max()
        np.testing.assert_allclose(batch[name][moved][decided], expected[moved][decided],
                                   atol=1e-3)
        assert np.mean(np.abs(batch[name][moved] - clean[moved]) > step / 2) > 0.5
    # The hard loss is that of the perturbed batch.
    del trainer.feature_extractor
    trainer.feature_extractor = extractor
    train_probs = student({k: v.astype("float32") for k, v in batch.items()}, training=True)
    hard = sum(_bce_sum(targets[k], _numpy(train_probs[k])) for k in "xy")
    np.testing.assert_allclose(logs["hard_loss"], hard, rtol=1e-4)


def test_invalid_arguments():
    with pytest.raises(ValueError, match="lambda_mix must be >= 0"):
        trainer_lib.GazeTrainer(_student(), lambda_mix=-1.0)
    with pytest.raises(ValueError, match="dwo settings miss"):
        trainer_lib.GazeTrainer(_student(), dwo={"epsilon": 3.0})
