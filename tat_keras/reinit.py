"""Re-initialization of pruned filters: aligned orthogonal, orthogonal, uniform.

Section 3.1 of Guo et al. 2019, Eq. 6-7 (aligned orthogonal initialization,
AOI) and the two baselines of its Table 4 ("Orth." and "Uniform"). Each
function takes a kernel in Keras layout `(kh, kw, c_in, c_out)` and the
indices of the filters (output channels) to re-initialize, and returns a new
NumPy kernel with only those filters replaced; every other filter is copied
bit for bit. The matching batch-normalization channels are the caller's to
reset (to gamma 1, beta 0, moving mean 0, moving variance 1).

This module is pure NumPy and imports nothing else of the project. A `seed`
is an int, None, or a `np.random.Generator` (which is advanced in place).
"""

import numpy as np

METHODS = ("aoi", "orthogonal", "uniform")


def _check_kernel(kernel):
    kernel = np.asarray(kernel)
    if kernel.ndim < 2:
        raise ValueError(
            "kernel must have at least 2 dimensions, the last one being the "
            "output channels (Keras layout (kh, kw, c_in, c_out)). "
            f"Received: kernel.shape={kernel.shape}"
        )
    if not np.issubdtype(kernel.dtype, np.floating):
        raise ValueError(
            f"kernel must be floating point. Received: kernel.dtype="
            f"{kernel.dtype}"
        )
    return kernel


def _check_indices(indices, num_filters):
    indices = np.asarray(indices)
    if indices.size == 0:
        return np.zeros((0,), dtype=np.int64)
    if indices.ndim != 1 or not np.issubdtype(indices.dtype, np.integer):
        raise ValueError(
            "indices must be a 1-D array of integer filter indices. "
            f"Received: indices={indices!r}"
        )
    if indices.min() < 0 or indices.max() >= num_filters:
        raise ValueError(
            f"indices must lie in [0, {num_filters}) for a kernel with "
            f"{num_filters} filters. Received: indices={indices.tolist()}"
        )
    if np.unique(indices).size != indices.size:
        raise ValueError(
            f"indices must not repeat. Received: indices={indices.tolist()}"
        )
    return indices.astype(np.int64)


def _filter_rows(kernel):
    """Float64 view of the kernel as rows of filters, shape (c_out, fan_in)."""
    return kernel.reshape(-1, kernel.shape[-1]).T.astype(np.float64)


def _replace_filters(kernel, indices, new_rows):
    """Copy of `kernel` with filters `indices` set to `new_rows`."""
    result = np.array(kernel, copy=True)
    flat = result.reshape(-1, kernel.shape[-1])  # a view into `result`
    flat[:, indices] = new_rows.T.astype(kernel.dtype)
    return result


def _qr_orthonormal_columns(matrix):
    """Q of the QR decomposition, signs fixed so the draw is Haar-uniform."""
    q, r = np.linalg.qr(matrix)
    signs = np.sign(np.diag(r))
    signs[signs == 0] = 1.0
    return q * signs


def _orthonormal_rows(rng, num_rows, fan_in):
    """`num_rows` unit rows, orthogonal within blocks of at most `fan_in`."""
    blocks = []
    remaining = num_rows
    while remaining > 0:
        size = min(remaining, fan_in)
        gaussian = rng.standard_normal((fan_in, size))
        blocks.append(_qr_orthonormal_columns(gaussian).T)
        remaining -= size
    return np.concatenate(blocks, axis=0)


def _span_basis(rows):
    """Orthonormal basis (fan_in, rank) of the span of `rows`."""
    if rows.shape[0] == 0:
        return np.zeros((rows.shape[1], 0))
    _, singular, vt = np.linalg.svd(rows, full_matrices=False)
    tolerance = singular.max() * max(rows.shape) * np.finfo(np.float64).eps
    rank = int(np.sum(singular > tolerance))
    return vt[:rank].T


def _orthogonal_directions(rng, kept_rows, num_new):
    """Unit directions for the new filters (the QR step of AOI).

    Returns (directions (num_new, fan_in), orthogonal_to_kept).
    """
    fan_in = kept_rows.shape[1]
    basis = _span_basis(kept_rows)
    if fan_in - basis.shape[1] >= num_new:
        gaussian = rng.standard_normal((fan_in, num_new))
        # Project twice onto the orthogonal complement of the kept filters
        # (the second pass removes round-off left by the first).
        for _ in range(2):
            gaussian -= basis @ (basis.T @ gaussian)
        directions = _qr_orthonormal_columns(gaussian)
        directions -= basis @ (basis.T @ directions)
        directions /= np.linalg.norm(directions, axis=0, keepdims=True)
        return directions.T, True
    return _orthonormal_rows(rng, num_new, fan_in), False


