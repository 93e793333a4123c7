"""DwO: PGD perturbations from the center-bin ordinal loss (Eq. 13-14).

Disturbance with Ordinal loss (section 3.2 of Guo et al. 2019) trains on
adversarial versions of some of the training samples. Each adversarial
sample starts at the original input (Eq. 13) and takes `steps` projected
gradient steps (Eq. 14):

    x_{t+1} = clip(x_t + step_size * sign(grad_x L(P(x_t), y)), epsilon)

where `L` is the ordinal loss of both heads against the ground-truth
labels, restricted to the center bins of the current prediction
(`tat_keras.ordinal.center_bin_mask`), and the clip projects onto the
L-infinity ball of radius `epsilon` around the original input and onto the
valid pixel range [0, 255].

Readings taken where the paper is ambiguous (see docs/interpretation.md):

- Inputs are float pixels in [0, 255] (the network normalizes them itself),
  so `epsilon = 3` and `step_size = 1` are in pixel units.
- The center bins are those of the prediction at the current step `t`, and
  they are treated as a constant (no gradient flows through the mask).
- Batch normalization runs in inference mode while perturbing: the model is
  called with `training=False`, so the moving statistics are not updated
  and each sample's perturbation depends on that sample alone. The training
  step that follows sees the adversarial samples in training mode as usual.
- Org.% (`original_fraction`) is the share of each batch that stays
  original: exactly `round(original_fraction * batch_size)` samples (halves
  rounded to even), drawn at random per batch; the rest of the batch is
  replaced by its adversarial version, so the batch size does not change.

Written in `keras.ops`, so it runs on Keras's TensorFlow and JAX backends,
eagerly and inside a compiled train step. The one backend-specific piece is
the input gradient (`input_gradient`): `tf.GradientTape` on TensorFlow,
`jax.grad` on JAX. On TensorFlow the batch size may be unknown until run
time (a traced `train_step`); on JAX shapes are static, so the number of
perturbed samples is a Python int there.
"""

import math

import keras
import numpy as np
from keras import ops

from tat_keras import ordinal

HEADS = ("x", "y")


def _validate_pgd_arguments(epsilon, step_size, steps, num_center_bins):
    if not isinstance(epsilon, (int, float, np.integer, np.floating)) or not (
        math.isfinite(epsilon) and epsilon >= 0
    ):
        raise ValueError(
            "epsilon (the L-infinity radius in pixel units) must be a finite "
            f"number >= 0. Received: epsilon={epsilon!r}"
        )
    if not isinstance(step_size, (int, float, np.integer, np.floating)) or not (
        math.isfinite(step_size) and step_size > 0
    ):
        raise ValueError(
            "step_size (gamma of Eq. 14, in pixel units) must be a finite "
            f"number > 0. Received: step_size={step_size!r}"
        )
    if (
        isinstance(steps, bool)
        or not isinstance(steps, (int, np.integer))
        or steps < 0
    ):
        raise ValueError(
            "steps (T, the number of PGD iterations) must be an integer >= 0. "
            f"Received: steps={steps!r}"
        )
    if num_center_bins is not None:
        # Same rule as the loss: an even count 2k >= 2.
        ordinal.center_bin_mask(np.zeros((1, 2)), num_center_bins)


def _validate_batch(inputs, targets):
    if not isinstance(inputs, dict) or not inputs:
        raise ValueError(
            "inputs must be a non-empty dict of input tensors keyed by input "
            f"name (face, left_eye, right_eye). Received: {type(inputs).__name__}"
        )
    if not isinstance(targets, dict) or set(targets) != set(HEADS):
        keys = sorted(targets) if isinstance(targets, dict) else type(targets).__name__
        raise ValueError(
            "targets must be a dict of ordinal label vectors with exactly the "
            f"keys 'x' and 'y'. Received: {keys}"
        )


