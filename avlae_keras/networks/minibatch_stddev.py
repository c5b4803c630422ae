"""The minibatch standard deviation feature of a discriminator (Karras et al., ProGAN)."""

from __future__ import annotations

from keras import ops


def append_minibatch_stddev(features, group_size: int = 4):
    """features (B, F) -> (B, F + 1): the last column is the standard deviation across a group
    of samples, averaged over the features. It lets a discriminator see how alike the samples
    of a batch are, so that a generator giving every latent the same output is told apart from
    real data.

    Groups are `group_size` consecutive samples (all of them when the batch is smaller), as in
    StyleGAN: with a per-device batch that is a multiple of `group_size`, the result does not
    depend on how the batch is split over devices.
    """
    batch, num_features = features.shape[0], features.shape[-1]
    if batch is not None:
        group_size = min(group_size, batch)
        if batch % group_size:
            raise ValueError(
                f"minibatch stddev: a batch of {batch} does not split into groups of "
                f"{group_size}; use a batch size that is a multiple of {group_size}."
            )
    groups = ops.reshape(ops.cast(features, "float32"), (-1, group_size, num_features))
    stddev = ops.mean(ops.sqrt(ops.var(groups, axis=1) + 1e-8), axis=-1, keepdims=True)
    column = ops.reshape(ops.repeat(stddev, group_size, axis=0), (-1, 1))
    return ops.concatenate([features, ops.cast(column, features.dtype)], axis=-1)
