"""Tests of the re-initialization of pruned filters (Eq. 6-7, Table 4)."""

import math

import numpy as np
import pytest

from tat_keras import reinit


def make_layer(shape, seed=0):
    rng = np.random.default_rng(seed)
    kernel = rng.normal(size=shape).astype(np.float32)
    gamma = rng.uniform(-2.0, 2.0, size=shape[-1]).astype(np.float32)
    variance = rng.uniform(0.1, 3.0, size=shape[-1]).astype(np.float32)
    return kernel, gamma, variance


def reference_folded_norms(kernel, gamma, variance, epsilon):
    """Eq. 6 with loops: ||W_fi * gamma_fi / sqrt(var_fi + eps)||."""
    c_out = kernel.shape[-1]
    norms = []
    for f in range(c_out):
        scale = float(gamma[f]) / math.sqrt(float(variance[f]) + epsilon)
        squares = sum(
            (float(w) * scale) ** 2 for w in kernel[..., f].ravel()
        )
        norms.append(math.sqrt(squares))
    return np.array(norms)


def filters(kernel, index):
    """Rows of the given filters, float64, shape (len(index), fan_in)."""
    return kernel.reshape(-1, kernel.shape[-1]).T[index].astype(np.float64)


def cosines(a, b):
    a = a / np.linalg.norm(a, axis=1, keepdims=True)
    b = b / np.linalg.norm(b, axis=1, keepdims=True)
    return a @ b.T


def test_folded_norms_match_eq6():
    kernel, gamma, variance = make_layer((3, 3, 2, 5))
    np.testing.assert_allclose(
        reinit.folded_norms(kernel, gamma, variance, epsilon=1e-3),
        reference_folded_norms(kernel, gamma, variance, 1e-3),
        rtol=1e-6,
    )
    np.testing.assert_allclose(
        reinit.folded_norms(kernel, None, None),
        np.linalg.norm(filters(kernel, slice(None)), axis=1),
        rtol=1e-6,
    )


@pytest.mark.parametrize(
    "shape, indices, orthogonal_to_kept",
    [
        ((3, 3, 4, 16), [0, 3, 7, 15], True),  # fan-in 36 >= 12 kept + 4 new
        ((1, 1, 8, 8), [1, 2, 5], True),  # fan-in 8 == 5 kept + 3 new
        ((1, 1, 8, 10), [0, 9, 4], False),  # fan-in 8 < 7 kept + 3 new
        ((3, 3, 2, 32), list(range(0, 32, 3)), False),  # c_out > fan-in
        ((1, 1, 4, 12), list(range(10)), False),  # 10 new > fan-in 4
        ((1, 1, 3, 3), [0, 1, 2], True),  # everything re-initialized
    ],
)
def test_aligned_orthogonal_matches_eq6_7(shape, indices, orthogonal_to_kept):
    kernel, gamma, variance = make_layer(shape, seed=len(indices))
    original = kernel.copy()
    new, info = reinit.aligned_orthogonal(
        kernel, gamma, variance, indices, seed=3, return_info=True
    )
    assert new.shape == kernel.shape and new.dtype == kernel.dtype
    np.testing.assert_array_equal(kernel, original)  # input not modified

    fan_in = int(np.prod(shape[:-1]))
    kept = [f for f in range(shape[-1]) if f not in indices]
    # Untouched filters are copied bit for bit.
    np.testing.assert_array_equal(new[..., kept], kernel[..., kept])

    # Eq. 7 norms lie in [min, max] of the Eq. 6 folded norms of the pruned.
    folded = reference_folded_norms(kernel, gamma, variance, 1e-3)[indices]
    new_norms = np.linalg.norm(filters(new, indices), axis=1)
    assert np.all(new_norms >= folded.min() * (1 - 1e-6))
    assert np.all(new_norms <= folded.max() * (1 + 1e-6))
    assert info["pruned_norm_min"] == pytest.approx(folded.min(), rel=1e-6)
    assert info["pruned_norm_max"] == pytest.approx(folded.max(), rel=1e-6)
    assert info["new_norm_min"] == pytest.approx(new_norms.min(), rel=1e-6)
    assert info["new_norm_max"] == pytest.approx(new_norms.max(), rel=1e-6)
    assert info["orthogonal_to_kept"] is orthogonal_to_kept

    # New filters are orthogonal to each other (within blocks of fan-in).
    new_rows = filters(new, indices)
    for start in range(0, len(indices), fan_in):
        block = new_rows[start:start + fan_in]
        gram = cosines(block, block)
        np.testing.assert_allclose(gram, np.eye(len(block)), atol=1e-5)
    if orthogonal_to_kept:
        assert fan_in >= len(kept) + len(indices)
        if kept:
            np.testing.assert_allclose(
                cosines(new_rows, filters(kernel, kept)), 0.0, atol=1e-5
            )


