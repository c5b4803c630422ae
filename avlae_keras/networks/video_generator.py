"""G: the video generator, wV = concat(wA, wM) -> (T, H, W, 3) with factorized (1+2)D transposed
convolutions."""

from __future__ import annotations

import math

import keras
from keras import ops

INITIAL_SIZE = 4


def _check_power_of_two(name: str, value: int, minimum: int) -> int:
    if value < minimum or 2 ** round(math.log2(value)) != value:
        raise ValueError(f"{name} must be a power of two >= {minimum}, got {value}.")
    return round(math.log2(value))


def generator_channels(resolution: int, base_channels: int, max_multiplier: int = 8) -> list[int]:
    """Channels of each generator block, from the 4x4 block to the full-resolution one."""
    num_upsamplings = _check_power_of_two("resolution", resolution, 8) - 2
    return [
        base_channels * min(max_multiplier, 2 ** (num_upsamplings - index))
        for index in range(num_upsamplings + 1)
    ]


@keras.saving.register_keras_serializable(package="avlae_keras")
class SpatioTemporalUpBlock(keras.layers.Layer):
    """A temporal transposed convolution (k, 1, 1), then a spatial one (1, 4, 4), then a
    per-position LayerNormalization over channels and ReLU.

    Args:
        filters: output channels.
        temporal_stride: 2 doubles the number of frames, 1 keeps it.
        spatial_stride: 2 doubles height and width, 1 keeps them.
        from_single_position: the first block: the input is one position (1, 1, 1) and both
            convolutions are 'valid', growing it to (temporal_size, 4, 4).
        temporal_size: frames produced by the first block.
    """

    def __init__(
        self,
        filters: int,
        temporal_stride: int = 1,
        spatial_stride: int = 2,
        from_single_position: bool = False,
        temporal_size: int = INITIAL_SIZE,
        **kwargs,
    ):
        super().__init__(**kwargs)
        initializer = keras.initializers.RandomNormal(stddev=0.02)
        if from_single_position:
            temporal_kernel, temporal_padding = temporal_size, "valid"
            spatial_kernel, spatial_padding = INITIAL_SIZE, "valid"
        else:
            temporal_kernel, temporal_padding = (4 if temporal_stride == 2 else 3), "same"
            spatial_kernel, spatial_padding = 4, "same"

        # === Layers ===
        self.temporal_conv = keras.layers.Conv3DTranspose(
            filters,
            (temporal_kernel, 1, 1),
            strides=(temporal_stride, 1, 1),
            padding=temporal_padding,
            use_bias=False,
            kernel_initializer=initializer,
            dtype=self.dtype_policy,
            name="temporal_conv",
        )
        self.spatial_conv = keras.layers.Conv3DTranspose(
            filters,
            (1, spatial_kernel, spatial_kernel),
            strides=(1, spatial_stride, spatial_stride),
            padding=spatial_padding,
            use_bias=False,
            kernel_initializer=initializer,
            dtype=self.dtype_policy,
            name="spatial_conv",
        )
        # Per-sample normalization keeps the step independent of how the batch is split across
        # devices, and carries no running statistics.
        self.normalization = keras.layers.LayerNormalization(
            epsilon=1e-5, dtype=self.dtype_policy, name="normalization"
        )

        # === Config ===
        self.filters = filters
        self.temporal_stride = temporal_stride
        self.spatial_stride = spatial_stride
        self.from_single_position = from_single_position
        self.temporal_size = temporal_size

    def build(self, input_shape):
        self.temporal_conv.build(input_shape)
        shape = self.temporal_conv.compute_output_shape(input_shape)
        self.spatial_conv.build(shape)
        shape = self.spatial_conv.compute_output_shape(shape)
        self.normalization.build(shape)
        self.built = True

    def call(self, inputs):
        x = self.spatial_conv(self.temporal_conv(inputs))
        return ops.relu(self.normalization(x))

    def compute_output_shape(self, input_shape):
        shape = self.temporal_conv.compute_output_shape(input_shape)
        return self.spatial_conv.compute_output_shape(shape)

    def get_config(self):
        return {
            **super().get_config(),
            "filters": self.filters,
            "temporal_stride": self.temporal_stride,
            "spatial_stride": self.spatial_stride,
            "from_single_position": self.from_single_position,
            "temporal_size": self.temporal_size,
        }


