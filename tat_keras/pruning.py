"""Cosine similarity pruning (CSP): filter redundancy and filter selection.

Section 3.1 of Guo et al. 2019, Eq. 5. Each convolution filter is compared to
the other filters of its layer by cosine similarity; the filters with the
highest similarity, ranked over the whole network, are the ones pruned and
re-initialized at the end of a mini-generation.

This module is pure NumPy and imports nothing else of the project.
"""

import math
from collections.abc import Mapping

import numpy as np

# Tolerance used when turning a fraction of a count into an integer count, so
# that e.g. 0.29 * 100 (28.999999999999996 in floating point) counts as 29.
_FLOOR_TOLERANCE = 1e-9


def _as_filter_matrix(kernel):
    """Returns the kernel as a float64 matrix of shape (c_out, fan_in)."""
    kernel = np.asarray(kernel)
    if kernel.ndim < 2:
        raise ValueError(
            "kernel must have at least 2 dimensions, the last one being the "
            "output channels (Keras layout (kh, kw, c_in, c_out)). "
            f"Received: kernel.shape={kernel.shape}"
        )
    if kernel.shape[-1] == 0:
        raise ValueError(
            f"kernel has no filters. Received: kernel.shape={kernel.shape}"
        )
    matrix = kernel.reshape(-1, kernel.shape[-1]).T.astype(np.float64)
    if not np.all(np.isfinite(matrix)):
        raise ValueError(
            "kernel contains NaN or infinite values; its cosine similarity "
            "is undefined. Check the training run that produced it."
        )
    return matrix


def filter_similarity(kernel, *, absolute=False):
    """Cosine similarity of each filter to the other filters of its layer.

    Eq. 5 of the paper: with the filters flattened to rows of `WF` and
    normalized to unit length,
    `Sim_fi = (sum over columns of (WF_n WF_n^T - I))_{row fi} / N_out`,
    i.e. the sum of the cosine similarities between filter `fi` and every
    other filter, divided by the number of filters `N_out`.

    No absolute value is taken by default: a filter and its negation have
    similarity -1 (the ReLU after the convolution treats them differently).
    `absolute=True` sums absolute cosines instead, as the RePr baseline does.

    A filter whose weights are all zero has no direction; its cosine with
    every filter (itself included) is taken as 0, so its similarity is 0 and
    it adds nothing to the similarity of the others.

    Args:
        kernel: array-like. Convolution kernel in Keras layout
            `(kh, kw, c_in, c_out)`; any array whose last axis is the output
            channels works (a Dense kernel `(c_in, c_out)` too). Each filter
            is flattened over all axes but the last.
        absolute: bool. Sum absolute cosine similarities (RePr) instead of
            signed ones (the paper).

    Returns:
        NumPy float64 array of shape `(c_out,)`, values in `[-1, 1]` times
        `(c_out - 1) / c_out`.

    Example:

    >>> kernel = np.zeros((1, 1, 2, 3))
    >>> kernel[0, 0, :, 0] = [1.0, 0.0]
    >>> kernel[0, 0, :, 1] = [2.0, 0.0]
    >>> kernel[0, 0, :, 2] = [0.0, 1.0]
    >>> filter_similarity(kernel).round(3).tolist()
    [0.333, 0.333, 0.0]
    """
    matrix = _as_filter_matrix(kernel)
    num_filters = matrix.shape[0]
    norms = np.linalg.norm(matrix, axis=1)
    safe_norms = np.where(norms > 0.0, norms, 1.0)
    unit = np.where((norms > 0.0)[:, None], matrix / safe_norms[:, None], 0.0)
    cosines = unit @ unit.T
    if absolute:
        cosines = np.abs(cosines)
    # Remove each filter's similarity with itself (the identity of Eq. 5;
    # 0 instead of 1 for an all-zero filter).
    np.fill_diagonal(cosines, 0.0)
    return cosines.sum(axis=1) / num_filters


def _fraction_of(fraction, count):
    """floor(fraction * count), robust to floating-point round-off."""
    return int(math.floor(fraction * count + _FLOOR_TOLERANCE))


def _check_fraction(name, value):
    if isinstance(value, bool) or not isinstance(
        value, (int, float, np.integer, np.floating)
    ):
        raise ValueError(
            f"{name} must be a number in [0, 1]. "
            f"Received: {name}={value!r}"
        )
    if not 0.0 <= float(value) <= 1.0:
        raise ValueError(
            f"{name} must be in [0, 1] (a fraction of filters, not a "
            f"percentage). Received: {name}={value!r}"
        )


