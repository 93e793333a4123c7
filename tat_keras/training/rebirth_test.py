import numpy as np
import pytest

from tat_keras import models
from tat_keras.training import rebirth


@pytest.fixture
def model():
    model = models.GazeNet(width_multiplier=0.25, x_bins=8, y_bins=8)
    rng = np.random.default_rng(0)
    # Non-trivial batch norms, so that the folded norms of Eq. 6 matter.
    for name in model.conv_layer_names:
        bn = model.batch_norm_of(name)
        n = bn.gamma.shape[0]
        bn.gamma.assign(rng.uniform(0.5, 2.0, n).astype("float32"))
        bn.moving_variance.assign(rng.uniform(0.5, 3.0, n).astype("float32"))
        bn.moving_mean.assign(rng.normal(size=n).astype("float32"))
    return model


def _snapshot(model):
    return {w.path: np.array(w) for w in model.weights}


def _make_redundant(model, name, seed=0):
    """Gives every filter of `name` nearly the same direction (cosine
    similarity near 1), so the global ranking puts them all first."""
    kernel = model.get_layer(name).kernel
    rng = np.random.default_rng(seed)
    direction = rng.normal(size=kernel.shape[:-1] + (1,))
    noise = 0.01 * rng.normal(size=kernel.shape)
    kernel.assign((direction + noise).astype("float32"))
    return kernel.shape[-1]


@pytest.mark.parametrize("max_layer_ratio", [0.5, 0.25])
def test_csp_prunes_the_global_share_with_the_layer_cap(model, max_layer_ratio):
    names = model.conv_layer_names
    total = sum(model.get_layer(n).kernel.shape[-1] for n in names)
    filters = _make_redundant(model, "face_conv12")
    assert filters < 0.2 * total  # uncapped, the layer would be pruned whole
    record = rebirth.apply_rebirth(
        model, ratio=0.2, max_layer_ratio=max_layer_ratio, seed=1)
    assert sum(r["pruned"] for r in record.values()) == int(0.2 * total)
    # The cap binds on the redundant layer and holds on every layer.
    assert record["face_conv12"]["pruned"] == int(max_layer_ratio * filters)
    for name, info in record.items():
        assert info["pruned"] <= int(max_layer_ratio * info["filters"])


def test_without_the_cap_the_redundant_layer_goes_first(model):
    filters = _make_redundant(model, "face_conv12")
    record = rebirth.apply_rebirth(model, ratio=0.2, max_layer_ratio=1.0, seed=1)
    assert record["face_conv12"]["pruned"] == filters


def test_only_chosen_filters_and_their_batch_norms_change(model):
    before = _snapshot(model)
    record = rebirth.apply_rebirth(model, ratio=0.2, max_layer_ratio=0.5, seed=1)
    after = _snapshot(model)
    for name in model.conv_layer_names:
        kernel_before = before[model.get_layer(name).kernel.path]
        kernel_after = after[model.get_layer(name).kernel.path]
        changed = np.where(np.any(kernel_before != kernel_after, axis=(0, 1, 2)))[0]
        bn = model.batch_norm_of(name)
        if name not in record:
            assert changed.size == 0
            continue
        assert record[name]["pruned"] == changed.size
        # Re-born channels get an identity batch norm; the others keep theirs.
        np.testing.assert_array_equal(np.array(bn.gamma)[changed], 1.0)
        np.testing.assert_array_equal(np.array(bn.moving_variance)[changed], 1.0)
        np.testing.assert_array_equal(np.array(bn.moving_mean)[changed], 0.0)
        kept = np.setdiff1d(np.arange(kernel_before.shape[-1]), changed)
        np.testing.assert_array_equal(
            np.array(bn.gamma)[kept], before[bn.gamma.path][kept])
        # Eq. 7: new norms within the folded norms of the pruned filters.
        rows = kernel_after.reshape(-1, kernel_after.shape[-1]).T[changed]
        norms = np.linalg.norm(rows, axis=1)
        info = record[name]
        assert np.all(norms >= info["pruned_norm_min"] - 1e-5)
        assert np.all(norms <= info["pruned_norm_max"] + 1e-5)
        # Dense layers are never touched.
    for key in before:
        if "final_feature" in key or key.endswith(("x/kernel", "y/kernel")):
            np.testing.assert_array_equal(before[key], after[key])