def center_bin_loss(targets, outputs, num_center_bins=None):
    """Ordinal loss over the center bins, summed over samples and heads.

    The objective that PGD ascends (the `L` of Eq. 14): for each head, the
    per-sample sum over the center bins of the current prediction of binary
    cross-entropy (`tat_keras.ordinal.OrdinalLoss`), summed over the batch
    and over the `x` and `y` heads. Summing (not averaging) over the batch
    keeps each sample's gradient at its own scale; the sign step does not
    depend on it.

    Args:
        targets: dict `{"x": (B, x_bins), "y": (B, y_bins)}` of ordinal
            label vectors.
        outputs: dict of the model's bin probabilities with the same keys
            and shapes.
        num_center_bins: int or None. Even count `2k` of center bins, or
            None for all bins.

    Returns:
        float32 scalar tensor.

    Example:

    >>> targets = {"x": np.array([[1.0, 0.0]]), "y": np.array([[1.0, 1.0]])}
    >>> outputs = {"x": np.array([[0.9, 0.2]]), "y": np.array([[0.5, 0.5]])}
    >>> round(float(center_bin_loss(targets, outputs)), 4)  # 0.3285 + 1.3863
    1.7148
    """
    loss = ordinal.OrdinalLoss(num_center_bins, reduction="sum")
    per_head = [
        loss(ops.cast(targets[head], "float32"), ops.cast(outputs[head], "float32"))
        for head in HEADS
    ]
    return per_head[0] + per_head[1]


def input_gradient(model, inputs, targets, *, num_center_bins=None):
    """Gradient of the center-bin ordinal loss w.r.t. every input.

    The model runs in inference mode (`training=False`); batch-norm moving
    statistics are left as they are. The gradient comes from
    `tf.GradientTape` on the TensorFlow backend and from `jax.grad` on JAX
    (inside a stateless JAX train step too: the model then reads the
    step's variable values).

    Args:
        model: Keras model taking the `inputs` dict and returning a dict of
            bin probabilities with keys `x` and `y`.
        inputs: dict of float tensors, pixels in [0, 255].
        targets: dict `{"x", "y"}` of ordinal label vectors.
        num_center_bins: int or None. Even count of center bins, or None
            for all bins.

    Returns:
        dict of float32 gradients keyed like `inputs`.

    Raises:
        ValueError: a backend other than TensorFlow or JAX.
    """
    _validate_batch(inputs, targets)
    if num_center_bins is not None:
        ordinal.center_bin_mask(np.zeros((1, 2)), num_center_bins)
    inputs = {name: ops.cast(value, "float32") for name, value in inputs.items()}

    def loss_of(batch):
        return center_bin_loss(targets, model(batch, training=False), num_center_bins)

    backend = keras.backend.backend()
    if backend == "jax":
        import jax

        return jax.grad(loss_of)(inputs)
    if backend != "tensorflow":
        raise ValueError(
            "input_gradient runs on Keras's tensorflow and jax backends; set "
            f"KERAS_BACKEND to one of them. Received: backend={backend!r}"
        )
    import tensorflow as tf

    with tf.GradientTape() as tape:
        tape.watch(list(inputs.values()))
        loss = loss_of(inputs)
    gradients = tape.gradient(loss, inputs)
    return {
        name: tf.zeros_like(inputs[name]) if gradient is None else gradient
        for name, gradient in gradients.items()
    }


