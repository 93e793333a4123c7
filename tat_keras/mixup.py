"""Feature mixup (Eq. 8 of Guo et al. 2019).

The mixup of the TAT scheme mixes the final 128-D feature (the output of the
fully connected layer after the three branches), not the images: for a batch
`a` and a random permutation `perm` of it,
`a_mixed_i = alpha_i * a_i + (1 - alpha_i) * a_perm(i)` with
`alpha_i ~ U(0, 1)` drawn per sample. The ordinal label vectors are mixed
with the same `alpha_i` and `perm`, which gives soft targets; the mixed
features go through the same ordinal heads.

Written in `keras.ops` and `keras.random`; imports nothing else of the
project.
"""

import keras
from keras import ops
from keras import tree


def sample_mix_weights(batch_size, seed_generator, dtype="float32"):
    """Draws one mixing weight `alpha ~ U(0, 1)` per sample (Eq. 8).

    Args:
        batch_size: int or scalar integer tensor. Number of samples.
        seed_generator: `keras.random.SeedGenerator`. Source of randomness.
        dtype: str. Floating dtype of the weights.

    Returns:
        Tensor of shape `(batch_size,)` with values in `[0, 1)`.

    Example:

    >>> generator = keras.random.SeedGenerator(0)
    >>> tuple(sample_mix_weights(4, generator).shape)
    (4,)
    """
    return keras.random.uniform(
        (batch_size,), minval=0.0, maxval=1.0, dtype=dtype, seed=seed_generator
    )


def sample_permutation(batch_size, seed_generator):
    """Draws a random permutation of the batch indices `0 .. batch_size-1`.

    Args:
        batch_size: int or scalar integer tensor. Number of samples.
        seed_generator: `keras.random.SeedGenerator`. Source of randomness.

    Returns:
        int32 tensor of shape `(batch_size,)`.

    Example:

    >>> generator = keras.random.SeedGenerator(0)
    >>> sorted(ops.convert_to_numpy(sample_permutation(4, generator)).tolist())
    [0, 1, 2, 3]
    """
    return keras.random.shuffle(
        ops.arange(batch_size, dtype="int32"), seed=seed_generator
    )


def _mix_tensor(tensor, alpha, permutation):
    """alpha_i * t_i + (1 - alpha_i) * t_perm(i), alpha broadcast per sample."""
    tensor = ops.convert_to_tensor(tensor)
    weight = ops.cast(alpha, tensor.dtype)
    weight = ops.reshape(weight, (-1,) + (1,) * (len(tensor.shape) - 1))
    partner = ops.take(tensor, permutation, axis=0)
    return weight * tensor + (1.0 - weight) * partner


def mix(features, labels_x, labels_y, alpha, permutation):
    """Mixes features and ordinal label vectors with the same weights (Eq. 8).

    `mixed_i = alpha_i * a_i + (1 - alpha_i) * a_perm(i)` for the features
    and for both label vectors; `alpha_i` is broadcast over the feature and
    bin axes.

    Args:
        features: tensor `(B, D)`. The final feature (D = 128 in GazeNet).
        labels_x: tensor `(B, x_bins)`. Ordinal label vectors of x.
        labels_y: tensor `(B, y_bins)`. Ordinal label vectors of y.
        alpha: tensor `(B,)`. Mixing weights in [0, 1].
        permutation: int tensor `(B,)`. Partner of each sample.

    Returns:
        Tuple `(mixed_features, mixed_labels_x, mixed_labels_y)` of tensors
        with the shapes of the inputs.

    Example:

    >>> features, x, y = ops.ones((2, 3)), ops.zeros((2, 4)), ops.ones((2, 5))
    >>> mixed, _, _ = mix(features, x, y, ops.array([0.5, 1.0]), [1, 0])
    >>> tuple(mixed.shape)
    (2, 3)
    """
    return (
        _mix_tensor(features, alpha, permutation),
        _mix_tensor(labels_x, alpha, permutation),
        _mix_tensor(labels_y, alpha, permutation),
    )


