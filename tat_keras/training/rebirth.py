"""Prune redundant filters and re-initialize them in place (Algorithm 1, 9-11).

`apply_rebirth` edits a `GazeNet`'s convolution kernels and batch norms and
returns a record of what it did; it is the only place where the pruning
(Eq. 5) and re-initialization (Eq. 6-7) functions touch a model.
"""

import numpy as np

from tat_keras import models
from tat_keras import pruning
from tat_keras import reinit
from tat_keras.training import optimizers
from tat_keras.training.config import PRUNING_METHODS



def apply_rebirth(model, *, pruning_method="csp", ratio=0.2, max_layer_ratio=0.5,
                  reinit_method="aoi", seed=0, optimizer=None):
    """Prunes the most redundant filters of `model` and re-initializes them.

    Args:
        model: `GazeNet`. Edited in place.
        pruning_method: str. `csp` (cosine similarity, per-layer cap; the
            paper's), `repr` (absolute cosine similarity, no cap; RePr),
            `scratch` (every weight of the network re-initialized, as a new
            model) or `none`.
        ratio: float. Fraction `p` of all convolution filters to prune.
        max_layer_ratio: float. Cap `p_max` per layer (`csp` only).
        reinit_method: str. `aoi`, `orthogonal` or `uniform` (Table 4).
        seed: int. Seed of the re-initialization.
        optimizer: Keras optimizer training `model`, or None. Its moments of
            the re-born filters (kernel, batch-norm scale and offset) are
            zeroed, so that a new filter does not move along the pruned
            one's running gradient average (`reset_optimizer_state`); a
            `RebirthAdam` also restarts their bias correction.

    Returns:
        dict layer name -> `{"pruned": int, "pruned_norm_min", ...}` with the
        norm ranges of the pruned (batch-norm folded, Eq. 6) and the new
        filters (the paper's Fig. 3); empty for `none`; for `scratch`,
        `{"all": {"pruned": total filter count}}`.

    Example:

    >>> model = models.GazeNet(width_multiplier=0.125, x_bins=8, y_bins=8)
    >>> record = apply_rebirth(model, ratio=0.2, seed=0)
    >>> sum(r["pruned"] for r in record.values()) > 0
    True
    """
    if pruning_method not in PRUNING_METHODS:
        raise ValueError(
            f"pruning_method must be one of {PRUNING_METHODS}. "
            f"Received: pruning_method={pruning_method!r}"
        )
    if pruning_method == "none":
        return {}
    conv_names = model.conv_layer_names
    if pruning_method == "scratch":
        fresh = models.GazeNet.from_config(model.get_config())
        model.set_weights(fresh.get_weights())
        if optimizer is not None:
            for variable in model.trainable_variables:
                reset_optimizer_state(optimizer, variable)
        total = sum(model.get_layer(n).kernel.shape[-1] for n in conv_names)
        return {"all": {"pruned": int(total)}}

    kernels = {name: np.asarray(model.get_layer(name).kernel) for name in conv_names}
    repr_variant = pruning_method == "repr"
    chosen = pruning.cosine_similarity_pruning(
        kernels,
        ratio,
        None if repr_variant else max_layer_ratio,
        absolute=repr_variant,
    )
    rng = np.random.default_rng(seed)
    record = {}
    for name in conv_names:
        indices = chosen[name]
        if len(indices) == 0:
            continue
        conv = model.get_layer(name)
        bn = model.batch_norm_of(name)
        new_kernel, info = reinit.reinitialize(
            reinit_method,
            kernels[name],
            np.asarray(bn.gamma),
            np.asarray(bn.moving_variance),
            indices,
            epsilon=bn.epsilon,
            seed=rng,
            return_info=True,
        )
        conv.kernel.assign(new_kernel)
        _reset_batch_norm_channels(bn, indices)
        if optimizer is not None:
            for variable in (conv.kernel, bn.gamma, bn.beta):
                reset_optimizer_state(optimizer, variable, indices)
        record[name] = {
            "pruned": int(len(indices)),
            "filters": int(kernels[name].shape[-1]),
            **{k: v for k, v in info.items() if k != "orthogonal_to_kept"},
            "orthogonal_to_kept": info.get("orthogonal_to_kept"),
        }
    return record


_MOMENT_SLOTS = ("_momentums", "_velocities", "_velocity_hats")


def reset_optimizer_state(optimizer, variable, indices=None):
    """Zeroes the optimizer's moments of `variable` (all of them, or the
    channels `indices` along its last axis).

    Works for Keras optimizers that keep per-variable moments in lists
    indexed like their variables (Adam, AdamW, and SGD with momentum);
    a loss-scale wrapper is looked through. A variable the optimizer does
    not train is left alone. An optimizer with `restart_moments`
    (`optimizers.RebirthAdam`, `--rebirth_moments=fresh`) also restarts
    their bias correction.

    Example:

    >>> import keras
    >>> kernel = keras.Variable(np.ones((3, 4)))
    >>> adam = keras.optimizers.Adam()
    >>> _ = adam.apply_gradients([(np.ones((3, 4)), kernel)])
    >>> reset_optimizer_state(adam, kernel, [1, 3])
    >>> np.asarray(adam._momentums[0])[0].round(2).tolist()
    [0.1, 0.0, 0.1, 0.0]
    """
    optimizer = getattr(optimizer, "inner_optimizer", optimizer)
    if hasattr(optimizer, "restart_moments"):
        optimizer.restart_moments(variable, indices)
        return
    if not getattr(optimizer, "built", False):
        return
    try:
        index = optimizer._get_variable_index(variable)
    except KeyError:
        return
    for name in _MOMENT_SLOTS:
        slots = getattr(optimizer, name, None)
        if not slots or index >= len(slots) or slots[index] is None:
            continue
        optimizers.fill_channels(slots[index], indices, 0.0)


def _reset_batch_norm_channels(bn, indices):
    """Identity batch norm for re-born channels (docs/interpretation.md, AOI)."""
    for variable, value in (
        (bn.gamma, 1.0),
        (bn.beta, 0.0),
        (bn.moving_mean, 0.0),
        (bn.moving_variance, 1.0),
    ):
        optimizers.fill_channels(variable, indices, value)