def pgd_perturb(model, inputs, targets, *, epsilon, step_size, steps, num_center_bins):
    """Adversarial inputs by PGD on the center-bin ordinal loss (Eq. 13-14).

    Starts from `inputs` (Eq. 13); each of the `steps` iterations adds
    `step_size * sign(gradient)` of `center_bin_loss`, taken over the
    center bins of the prediction at that step, to every input, then clips
    the result to the L-infinity ball of radius `epsilon` around the
    original input and to [0, 255] (Eq. 14). The model runs with
    `training=False`: batch normalization uses (and does not update) its
    moving statistics while perturbing.

    The loop over `steps` is a Python loop (T is small, 1 to 3 in the
    paper), so the function traces into a compiled train step (a
    `tf.function` or a `jax.jit`) with no side effects.

    Args:
        model: Keras model taking the `inputs` dict and returning a dict of
            bin probabilities `{"x": (B, x_bins), "y": (B, y_bins)}`.
        inputs: dict of float tensors `(B, S, S, 3)`, pixels in [0, 255].
        targets: dict `{"x", "y"}` of ordinal label vectors (ground truth).
        epsilon: float >= 0. L-infinity radius, in pixel units (3 in the
            paper).
        step_size: float > 0. Step length gamma, in pixel units (1 in the
            paper).
        steps: int >= 0. Number of PGD iterations T; 0 returns `inputs`.
        num_center_bins: int or None. Even count `2k` of center bins, or
            None for the loss over all bins.

    Returns:
        dict of float32 tensors keyed like `inputs`: the adversarial
        samples (without gradient).

    Example:

    >>> from tat_keras import models
    >>> model = models.GazeNet(image_size=32, width_multiplier=0.125,
    ...                        x_bins=6, y_bins=6)
    >>> batch = {n: np.full((2, 32, 32, 3), 128.0, "float32")
    ...          for n in models.INPUT_NAMES}
    >>> labels = {"x": np.ones((2, 6), "float32"), "y": np.zeros((2, 6), "float32")}
    >>> adversarial = pgd_perturb(model, batch, labels, epsilon=3.0,
    ...                           step_size=1.0, steps=2, num_center_bins=4)
    >>> float(np.max(np.abs(adversarial["face"] - batch["face"]))) <= 3.0
    True
    """
    _validate_pgd_arguments(epsilon, step_size, steps, num_center_bins)
    _validate_batch(inputs, targets)
    if steps == 0:
        return dict(inputs)
    original = {name: ops.cast(value, "float32") for name, value in inputs.items()}
    lower = {name: ops.maximum(value - epsilon, 0.0) for name, value in original.items()}
    upper = {name: ops.minimum(value + epsilon, 255.0) for name, value in original.items()}
    adversarial = dict(original)
    for _ in range(steps):
        gradients = input_gradient(
            model, adversarial, targets, num_center_bins=num_center_bins
        )
        adversarial = {
            name: ops.minimum(
                ops.maximum(value + step_size * ops.sign(gradients[name]), lower[name]),
                upper[name],
            )
            for name, value in adversarial.items()
        }
    return {name: ops.stop_gradient(value) for name, value in adversarial.items()}


def _batch_size(inputs):
    """A Python int where the shape is known, else a scalar tensor."""
    return ops.shape(next(iter(inputs.values())))[0]


def _validate_fraction(original_fraction):
    if not isinstance(original_fraction, (int, float, np.integer, np.floating)) or not (
        0.0 <= original_fraction <= 1.0
    ):
        raise ValueError(
            "original_fraction (Org.%, the share of original samples per batch) "
            f"must be a number in [0, 1]. Received: original_fraction={original_fraction!r}"
        )


def num_original_samples(batch_size, original_fraction):
    """How many samples of a batch stay original: `round(Org.% * batch_size)`.

    Halves round to even, in float64 (Python's `round` for a known batch
    size; a float64 tensor for a batch size known only at run time, as in a
    traced TensorFlow step).

    Args:
        batch_size: int, or scalar int tensor (TensorFlow, unknown size).
        original_fraction: float in [0, 1].

    Returns:
        int, or a scalar int32 tensor for a tensor `batch_size`.

    Example:

    >>> num_original_samples(10, 0.25), num_original_samples(10, 0.35)  # 2.5, 3.5
    (2, 4)
    """
    _validate_fraction(original_fraction)
    if isinstance(batch_size, (int, np.integer)):
        return int(round(float(original_fraction) * int(batch_size)))
    fraction = ops.convert_to_tensor(float(original_fraction), "float64")
    return ops.cast(ops.round(fraction * ops.cast(batch_size, "float64")), "int32")


def original_sample_mask(batch_size, original_fraction, seed=None):
    """Which samples of a batch stay original (Org.% of DwO).

    Exactly `round(original_fraction * batch_size)` entries (halves rounded
    to even) are True, at positions drawn at random.

    Args:
        batch_size: int, or scalar int tensor (a TensorFlow batch size
            known only at run time).
        original_fraction: float in [0, 1]. Share of original samples.
        seed: `keras.random.SeedGenerator`, int or None. Pass a
            `SeedGenerator` (created once, e.g. in the model's `__init__`)
            inside a compiled `train_step`, so every batch gets a new draw;
            an int seed gives the same draw on every call of a traced
            function.

    Returns:
        bool tensor `(batch_size,)`.

    Example:

    >>> mask = original_sample_mask(10, 0.9, seed=1)
    >>> int(np.sum(mask))
    9
    """
    num_original = num_original_samples(batch_size, original_fraction)
    scores = keras.random.uniform((batch_size,), seed=seed)
    # Rank of each sample's score (the inverse of the sorting permutation):
    # the `num_original` lowest stay original.
    ranks = ops.argsort(ops.argsort(scores))
    return ranks < num_original