@keras.saving.register_keras_serializable(package="tat_keras")
class FeatureMixup(keras.layers.Layer):
    """Feature mixup of a batch and its labels (Eq. 8).

    At each training call, draws `alpha_i ~ U(0, 1)` per sample and a random
    permutation of the batch, and mixes the features and the labels (a
    tensor, or a dict of tensors such as the ordinal vectors
    `{"x": ..., "y": ...}`) with them. Outside training it returns its
    inputs unchanged.

    Dtypes: the features are cast to the layer's compute dtype (float16
    under `"mixed_float16"`); the labels are targets of the loss, not
    activations, and keep their own dtype (the layer does not autocast
    them); `alpha` is drawn in the policy's variable dtype (float32) and
    cast to the dtype of each tensor it mixes.

    Args:
        seed: int or None. Seed of the layer's `SeedGenerator`.
        **kwargs: base layer keyword arguments (`name`, `dtype`, ...).

    Call arguments:
        features: tensor `(B, D)`.
        labels: tensor `(B, ...)` or dict of such tensors, all mixed alike.
        training: bool. Mix only when True.

    Returns:
        Tuple `(mixed_features, mixed_labels)`, `mixed_labels` with the
        structure of `labels`.

    Example:

    >>> mixup = FeatureMixup(seed=0)
    >>> features, labels = mixup(
    ...     ops.ones((4, 128)), {"x": ops.zeros((4, 133))}, training=True)
    >>> tuple(labels["x"].shape)
    (4, 133)
    """

    def __init__(self, seed=None, **kwargs):
        kwargs.setdefault("autocast", False)
        super().__init__(**kwargs)
        if seed is not None and (
            isinstance(seed, bool) or not isinstance(seed, int)
        ):
            raise ValueError(
                f"seed must be an int or None. Received: seed={seed!r}"
            )
        self.seed = seed
        self.seed_generator = keras.random.SeedGenerator(seed)
        self._build_at_init()

    def build(self, features_shape=None, labels_shape=None):
        # No weights; the seed generator is created in `__init__`.
        pass

    def sample(self, batch_size):
        """Draws `(alpha, permutation)` for a batch, as a training call does.

        Args:
            batch_size: int or scalar integer tensor.

        Returns:
            Tuple of tensors `(alpha (B,), permutation (B,))`, `alpha` in
            the policy's variable dtype.
        """
        alpha = sample_mix_weights(
            batch_size, self.seed_generator, dtype=self.dtype_policy.variable_dtype
        )
        permutation = sample_permutation(batch_size, self.seed_generator)
        return alpha, permutation

    def call(self, features, labels, training=None):
        _check_labels(labels)
        features = ops.cast(features, self.compute_dtype)
        if not training:
            return features, tree.map_structure(ops.convert_to_tensor, labels)
        alpha, permutation = self.sample(ops.shape(features)[0])
        mixed_labels = tree.map_structure(
            lambda value: _mix_tensor(value, alpha, permutation), labels
        )
        return _mix_tensor(features, alpha, permutation), mixed_labels

    def compute_output_shape(self, features_shape, labels_shape):
        return tuple(features_shape), tree.map_shape_structure(tuple, labels_shape)

    def compute_output_spec(self, features, labels, training=None):
        _check_labels(labels)
        return (
            keras.KerasTensor(features.shape, dtype=self.compute_dtype),
            tree.map_structure(
                lambda value: keras.KerasTensor(value.shape, dtype=value.dtype),
                labels,
            ),
        )

    def get_config(self):
        config = super().get_config()
        config.update({"seed": self.seed})
        return config


def _check_labels(labels):
    leaves = tree.flatten(labels)
    if not leaves or not all(hasattr(leaf, "shape") for leaf in leaves):
        raise ValueError(
            "labels must be a label tensor or a dict of label tensors, e.g. "
            f"{{'x': ..., 'y': ...}}. Received: labels={labels!r}"
        )