def folded_norms(kernel, gamma, moving_variance, *, epsilon=1e-3):
    """L2 norm of each filter with batch normalization folded in (Eq. 6).

    `W_adj = W * gamma / sqrt(moving_variance + epsilon)` per output
    channel; this returns `||W_adj||` for every filter.

    Args:
        kernel: array-like. Kernel in Keras layout `(kh, kw, c_in, c_out)`.
        gamma: array-like of shape `(c_out,)` or None. Batch-norm scale;
            None for a batch norm without scale (gamma = 1).
        moving_variance: array-like of shape `(c_out,)` or None. Batch-norm
            moving variance; None when no batch norm follows the layer
            (then `W_adj = W` and `epsilon` is unused).
        epsilon: float. The batch norm's epsilon (Keras default 1e-3).

    Returns:
        NumPy float64 array of shape `(c_out,)`.

    Example:

    >>> folded_norms(np.ones((1, 1, 4, 2)), np.array([1.0, 2.0]),
    ...              np.array([0.999, 0.999])).tolist()
    [2.0, 4.0]
    """
    kernel = _check_kernel(kernel)
    num_filters = kernel.shape[-1]
    norms = np.linalg.norm(_filter_rows(kernel), axis=1)
    if gamma is not None:
        gamma = np.asarray(gamma, dtype=np.float64)
        if gamma.shape != (num_filters,):
            raise ValueError(
                f"gamma must have shape ({num_filters},), one value per "
                f"filter. Received: gamma.shape={gamma.shape}"
            )
        norms = norms * np.abs(gamma)
    if moving_variance is not None:
        variance = np.asarray(moving_variance, dtype=np.float64)
        if variance.shape != (num_filters,):
            raise ValueError(
                f"moving_variance must have shape ({num_filters},), one "
                f"value per filter. Received: moving_variance.shape="
                f"{variance.shape}"
            )
        if np.any(variance + epsilon <= 0.0):
            raise ValueError(
                "moving_variance + epsilon must be positive. Received: "
                f"min(moving_variance)={variance.min()}, epsilon={epsilon}"
            )
        norms = norms / np.sqrt(variance + epsilon)
    return norms


def _norm_info(pruned_norms, new_kernel, indices, orthogonal_to_kept):
    if indices.size == 0:
        return {
            "pruned_norm_min": None,
            "pruned_norm_max": None,
            "new_norm_min": None,
            "new_norm_max": None,
            "orthogonal_to_kept": None,
        }
    new_norms = np.linalg.norm(_filter_rows(new_kernel)[indices], axis=1)
    return {
        "pruned_norm_min": float(pruned_norms.min()),
        "pruned_norm_max": float(pruned_norms.max()),
        "new_norm_min": float(new_norms.min()),
        "new_norm_max": float(new_norms.max()),
        "orthogonal_to_kept": orthogonal_to_kept,
    }