def replaced_positions(is_original, num_replaced):
    """Positions of the samples to perturb, in ascending order.

    Args:
        is_original: bool tensor `(B,)` (`original_sample_mask`).
        num_replaced: int, or scalar int tensor: the number of False
            entries of `is_original`. A Python int gives a static shape
            (JAX needs one).

    Returns:
        int32 tensor `(num_replaced,)`.

    Example:

    >>> positions = replaced_positions(np.array([True, False, True, False]), 2)
    >>> ops.convert_to_numpy(positions).tolist()
    [1, 3]
    """
    batch_size = ops.shape(is_original)[0]
    # Distinct sort keys: replaced samples first, each group in position order.
    keys = ops.cast(is_original, "int32") * batch_size + ops.arange(batch_size,
                                                                   dtype="int32")
    return ops.cast(ops.argsort(keys)[:num_replaced], "int32")


def perturb_replaced(model, inputs, targets, is_original, *, num_replaced=None,
                     epsilon, step_size, steps, num_center_bins):
    """The batch with its non-original samples replaced by PGD samples.

    Only the replaced samples run through the attack (`pgd_perturb`); with
    batch norm in inference mode each one's perturbation depends on that
    sample alone.

    Args:
        model: Keras model with dict inputs and `{"x", "y"}` outputs.
        inputs: dict of float32 tensors `(B, S, S, 3)`.
        targets: dict `{"x", "y"}` of ordinal label vectors `(B, bins)`.
        is_original: bool tensor `(B,)`.
        num_replaced: int, scalar int tensor or None (counted from
            `is_original`, which needs TensorFlow's dynamic shapes). Pass a
            Python int on JAX.
        epsilon, step_size, steps, num_center_bins: as in `pgd_perturb`.

    Returns:
        dict of float32 tensors keyed like `inputs`.

    Example:

    >>> from tat_keras import models
    >>> net = models.GazeNet(image_size=32, width_multiplier=0.125, x_bins=4, y_bins=4)
    >>> clean = {n: np.full((2, 32, 32, 3), 99.0, "float32") for n in models.INPUT_NAMES}
    >>> mixed = perturb_replaced(
    ...     net, clean, {k: np.ones((2, 4), "float32") for k in "xy"},
    ...     np.array([True, False]), num_replaced=1, epsilon=2.0, step_size=2.0,
    ...     steps=1, num_center_bins=None)
    >>> np.abs(mixed["face"] - clean["face"]).max(axis=(1, 2, 3)).tolist()
    [0.0, 2.0]
    """
    if num_replaced is None:
        num_replaced = ops.sum(ops.cast(ops.logical_not(is_original), "int32"))
    inputs = {name: ops.cast(value, "float32") for name, value in inputs.items()}

    def perturb():
        replaced = replaced_positions(is_original, num_replaced)
        subset = {name: ops.take(value, replaced, axis=0) for name, value in inputs.items()}
        subset_targets = {head: ops.take(targets[head], replaced, axis=0) for head in HEADS}
        perturbed = pgd_perturb(
            model, subset, subset_targets, epsilon=epsilon, step_size=step_size,
            steps=steps, num_center_bins=num_center_bins,
        )
        rows = ops.expand_dims(replaced, -1)
        return {name: ops.scatter_update(value, rows, perturbed[name])
                for name, value in inputs.items()}

    # A small batch (e.g. the last one of an epoch) may have nothing to
    # replace; the network is not run on an empty batch.
    if isinstance(num_replaced, (int, np.integer)):
        return perturb() if num_replaced > 0 else inputs
    return ops.cond(num_replaced > 0, perturb, lambda: dict(inputs))


