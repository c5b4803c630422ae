"""(2+1)D convolution stages shared by EM* and DV: a spatial (1, k, k) convolution with stride
2 followed by a temporal (k', 1, 1) convolution, each with a LeakyReLU, channels doubling."""

from __future__ import annotations

from collections.abc import Sequence

from avlae_keras.networks.factorized_conv3d import FactorizedConv3D
from avlae_keras.networks.initializers import leaky_relu_initializer


def add_factorized_conv_stages(
    spatial_convs: list,
    temporal_convs: list,
    num_stages: int,
    base_channels: int,
    max_channel_multiplier: int,
    spatial_kernel: int,
    temporal_kernel: int,
    temporal_strides: Sequence[int],
    negative_slope: float,
    dtype_policy,
) -> None:
    """Appends the layers of `num_stages` stages, named `spatial_conv_<i>` and
    `temporal_conv_<i>`, to a layer's (tracked) lists; stage i has `base_channels * 2**i` filters
    (capped at `max_channel_multiplier` times) and temporal stride `temporal_strides[i]`; each is
    followed by LeakyReLU(`negative_slope`).

    The layers are appended in pairs so that the variables (and the optimizer slots saved in
    checkpoints) come in the order spatial 0, temporal 0, spatial 1, ...
    """
    initializer = leaky_relu_initializer(negative_slope)
    for index in range(num_stages):
        filters = base_channels * min(max_channel_multiplier, 2**index)
        spatial_convs.append(
            FactorizedConv3D(
                filters,
                (1, spatial_kernel, spatial_kernel),
                strides=(1, 2, 2),
                padding="same",
                kernel_initializer=initializer,
                dtype=dtype_policy,
                name=f"spatial_conv_{index}",
            )
        )
        temporal_convs.append(
            FactorizedConv3D(
                filters,
                (temporal_kernel, 1, 1),
                strides=(temporal_strides[index], 1, 1),
                padding="same",
                kernel_initializer=initializer,
                dtype=dtype_policy,
                name=f"temporal_conv_{index}",
            )
        )


def build_stages(spatial_convs, temporal_convs, input_shape) -> tuple:
    """Builds the stages for `input_shape`; returns their output shape."""
    shape = tuple(input_shape)
    for spatial, temporal in zip(spatial_convs, temporal_convs, strict=True):
        spatial.build(shape)
        shape = spatial.compute_output_shape(shape)
        temporal.build(shape)
        shape = temporal.compute_output_shape(shape)
    return shape


def apply_stages(x, spatial_convs, temporal_convs, activation):
    for spatial, temporal in zip(spatial_convs, temporal_convs, strict=True):
        x = activation(spatial(x))
        x = activation(temporal(x))
    return x