def test_aligned_orthogonal_uses_rank_of_kept_filters():
    # 6 kept filters spanning 2 dimensions leave room for 4 new ones in 6-D.
    rng = np.random.default_rng(0)
    basis = rng.normal(size=(2, 6))
    kept = rng.normal(size=(6, 2)) @ basis
    kernel = np.zeros((1, 1, 6, 10))
    kernel[0, 0, :, :6] = kept.T
    kernel[0, 0, :, 6:] = rng.normal(size=(6, 4))
    new, info = reinit.aligned_orthogonal(
        kernel, None, None, [6, 7, 8, 9], seed=0, return_info=True
    )
    assert info["orthogonal_to_kept"] is True
    np.testing.assert_allclose(
        cosines(filters(new, [6, 7, 8, 9]), kept), 0.0, atol=1e-10
    )


def test_aligned_orthogonal_lowers_similarity_of_reborn_filters():
    # A duplicated filter is re-born orthogonal to the rest: similarity ~0.
    from tat_keras import pruning

    kernel, gamma, variance = make_layer((3, 3, 4, 8))
    kernel[..., 5] = kernel[..., 2]
    new = reinit.aligned_orthogonal(kernel, gamma, variance, [5], seed=0)
    similarity = pruning.filter_similarity(new)
    assert abs(similarity[5]) < 1e-6


def test_aligned_orthogonal_equal_norms_give_that_norm():
    kernel, _, _ = make_layer((1, 1, 6, 4))
    kernel[..., 1] *= 3.0 / np.linalg.norm(kernel[..., 1])
    kernel[..., 2] *= 3.0 / np.linalg.norm(kernel[..., 2])
    new = reinit.aligned_orthogonal(kernel, None, None, [1, 2], seed=0)
    np.testing.assert_allclose(
        np.linalg.norm(filters(new, [1, 2]), axis=1), 3.0, rtol=1e-6
    )


@pytest.mark.parametrize("method", reinit.METHODS)
def test_seed_makes_it_deterministic(method):
    kernel, gamma, variance = make_layer((3, 3, 4, 8))
    run = lambda seed: reinit.reinitialize(  # noqa: E731
        method, kernel, gamma, variance, [1, 4], seed=seed
    )
    np.testing.assert_array_equal(run(7), run(7))
    assert not np.array_equal(run(7), run(8))
    np.testing.assert_array_equal(
        run(np.random.default_rng(7)), run(np.random.default_rng(7))
    )


@pytest.mark.parametrize("method", reinit.METHODS)
def test_empty_indices_return_kernel_unchanged(method):
    kernel, gamma, variance = make_layer((3, 3, 4, 8))
    new, info = reinit.reinitialize(
        method, kernel, gamma, variance, [], seed=0, return_info=True
    )
    np.testing.assert_array_equal(new, kernel)
    assert new is not kernel
    assert all(value is None for value in info.values())