def select_filters(similarities, ratio, max_layer_ratio):
    """Chooses the filters to prune: top `ratio` by similarity, per-layer cap.

    The ranking is global over all filters of all layers, highest similarity
    first (Eq. 5 gives the similarity). Filters are taken in that order; a
    layer is skipped once `floor(max_layer_ratio * N_out)` of its filters are
    chosen; selection stops when `floor(ratio * total)` filters are chosen
    (`total` counts all filters of all layers) or when every layer is full.
    Ties are broken by layer order (the order of `similarities`), then by
    filter index, so the result is deterministic.

    Args:
        similarities: mapping. Layer name -> 1-D array of that layer's filter
            similarities (e.g. from `filter_similarity`). Its iteration order
            is the layer order used for ties.
        ratio: float in [0, 1]. Fraction `p` of all filters to prune.
        max_layer_ratio: float in [0, 1] or None. Cap `p_max` on the fraction
            of one layer's filters; None (or 1.0) means no cap, as in RePr.

    Returns:
        dict, layer name -> sorted np.int64 array of chosen filter indices.
        Every layer of `similarities` is a key, possibly with an empty array.

    Example:

    >>> chosen = select_filters(
    ...     {"conv1": np.array([0.9, 0.1, 0.8]), "conv2": np.array([0.7, 0.2])},
    ...     ratio=0.6, max_layer_ratio=0.5)
    >>> {name: index.tolist() for name, index in chosen.items()}
    {'conv1': [0], 'conv2': [0]}
    """
    if not isinstance(similarities, Mapping):
        raise ValueError(
            "similarities must be a mapping from layer name to a 1-D array. "
            f"Received: type(similarities)={type(similarities).__name__}"
        )
    _check_fraction("ratio", ratio)
    if max_layer_ratio is not None:
        _check_fraction("max_layer_ratio", max_layer_ratio)

    names = list(similarities)
    values, layer_ids, filter_ids, capacities = [], [], [], []
    for layer_id, name in enumerate(names):
        layer_values = np.asarray(similarities[name], dtype=np.float64)
        if layer_values.ndim != 1:
            raise ValueError(
                "Each similarity array must be 1-D (one value per filter). "
                f"Received: shape {layer_values.shape} for layer {name!r}"
            )
        if np.any(np.isnan(layer_values)):
            raise ValueError(
                f"Similarities of layer {name!r} contain NaN; the ranking "
                "would be undefined. Check the kernel it was computed from."
            )
        size = layer_values.shape[0]
        values.append(layer_values)
        layer_ids.append(np.full(size, layer_id, dtype=np.int64))
        filter_ids.append(np.arange(size, dtype=np.int64))
        if max_layer_ratio is None:
            capacities.append(size)
        else:
            capacities.append(_fraction_of(max_layer_ratio, size))

    chosen = {name: [] for name in names}
    if names:
        values = np.concatenate(values)
        layer_ids = np.concatenate(layer_ids)
        filter_ids = np.concatenate(filter_ids)
        target = _fraction_of(ratio, values.shape[0])
        # np.lexsort sorts by the last key first: similarity descending,
        # then layer order, then filter index.
        order = np.lexsort((filter_ids, layer_ids, -values))
        counts = [0] * len(names)
        num_chosen = 0
        for position in order:
            if num_chosen >= target:
                break
            layer_id = layer_ids[position]
            if counts[layer_id] >= capacities[layer_id]:
                continue
            counts[layer_id] += 1
            num_chosen += 1
            chosen[names[layer_id]].append(filter_ids[position])
    return {
        name: np.sort(np.asarray(index, dtype=np.int64))
        for name, index in chosen.items()
    }


def cosine_similarity_pruning(
    kernels, ratio, max_layer_ratio, *, absolute=False
):
    """Selects the filters to prune from a set of kernels (Eq. 5 + ranking).

    `filter_similarity` on every kernel, then `select_filters`.

    Args:
        kernels: mapping. Layer name -> kernel in Keras layout
            `(kh, kw, c_in, c_out)`.
        ratio: float in [0, 1]. Fraction `p` of all filters to prune.
        max_layer_ratio: float in [0, 1] or None. Per-layer cap `p_max`;
            None means no cap.
        absolute: bool. Use absolute cosine similarity (RePr).

    Returns:
        dict, layer name -> sorted np.int64 array of filter indices to prune.

    Example:

    >>> rng = np.random.default_rng(0)
    >>> kernels = {"conv1": rng.normal(size=(3, 3, 3, 8)),
    ...            "conv2": rng.normal(size=(3, 3, 8, 16))}
    >>> chosen = cosine_similarity_pruning(kernels, 0.25, 0.5)
    >>> sum(len(index) for index in chosen.values())
    6
    """
    if not isinstance(kernels, Mapping):
        raise ValueError(
            "kernels must be a mapping from layer name to kernel. "
            f"Received: type(kernels)={type(kernels).__name__}"
        )
    similarities = {
        name: filter_similarity(kernel, absolute=absolute)
        for name, kernel in kernels.items()
    }
    return select_filters(similarities, ratio, max_layer_ratio)