def aligned_orthogonal(
    kernel,
    gamma,
    moving_variance,
    indices,
    *,
    epsilon=1e-3,
    seed=None,
    return_info=False,
):
    """Aligned orthogonal initialization (AOI) of the pruned filters (Eq. 6-7).

    1. Directions: a Gaussian matrix is orthonormalized by QR. When the
       fan-in leaves room (`fan_in - rank(kept filters) >= len(indices)`,
       which holds whenever `fan_in >= num_kept + len(indices)`), it is first
       projected onto the orthogonal complement of the kept filters, so the
       new filters are orthogonal to each other and to every kept filter.
       Otherwise they are orthogonal to each other only; and when there are
       more new filters than the fan-in, they are drawn in blocks of
       `fan_in` filters, orthonormal within a block and independent between
       blocks (no more than `fan_in` vectors can be mutually orthogonal).
    2. Eq. 6: the pruned filters' norms with batch norm folded in,
       `||W * gamma / sqrt(moving_variance + epsilon)||`.
    3. Eq. 7: each new filter is its unit direction times its own scalar drawn
       from `U(min, max)` of those folded norms.

    The norms are those of the kernel itself (Eq. 7): once the caller resets
    the batch norm of these channels to identity, the folded norm of a new
    filter is its norm divided by `sqrt(1 + epsilon)`.

    Args:
        kernel: array-like. Kernel in Keras layout `(kh, kw, c_in, c_out)`.
        gamma: array-like `(c_out,)` or None. Batch-norm scale of the layer.
        moving_variance: array-like `(c_out,)` or None. Batch-norm moving
            variance; None when no batch norm follows (no folding).
        indices: 1-D int array-like. Filters to re-initialize; empty leaves
            the kernel unchanged.
        epsilon: float. The batch norm's epsilon.
        seed: int, None or `np.random.Generator`.
        return_info: bool. Also return the norm ranges (the paper's Fig. 3).

    Returns:
        The new kernel (NumPy, same shape and dtype). With
        `return_info=True`, a tuple `(kernel, info)` where `info` is a dict
        with float values `pruned_norm_min`, `pruned_norm_max` (folded norms
        of the pruned filters), `new_norm_min`, `new_norm_max` (norms of
        the new filters) and bool `orthogonal_to_kept`; all None when
        `indices` is empty.

    Example:

    >>> rng = np.random.default_rng(0)
    >>> kernel = rng.normal(size=(3, 3, 4, 8)).astype("float32")
    >>> new, info = aligned_orthogonal(kernel, np.ones(8), np.ones(8),
    ...                                [1, 5], seed=0, return_info=True)
    >>> bool(np.array_equal(new[..., 0], kernel[..., 0]))
    True
    >>> info["orthogonal_to_kept"]
    True
    """
    kernel = _check_kernel(kernel)
    indices = _check_indices(indices, kernel.shape[-1])
    pruned_norms = folded_norms(
        kernel, gamma, moving_variance, epsilon=epsilon
    )[indices]
    if indices.size == 0:
        result, orthogonal_to_kept = np.array(kernel, copy=True), None
    else:
        rng = np.random.default_rng(seed)
        rows = _filter_rows(kernel)
        kept_rows = np.delete(rows, indices, axis=0)
        directions, orthogonal_to_kept = _orthogonal_directions(
            rng, kept_rows, indices.size
        )
        directions /= np.linalg.norm(directions, axis=1, keepdims=True)
        scalars = rng.uniform(
            pruned_norms.min(), pruned_norms.max(), size=indices.size
        )
        new_rows = directions * scalars[:, None]
        result = _replace_filters(kernel, indices, new_rows)
    if return_info:
        return result, _norm_info(
            pruned_norms, result, indices, orthogonal_to_kept
        )
    return result


def orthogonal(kernel, indices, *, seed=None):
    """Plain orthogonal re-initialization (the "Orth." row of Table 4).

    The re-initialized filters are drawn as Keras's `Orthogonal(gain=1.0)`
    would draw a kernel holding only them: with `fan_in` the flattened
    filter size and `n = len(indices)`, the `(fan_in, n)` matrix is the Q of
    a QR decomposition of a Gaussian matrix. When `n <= fan_in` the new
    filters are orthonormal (unit norm, mutually orthogonal); otherwise the
    rows of that matrix are orthonormal and the filters have norms below 1.
    Neither the kept filters nor the pruned norms are taken into account.

    Args:
        kernel: array-like. Kernel in Keras layout `(kh, kw, c_in, c_out)`.
        indices: 1-D int array-like. Filters to re-initialize.
        seed: int, None or `np.random.Generator`.

    Returns:
        The new kernel (NumPy, same shape and dtype).

    Example:

    >>> kernel = np.zeros((3, 3, 4, 8), "float32")
    >>> new = orthogonal(kernel, [0, 3], seed=0)
    >>> round(float(np.linalg.norm(new[..., 3])), 5)
    1.0
    """
    kernel = _check_kernel(kernel)
    indices = _check_indices(indices, kernel.shape[-1])
    if indices.size == 0:
        return np.array(kernel, copy=True)
    rng = np.random.default_rng(seed)
    fan_in = int(np.prod(kernel.shape[:-1]))
    num_new = indices.size
    if num_new <= fan_in:
        columns = _qr_orthonormal_columns(
            rng.standard_normal((fan_in, num_new))
        )
    else:
        columns = _qr_orthonormal_columns(
            rng.standard_normal((num_new, fan_in))
        ).T
    return _replace_filters(kernel, indices, columns.T)


