"""EA: the appearance encoder, one frame x_t (H, W, 3) -> wA' (latent_dim)."""

from __future__ import annotations

import math

import keras
from keras import ops

from avlae_keras.networks.initializers import leaky_relu_initializer, linear_initializer


@keras.saving.register_keras_serializable(package="avlae_keras")
class AppearanceEncoder(keras.layers.Layer):
    """A 2D convolutional encoder (DCGAN-style: 4x4 stride-2 convolutions with LeakyReLU(0.2),
    channels doubling from `base_channels` up to `8 * base_channels`) down to 4x4, then a 4x4
    'valid' convolution to the latent code.

    Args:
        resolution: frame height and width, a power of two >= 8.
        base_channels: channels of the first convolution.
        latent_dim: size of the output code.
        max_channel_multiplier: cap on channels, as a multiple of `base_channels`.
        negative_slope: slope of the LeakyReLU.
    """

    def __init__(
        self,
        resolution: int = 128,
        base_channels: int = 64,
        latent_dim: int = 128,
        max_channel_multiplier: int = 8,
        negative_slope: float = 0.2,
        **kwargs,
    ):
        if resolution < 8 or 2 ** round(math.log2(resolution)) != resolution:
            raise ValueError(f"resolution must be a power of two >= 8, got {resolution}.")
        super().__init__(**kwargs)
        num_downsamplings = round(math.log2(resolution)) - 2

        # === Layers ===
        self.down_convs = [
            keras.layers.Conv2D(
                base_channels * min(max_channel_multiplier, 2**index),
                4,
                strides=2,
                padding="same",
                kernel_initializer=leaky_relu_initializer(negative_slope),
                dtype=self.dtype_policy,
                name=f"down_conv_{index}",
            )
            for index in range(num_downsamplings)
        ]
        self.activation = keras.layers.LeakyReLU(negative_slope, dtype=self.dtype_policy)
        self.to_latent = keras.layers.Conv2D(
            latent_dim,
            4,
            padding="valid",
            kernel_initializer=linear_initializer(),
            dtype=self.dtype_policy,
            name="to_latent",
        )

        # === Config ===
        self.resolution = resolution
        self.base_channels = base_channels
        self.latent_dim = latent_dim
        self.max_channel_multiplier = max_channel_multiplier
        self.negative_slope = negative_slope

    def build(self, input_shape):
        shape = tuple(input_shape)
        for conv in self.down_convs:
            conv.build(shape)
            shape = conv.compute_output_shape(shape)
        self.to_latent.build(shape)
        self.built = True

    def call(self, frames):
        x = frames
        for conv in self.down_convs:
            x = self.activation(conv(x))
        return ops.reshape(self.to_latent(x), (-1, self.latent_dim))

    def compute_output_shape(self, input_shape):
        return (input_shape[0], self.latent_dim)

    def get_config(self):
        return {
            **super().get_config(),
            "resolution": self.resolution,
            "base_channels": self.base_channels,
            "latent_dim": self.latent_dim,
            "max_channel_multiplier": self.max_channel_multiplier,
            "negative_slope": self.negative_slope,
        }