@keras.saving.register_keras_serializable(package="avlae_keras")
class VideoGenerator(keras.layers.Layer):
    """G: maps wV = concat(wA, wM) (B, 2 * latent_dim) to videos (B, T, H, W, 3) in [-1, 1].

    One video stream (no separate appearance and motion streams, paper section 4.1): the code is
    grown to (min(T, 4), 4, 4) by 'valid' transposed convolutions, then each block doubles H and
    W (and T, in the first blocks, until it reaches `frames`), halving channels from
    `base_channels * max_channel_multiplier` down to `base_channels`; a (1, 3, 3) convolution and
    tanh give RGB. Channel layout follows G3AN's generator (512 -> 64 at 64x64 with width 64).

    Args:
        resolution: output height and width, a power of two >= 8 (64 or 128 in the paper).
        frames: output frames T, a power of two.
        base_channels: channels of the last block (the network's width).
        max_channel_multiplier: cap on channels, as a multiple of `base_channels`.
    """

    def __init__(
        self,
        resolution: int = 128,
        frames: int = 16,
        base_channels: int = 64,
        max_channel_multiplier: int = 8,
        **kwargs,
    ):
        super().__init__(**kwargs)
        channels = generator_channels(resolution, base_channels, max_channel_multiplier)
        frame_doublings = _check_power_of_two("frames", frames, 1) - min(
            2, _check_power_of_two("frames", frames, 1)
        )
        initial_frames = frames // 2**frame_doublings
        if frame_doublings > len(channels) - 1:
            raise ValueError(
                f"frames={frames} needs {frame_doublings} temporal doublings but resolution "
                f"{resolution} has only {len(channels) - 1} blocks; raise the resolution."
            )

        # === Layers ===
        self.blocks = [
            SpatioTemporalUpBlock(
                channels[0],
                from_single_position=True,
                temporal_size=initial_frames,
                dtype=self.dtype_policy,
                name="block_0",
            )
        ]
        for index, filters in enumerate(channels[1:], start=1):
            self.blocks.append(
                SpatioTemporalUpBlock(
                    filters,
                    temporal_stride=2 if index <= frame_doublings else 1,
                    dtype=self.dtype_policy,
                    name=f"block_{index}",
                )
            )
        self.to_rgb = keras.layers.Conv3D(
            3,
            (1, 3, 3),
            padding="same",
            kernel_initializer=keras.initializers.RandomNormal(stddev=0.02),
            dtype=self.dtype_policy,
            name="to_rgb",
        )

        # === Config ===
        self.resolution = resolution
        self.frames = frames
        self.base_channels = base_channels
        self.max_channel_multiplier = max_channel_multiplier

    def build(self, input_shape):
        shape = (input_shape[0], 1, 1, 1, input_shape[-1])
        for block in self.blocks:
            block.build(shape)
            shape = block.compute_output_shape(shape)
        self.to_rgb.build(shape)
        self.built = True

    def call(self, w_video):
        x = ops.reshape(w_video, (-1, 1, 1, 1, w_video.shape[-1]))
        for block in self.blocks:
            x = block(x)
        return ops.tanh(ops.cast(self.to_rgb(x), "float32"))

    def compute_output_shape(self, input_shape):
        return (input_shape[0], self.frames, self.resolution, self.resolution, 3)

    def compute_output_spec(self, w_video):
        shape = self.compute_output_shape(w_video.shape)
        return keras.KerasTensor(shape, dtype="float32")

    def get_config(self):
        return {
            **super().get_config(),
            "resolution": self.resolution,
            "frames": self.frames,
            "base_channels": self.base_channels,
            "max_channel_multiplier": self.max_channel_multiplier,
        }