def glorot_uniform_limit(shape):
    """Bound of Keras's default `GlorotUniform` for a kernel shape.

    `sqrt(6 / (fan_in + fan_out))` with Keras's fans: for a kernel
    `(*receptive_field, c_in, c_out)`, `fan_in = c_in * prod(receptive_field)`
    and `fan_out = c_out * prod(receptive_field)`.

    Args:
        shape: tuple of ints, at least 2 long.

    Returns:
        float.

    Example:

    >>> round(glorot_uniform_limit((3, 3, 4, 8)), 4)
    0.2357
    """
    shape = tuple(int(dim) for dim in shape)
    if len(shape) < 2:
        raise ValueError(
            f"shape must have at least 2 dimensions. Received: shape={shape}"
        )
    receptive_field = int(np.prod(shape[:-2]))
    fan_in = shape[-2] * receptive_field
    fan_out = shape[-1] * receptive_field
    return float(np.sqrt(6.0 / (fan_in + fan_out)))


def uniform(kernel, indices, *, seed=None):
    """Uniform re-initialization (the "Uniform" row of Table 4).

    The re-initialized filters are drawn from Keras's default kernel
    initializer, `GlorotUniform`, for the full layer shape:
    `U(-limit, limit)` with `limit = glorot_uniform_limit(kernel.shape)`.

    Args:
        kernel: array-like. Kernel in Keras layout `(kh, kw, c_in, c_out)`.
        indices: 1-D int array-like. Filters to re-initialize.
        seed: int, None or `np.random.Generator`.

    Returns:
        The new kernel (NumPy, same shape and dtype).

    Example:

    >>> kernel = np.zeros((3, 3, 4, 8), "float32")
    >>> new = uniform(kernel, [2], seed=0)
    >>> bool(np.abs(new[..., 2]).max() <= glorot_uniform_limit(kernel.shape))
    True
    """
    kernel = _check_kernel(kernel)
    indices = _check_indices(indices, kernel.shape[-1])
    if indices.size == 0:
        return np.array(kernel, copy=True)
    rng = np.random.default_rng(seed)
    limit = glorot_uniform_limit(kernel.shape)
    fan_in = int(np.prod(kernel.shape[:-1]))
    rows = rng.uniform(-limit, limit, size=(indices.size, fan_in))
    return _replace_filters(kernel, indices, rows)


def reinitialize(
    method,
    kernel,
    gamma,
    moving_variance,
    indices,
    *,
    epsilon=1e-3,
    seed=None,
    return_info=False,
):
    """Re-initializes pruned filters with one of the methods of Table 4.

    Args:
        method: str. "aoi" (`aligned_orthogonal`, Eq. 6-7), "orthogonal"
            (`orthogonal`) or "uniform" (`uniform`).
        kernel: array-like. Kernel in Keras layout `(kh, kw, c_in, c_out)`.
        gamma: array-like `(c_out,)` or None. Batch-norm scale.
        moving_variance: array-like `(c_out,)` or None. Batch-norm moving
            variance.
        indices: 1-D int array-like. Filters to re-initialize.
        epsilon: float. The batch norm's epsilon.
        seed: int, None or `np.random.Generator`.
        return_info: bool. Also return the norm ranges, as in
            `aligned_orthogonal` (for every method the pruned norms are the
            batch-norm-folded ones of Eq. 6; `orthogonal_to_kept` is False
            for "orthogonal" and "uniform", which do not enforce it).

    Returns:
        The new kernel, or `(kernel, info)` with `return_info=True`.

    Example:

    >>> kernel = np.ones((1, 1, 4, 4), "float32")
    >>> new = reinitialize("uniform", kernel, None, None, [0], seed=0)
    >>> new.shape
    (1, 1, 4, 4)
    """
    if method not in METHODS:
        raise ValueError(
            f"Unknown re-initialization method. Expected one of {METHODS}. "
            f"Received: method={method!r}"
        )
    if method == "aoi":
        return aligned_orthogonal(
            kernel,
            gamma,
            moving_variance,
            indices,
            epsilon=epsilon,
            seed=seed,
            return_info=return_info,
        )
    kernel = _check_kernel(kernel)
    indices = _check_indices(indices, kernel.shape[-1])
    pruned_norms = folded_norms(
        kernel, gamma, moving_variance, epsilon=epsilon
    )[indices]
    if method == "orthogonal":
        result = orthogonal(kernel, indices, seed=seed)
    else:
        result = uniform(kernel, indices, seed=seed)
    if return_info:
        return result, _norm_info(pruned_norms, result, indices, False)
    return result
