"""Tests of cosine similarity pruning (Eq. 5) against NumPy re-derivations."""

import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import settings
from hypothesis import strategies as st

from tat_keras import pruning


def reference_similarity(kernel, absolute=False):
    """Eq. 5 written out with loops over (c_out, kh, kw, c_in)."""
    kh, kw, c_in, c_out = kernel.shape
    filters = []
    for f in range(c_out):
        vector = []
        for i in range(kh):
            for j in range(kw):
                for c in range(c_in):
                    vector.append(float(kernel[i, j, c, f]))
        filters.append(vector)
    result = []
    for f in range(c_out):
        total = 0.0
        for g in range(c_out):
            if g == f:
                continue
            dot = sum(a * b for a, b in zip(filters[f], filters[g]))
            norm_f = math.sqrt(sum(a * a for a in filters[f]))
            norm_g = math.sqrt(sum(b * b for b in filters[g]))
            cosine = dot / (norm_f * norm_g)
            total += abs(cosine) if absolute else cosine
        result.append(total / c_out)
    return np.array(result)


@pytest.mark.parametrize(
    "shape",
    [
        (3, 3, 3, 8),  # first layer
        (1, 1, 4, 4),
        (3, 3, 2, 32),  # more filters (32) than fan-in (18)
        (1, 1, 2, 5),  # more filters (5) than fan-in (2)
        (5, 3, 2, 1),  # a single filter
    ],
)
@pytest.mark.parametrize("absolute", [False, True])
def test_filter_similarity_matches_eq5(shape, absolute):
    kernel = np.random.default_rng(1).normal(size=shape).astype(np.float32)
    result = pruning.filter_similarity(kernel, absolute=absolute)
    assert result.shape == (shape[-1],)
    assert result.dtype == np.float64
    np.testing.assert_allclose(
        result, reference_similarity(kernel, absolute), atol=1e-6
    )


@pytest.mark.parametrize("absolute", [False, True])
def test_negated_filter_has_negative_similarity(absolute):
    rng = np.random.default_rng(2)
    kernel = rng.normal(size=(3, 3, 4, 3))
    kernel[..., 1] = -kernel[..., 0]  # cosine -1 with filter 0
    result = pruning.filter_similarity(kernel, absolute=absolute)
    expected = reference_similarity(kernel, absolute)
    np.testing.assert_allclose(result, expected, atol=1e-12)
    if not absolute:
        assert result[0] < 0.0 and result[1] < 0.0
        # Row 0: cos(0, 1) = -1 plus cos(0, 2); row 1: -1 minus cos(0, 2).
        np.testing.assert_allclose(result[0] + result[1], -2.0 / 3.0)
    else:
        assert result[0] > 0.3


def test_parallel_filters_are_most_similar():
    kernel = np.zeros((1, 1, 3, 3))
    kernel[0, 0, :, 0] = [1.0, 0.0, 0.0]
    kernel[0, 0, :, 1] = [5.0, 0.0, 0.0]  # same direction, other norm
    kernel[0, 0, :, 2] = [0.0, 1.0, 0.0]
    np.testing.assert_allclose(
        pruning.filter_similarity(kernel), [1 / 3, 1 / 3, 0.0]
    )


def test_zero_filter_has_zero_similarity_and_no_nan():
    rng = np.random.default_rng(3)
    kernel = rng.normal(size=(3, 3, 2, 4))
    kernel[..., 2] = 0.0
    result = pruning.filter_similarity(kernel)
    assert np.all(np.isfinite(result))
    assert result[2] == 0.0
    # The others are Eq. 5 over the nonzero filters, still divided by 4.
    rest = kernel[..., [0, 1, 3]]
    np.testing.assert_allclose(
        result[[0, 1, 3]], reference_similarity(rest) * 3 / 4, atol=1e-12
    )


def test_dense_kernel_is_accepted():
    kernel = np.random.default_rng(4).normal(size=(6, 4))
    np.testing.assert_allclose(
        pruning.filter_similarity(kernel),
        reference_similarity(kernel.reshape(1, 1, 6, 4)),
        atol=1e-12,
    )


@pytest.mark.parametrize(
    "kernel, match",
    [
        (np.ones(3), "at least 2 dimensions"),
        (np.ones((3, 3, 2, 0)), "no filters"),
        (np.full((1, 1, 2, 2), np.nan), "NaN"),
    ],
)
def test_filter_similarity_rejects_bad_kernels(kernel, match):
    with pytest.raises(ValueError, match=match):
        pruning.filter_similarity(kernel)


def test_select_filters_example_with_cap():
    similarities = {
        "a": np.array([0.9, 0.8, 0.7, 0.6]),
        "b": np.array([0.1, 0.5]),
    }
    # total 6, ratio 0.5 -> 3 filters; cap 0.5 -> at most 2 of "a", 1 of "b".
    chosen = pruning.select_filters(similarities, 0.5, 0.5)
    assert chosen["a"].tolist() == [0, 1]
    assert chosen["b"].tolist() == [1]
    assert chosen["a"].dtype == np.int64
    # Without a cap the top three all come from "a".
    chosen = pruning.select_filters(similarities, 0.5, None)
    assert chosen["a"].tolist() == [0, 1, 2]
    assert chosen["b"].tolist() == []
    # A cap of 1.0 is no cap.
    uncapped = pruning.select_filters(similarities, 0.5, 1.0)
    for name, index in uncapped.items():
        np.testing.assert_array_equal(index, chosen[name])