def mix_adversarial(inputs, adversarial, original_fraction, seed=None):
    """A batch whose Org.% share stays original, the rest adversarial.

    Args:
        inputs: dict of original input tensors `(B, ...)`.
        adversarial: dict of adversarial tensors with the same keys and
            shapes (e.g. from `pgd_perturb` on the whole batch).
        original_fraction: float in [0, 1]. Share of samples kept
            original, exactly `round(original_fraction * B)` of them.
        seed: `keras.random.SeedGenerator`, int or None; see
            `original_sample_mask`.

    Returns:
        `(mixed, is_original)`: the mixed dict and the bool mask `(B,)` of
        samples that stayed original.

    Example:

    >>> clean = {"face": np.zeros((4, 2), "float32")}
    >>> noisy = {"face": np.ones((4, 2), "float32")}
    >>> mixed, is_original = mix_adversarial(clean, noisy, 0.5, seed=0)
    >>> float(np.sum(mixed["face"]))
    4.0
    """
    if not isinstance(adversarial, dict) or set(adversarial) != set(inputs):
        received = (
            sorted(adversarial)
            if isinstance(adversarial, dict)
            else type(adversarial).__name__
        )
        raise ValueError(
            "adversarial must be a dict with the same keys as inputs. Received: "
            f"inputs keys {sorted(inputs)}, adversarial {received}"
        )
    is_original = original_sample_mask(_batch_size(inputs), original_fraction, seed)
    mixed = {}
    for name, value in inputs.items():
        value = ops.convert_to_tensor(value)
        other = ops.cast(adversarial[name], value.dtype)
        keep = ops.reshape(is_original, (-1,) + (1,) * (len(value.shape) - 1))
        mixed[name] = ops.where(keep, value, other)
    return mixed, is_original


def dwo_batch(
    model,
    inputs,
    targets,
    *,
    epsilon,
    step_size,
    steps,
    num_center_bins,
    original_fraction,
    seed=None,
):
    """The DwO training batch: Org.% original samples, the rest PGD samples.

    Equivalent to `mix_adversarial(inputs, pgd_perturb(model, inputs, ...))`
    but only the samples that are replaced are perturbed (with batch norm in
    inference mode each sample's perturbation depends on that sample only),
    so at Org.% = 90% the adversary costs a tenth of a full-batch PGD.

    Args:
        model: Keras model with dict inputs and `{"x", "y"}` outputs.
        inputs: dict of float tensors `(B, S, S, 3)`, pixels in [0, 255].
        targets: dict `{"x", "y"}` of ordinal label vectors.
        epsilon: float. L-infinity radius in pixel units.
        step_size: float. PGD step in pixel units.
        steps: int. PGD iterations T.
        num_center_bins: int or None. Even count of center bins, or None.
        original_fraction: float in [0, 1]. Share of original samples.
        seed: `keras.random.SeedGenerator`, int or None; see
            `original_sample_mask`.

    Returns:
        `(batch, is_original)`: the dict of float32 inputs for the training
        step (same keys and shapes as `inputs`) and the bool mask `(B,)` of
        samples that stayed original.

    Example:

    >>> from tat_keras import models
    >>> model = models.GazeNet(image_size=32, width_multiplier=0.125,
    ...                        x_bins=6, y_bins=6)
    >>> batch = {n: np.full((4, 32, 32, 3), 128.0, "float32")
    ...          for n in models.INPUT_NAMES}
    >>> labels = {"x": np.ones((4, 6), "float32"), "y": np.zeros((4, 6), "float32")}
    >>> mixed, is_original = dwo_batch(model, batch, labels, epsilon=3.0,
    ...     step_size=1.0, steps=1, num_center_bins=8, original_fraction=0.5,
    ...     seed=0)
    >>> int(np.sum(is_original))
    2
    """
    _validate_pgd_arguments(epsilon, step_size, steps, num_center_bins)
    _validate_batch(inputs, targets)
    batch_size = _batch_size(inputs)
    is_original = original_sample_mask(batch_size, original_fraction, seed)
    inputs = {name: ops.cast(value, "float32") for name, value in inputs.items()}
    if steps == 0 or original_fraction == 1:
        return inputs, is_original
    mixed = perturb_replaced(
        model, inputs, targets, is_original,
        num_replaced=batch_size - num_original_samples(batch_size, original_fraction),
        epsilon=epsilon, step_size=step_size, steps=steps,
        num_center_bins=num_center_bins,
    )
    return mixed, is_original