def test_repr_has_no_layer_cap_and_uses_absolute_similarity(model):
    record = rebirth.apply_rebirth(model, pruning_method="repr", ratio=0.3, seed=0)
    total = sum(model.get_layer(n).kernel.shape[-1] for n in model.conv_layer_names)
    assert sum(r["pruned"] for r in record.values()) == int(0.3 * total)


def test_scratch_reinitializes_everything(model):
    before = _snapshot(model)
    record = rebirth.apply_rebirth(model, pruning_method="scratch")
    after = _snapshot(model)
    conv = model.get_layer("face_conv11").kernel.path
    assert not np.array_equal(before[conv], after[conv])
    assert record["all"]["pruned"] == sum(
        model.get_layer(n).kernel.shape[-1] for n in model.conv_layer_names)


def test_none_changes_nothing(model):
    before = _snapshot(model)
    assert rebirth.apply_rebirth(model, pruning_method="none") == {}
    after = _snapshot(model)
    for key in before:
        np.testing.assert_array_equal(before[key], after[key])


def test_unknown_method():
    model = models.GazeNet(width_multiplier=0.125, x_bins=4, y_bins=4)
    with pytest.raises(ValueError, match="pruning_method must be one of"):
        rebirth.apply_rebirth(model, pruning_method="magnitude")


def _adam_after_one_step(model):
    import keras

    adam = keras.optimizers.Adam(1e-3)
    rng = np.random.default_rng(3)
    adam.apply_gradients([(rng.normal(size=v.shape).astype("float32"), v)
                          for v in model.trainable_variables])
    return adam


def _moments(adam, variable):
    index = adam._get_variable_index(variable)
    return np.array(adam._momentums[index]), np.array(adam._velocities[index])


def test_rebirth_zeroes_the_moments_of_reborn_filters_only(model):
    adam = _adam_after_one_step(model)
    before = {name: {v.path: _moments(adam, v) for v in (
        model.get_layer(name).kernel, model.batch_norm_of(name).gamma,
        model.batch_norm_of(name).beta)} for name in model.conv_layer_names}
    chosen = {}
    original = rebirth.pruning.cosine_similarity_pruning

    def spy(*args, **kwargs):
        chosen.update(original(*args, **kwargs))
        return chosen

    rebirth.pruning.cosine_similarity_pruning = spy
    try:
        rebirth.apply_rebirth(model, ratio=0.2, seed=1, optimizer=adam)
    finally:
        rebirth.pruning.cosine_similarity_pruning = original
    assert sum(len(i) for i in chosen.values()) > 0
    for name in model.conv_layer_names:
        indices = np.asarray(chosen[name], int)
        kept = np.setdiff1d(np.arange(model.get_layer(name).kernel.shape[-1]), indices)
        for variable in (model.get_layer(name).kernel, model.batch_norm_of(name).gamma,
                         model.batch_norm_of(name).beta):
            for now, then in zip(_moments(adam, variable), before[name][variable.path]):
                assert np.all(now[..., indices] == 0), (name, variable.path)
                np.testing.assert_array_equal(now[..., kept], then[..., kept])
                assert np.any(then[..., indices] != 0) or len(indices) == 0


def test_scratch_zeroes_every_moment(model):
    adam = _adam_after_one_step(model)
    rebirth.apply_rebirth(model, pruning_method="scratch", optimizer=adam)
    for variable in model.trainable_variables:
        for moment in _moments(adam, variable):
            assert not np.any(moment)