def test_select_filters_ties_by_layer_then_index():
    similarities = {"b": np.zeros(3), "a": np.zeros(3)}
    chosen = pruning.select_filters(similarities, 4 / 6, None)
    assert chosen["b"].tolist() == [0, 1, 2]
    assert chosen["a"].tolist() == [0]


def test_select_filters_zero_ratio_and_empty_mapping():
    chosen = pruning.select_filters({"a": np.ones(4)}, 0.0, 0.5)
    assert chosen["a"].shape == (0,)
    assert chosen["a"].dtype == np.int64
    assert pruning.select_filters({}, 0.5, 0.5) == {}


def test_select_filters_floor_is_robust_to_round_off():
    # 0.29 * 100 is 28.999999999999996 in floating point.
    chosen = pruning.select_filters({"a": np.arange(100.0)}, 0.29, None)
    assert len(chosen["a"]) == 29


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(ratio=1.5, max_layer_ratio=0.5), "ratio must be in"),
        (dict(ratio=-0.1, max_layer_ratio=0.5), "ratio must be in"),
        (dict(ratio="0.1", max_layer_ratio=0.5), "ratio must be a number"),
        (dict(ratio=0.1, max_layer_ratio=2.0), "max_layer_ratio must be in"),
    ],
)
def test_select_filters_validates_ratios(kwargs, match):
    with pytest.raises(ValueError, match=match):
        pruning.select_filters({"a": np.ones(4)}, **kwargs)


def test_select_filters_validates_similarities():
    with pytest.raises(ValueError, match="must be a mapping"):
        pruning.select_filters([np.ones(4)], 0.1, 0.5)
    with pytest.raises(ValueError, match="must be 1-D"):
        pruning.select_filters({"a": np.ones((2, 2))}, 0.1, 0.5)
    with pytest.raises(ValueError, match="NaN"):
        pruning.select_filters({"a": np.array([0.1, np.nan])}, 0.1, 0.5)


layer_sizes = st.lists(st.integers(0, 12), min_size=1, max_size=5)


@st.composite
def selection_problems(draw):
    sizes = draw(layer_sizes)
    # Few distinct values so that ties are common.
    similarities = {
        f"conv{i}": np.array(
            draw(st.lists(st.sampled_from([-0.5, 0.0, 0.1, 0.3, 0.9]),
                          min_size=size, max_size=size)),
            dtype=np.float64,
        )
        for i, size in enumerate(sizes)
    }
    ratio_percent = draw(st.integers(0, 100))
    cap_percent = draw(st.one_of(st.none(), st.integers(0, 100)))
    return similarities, ratio_percent, cap_percent


@settings(max_examples=200, deadline=None)
@given(selection_problems())
def test_select_filters_properties(problem):
    similarities, ratio_percent, cap_percent = problem
    ratio = ratio_percent / 100
    cap_ratio = None if cap_percent is None else cap_percent / 100
    chosen = pruning.select_filters(similarities, ratio, cap_ratio)

    assert list(chosen) == list(similarities)
    total = sum(len(v) for v in similarities.values())
    caps = {
        name: len(v) if cap_percent is None else (cap_percent * len(v)) // 100
        for name, v in similarities.items()
    }
    # Total count: floor(p * total), unless the caps allow fewer.
    expected_count = min((ratio_percent * total) // 100, sum(caps.values()))
    assert sum(len(v) for v in chosen.values()) == expected_count

    for name, index in chosen.items():
        assert index.dtype == np.int64
        assert np.all(np.diff(index) > 0)  # sorted, unique
        assert np.all((index >= 0) & (index < len(similarities[name])))
        assert len(index) <= caps[name]  # per-layer cap

    # Highest similarities chosen: every chosen filter is at least as similar
    # as any unchosen filter of a layer that still had room.
    chosen_values = np.concatenate(
        [similarities[name][index] for name, index in chosen.items()]
    )
    for name, values in similarities.items():
        if len(chosen[name]) >= caps[name]:
            continue
        unchosen = np.delete(values, chosen[name])
        if chosen_values.size and unchosen.size:
            assert chosen_values.min() >= unchosen.max()


def test_cosine_similarity_pruning_composes():
    rng = np.random.default_rng(5)
    kernels = {
        "conv1": rng.normal(size=(3, 3, 3, 8)),
        "conv2": rng.normal(size=(3, 3, 8, 16)),
    }
    kernels["conv2"][..., 3] = kernels["conv2"][..., 7] * 2.0
    for absolute in (False, True):
        similarities = {
            name: pruning.filter_similarity(k, absolute=absolute)
            for name, k in kernels.items()
        }
        expected = pruning.select_filters(similarities, 0.25, 0.5)
        result = pruning.cosine_similarity_pruning(
            kernels, 0.25, 0.5, absolute=absolute
        )
        assert result.keys() == expected.keys()
        for name in result:
            np.testing.assert_array_equal(result[name], expected[name])
        assert 3 in result["conv2"] and 7 in result["conv2"]
    with pytest.raises(ValueError, match="must be a mapping"):
        pruning.cosine_similarity_pruning([np.ones((1, 1, 2, 2))], 0.1, 0.5)