@pytest.mark.parametrize(
    "shape, indices",
    [((3, 3, 4, 8), [0, 3, 5]), ((1, 1, 2, 8), [0, 1, 2, 3, 4])],
)
def test_orthogonal_is_keras_orthogonal_on_the_new_filters(shape, indices):
    kernel, gamma, variance = make_layer(shape)
    new, info = reinit.reinitialize(
        "orthogonal", kernel, gamma, variance, indices, seed=0,
        return_info=True,
    )
    kept = [f for f in range(shape[-1]) if f not in indices]
    np.testing.assert_array_equal(new[..., kept], kernel[..., kept])
    rows = filters(new, indices)  # (n_new, fan_in)
    fan_in = rows.shape[1]
    if len(indices) <= fan_in:
        # Unit norm (gain 1) and mutually orthogonal: not aligned to norms.
        np.testing.assert_allclose(rows @ rows.T, np.eye(len(indices)),
                                   atol=1e-6)
    else:
        np.testing.assert_allclose(rows.T @ rows, np.eye(fan_in), atol=1e-6)
    assert info["orthogonal_to_kept"] is False
    folded = reference_folded_norms(kernel, gamma, variance, 1e-3)[indices]
    assert info["pruned_norm_min"] == pytest.approx(folded.min(), rel=1e-6)


def test_uniform_uses_glorot_uniform_bound_of_the_full_layer():
    import keras

    shape = (3, 3, 16, 32)
    kernel, _, _ = make_layer(shape)
    # Keras's default kernel initializer, for the same shape, has the bound.
    limit = math.sqrt(6.0 / (3 * 3 * 16 + 3 * 3 * 32))
    assert reinit.glorot_uniform_limit(shape) == pytest.approx(limit)
    keras_values = keras.ops.convert_to_numpy(
        keras.initializers.GlorotUniform(seed=0)(shape)
    )
    assert np.abs(keras_values).max() <= limit
    assert np.abs(keras_values).max() > 0.99 * limit

    indices = list(range(0, 32, 2))
    new = reinit.uniform(kernel, indices, seed=0)
    kept = list(range(1, 32, 2))
    np.testing.assert_array_equal(new[..., kept], kernel[..., kept])
    values = new[..., indices]
    assert np.abs(values).max() <= limit
    assert np.abs(values).max() > 0.99 * limit
    assert abs(values.mean()) < 0.01
    # Variance of U(-a, a) is a^2 / 3.
    assert values.var() == pytest.approx(limit**2 / 3, rel=0.05)


def test_glorot_uniform_limit_of_a_dense_kernel():
    assert reinit.glorot_uniform_limit((10, 20)) == pytest.approx(
        math.sqrt(6.0 / 30)
    )
    with pytest.raises(ValueError, match="at least 2 dimensions"):
        reinit.glorot_uniform_limit((10,))


@pytest.mark.parametrize(
    "indices, match",
    [
        ([0, 8], r"must lie in \[0, 8\)"),
        ([-1], r"must lie in \[0, 8\)"),
        ([1, 1], "must not repeat"),
        ([0.5], "integer filter indices"),
        ([[0, 1]], "integer filter indices"),
    ],
)
def test_bad_indices_raise(indices, match):
    kernel, gamma, variance = make_layer((3, 3, 4, 8))
    with pytest.raises(ValueError, match=match):
        reinit.aligned_orthogonal(kernel, gamma, variance, indices)


def test_bad_arguments_raise():
    kernel, gamma, variance = make_layer((3, 3, 4, 8))
    with pytest.raises(ValueError, match="Unknown re-initialization method"):
        reinit.reinitialize("xavier", kernel, gamma, variance, [0])
    with pytest.raises(ValueError, match="aoi"):
        reinit.reinitialize("xavier", kernel, gamma, variance, [0])
    with pytest.raises(ValueError, match=r"gamma must have shape \(8,\)"):
        reinit.aligned_orthogonal(kernel, gamma[:4], variance, [0])
    with pytest.raises(ValueError, match="moving_variance must have shape"):
        reinit.aligned_orthogonal(kernel, gamma, variance[:4], [0])
    with pytest.raises(ValueError, match="must be positive"):
        reinit.aligned_orthogonal(kernel, gamma, -variance - 1.0, [0])
    with pytest.raises(ValueError, match="at least 2 dimensions"):
        reinit.orthogonal(np.ones(4), [0])
    with pytest.raises(ValueError, match="floating point"):
        reinit.uniform(np.ones((2, 2), dtype=np.int32), [0])
