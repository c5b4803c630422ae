"""DV: the video discriminator, (2+1)D convolutional features of the video concatenated with the
motion code EM(x), then 3 Dense layers."""

from __future__ import annotations

import math

import keras
from keras import ops

from avlae_keras.networks.factorized_conv3d import FactorizedConv3D
from avlae_keras.networks.factorized_convolutions import (
    add_factorized_conv_stages,
    apply_stages,
    build_stages,
)
from avlae_keras.networks.initializers import leaky_relu_initializer
from avlae_keras.networks.minibatch_stddev import append_minibatch_stddev


@keras.saving.register_keras_serializable(package="avlae_keras")
class VideoDiscriminator(keras.layers.Layer):
    """DV(x, EM(x)) -> (B, 1) logits.

    Features: stages of a (1, 4, 4) stride-(1, 2, 2) spatial convolution and a (4, 1, 1)
    temporal convolution (stride 2 while more than one frame is left), LeakyReLU(0.2), channels
    doubling from `base_channels` (G3AN's video discriminator), down to 4x4; a 'valid'
    convolution over what is left gives a feature vector. It is concatenated with the motion
    code (when `motion_dim` > 0) and scored by 3 Dense layers with LeakyReLU(0.2) between them.

    Args:
        resolution: frame height and width, a power of two >= 8.
        frames: number of frames T.
        base_channels: channels of the first stage.
        motion_dim: size of the motion code input; 0 for a discriminator without EM (the
            paper's "-EM" ablation), which is then called on videos alone.
        hidden_dim: width of the two hidden Dense layers.
        max_channel_multiplier: cap on channels, as a multiple of `base_channels`.
        negative_slope: slope of the LeakyReLU.
        minibatch_stddev_group: > 0 appends the standard deviation across groups of this many
            samples (`append_minibatch_stddev`); 0: off.
    """

    def __init__(
        self,
        resolution: int = 128,
        frames: int = 16,
        base_channels: int = 64,
        motion_dim: int = 128,
        hidden_dim: int = 256,
        max_channel_multiplier: int = 8,
        negative_slope: float = 0.2,
        minibatch_stddev_group: int = 0,
        **kwargs,
    ):
        if resolution < 8 or 2 ** round(math.log2(resolution)) != resolution:
            raise ValueError(f"resolution must be a power of two >= 8, got {resolution}.")
        super().__init__(**kwargs)
        num_stages = round(math.log2(resolution)) - 2
        remaining_frames = frames

        temporal_strides = []
        for _ in range(num_stages):  # halve the frames while more than one is left
            temporal_strides.append(2 if remaining_frames > 1 else 1)
            remaining_frames = math.ceil(remaining_frames / temporal_strides[-1])

        # === Layers ===
        self.spatial_convs, self.temporal_convs = [], []
        add_factorized_conv_stages(
            self.spatial_convs,
            self.temporal_convs,
            num_stages,
            base_channels,
            max_channel_multiplier,
            spatial_kernel=4,
            temporal_kernel=4,
            temporal_strides=temporal_strides,
            negative_slope=negative_slope,
            dtype_policy=self.dtype_policy,
        )
        feature_dim = base_channels * min(max_channel_multiplier, 2**num_stages)
        self.to_features = FactorizedConv3D(
            feature_dim,
            (remaining_frames, 4, 4),
            padding="valid",
            kernel_initializer=leaky_relu_initializer(negative_slope),
            dtype=self.dtype_policy,
            name="to_features",
        )
        self.activation = keras.layers.LeakyReLU(negative_slope, dtype=self.dtype_policy)
        self.hidden_layers = [
            keras.layers.Dense(hidden_dim, dtype=self.dtype_policy, name=f"dense_{index}")
            for index in range(2)
        ]
        self.logit_layer = keras.layers.Dense(1, dtype=self.dtype_policy, name="logit")

        # === Config ===
        self.resolution = resolution
        self.frames = frames
        self.base_channels = base_channels
        self.motion_dim = motion_dim
        self.hidden_dim = hidden_dim
        self.max_channel_multiplier = max_channel_multiplier
        self.negative_slope = negative_slope
        self.feature_dim = feature_dim
        self.minibatch_stddev_group = minibatch_stddev_group

    def build(self, videos_shape, motion_code_shape=None):
        shape = build_stages(self.spatial_convs, self.temporal_convs, videos_shape)
        self.to_features.build(shape)
        shape = (
            shape[0],
            self.feature_dim + self.motion_dim + int(self.minibatch_stddev_group > 0),
        )
        for layer in self.hidden_layers:
            layer.build(shape)
            shape = layer.compute_output_shape(shape)
        self.logit_layer.build(shape)
        self.built = True

    def call(self, videos, motion_code=None):
        if (motion_code is None) != (self.motion_dim == 0):
            raise ValueError(
                f"This discriminator has motion_dim={self.motion_dim}: pass a motion code "
                "exactly when motion_dim > 0."
            )
        x = apply_stages(videos, self.spatial_convs, self.temporal_convs, self.activation)
        features = ops.reshape(self.activation(self.to_features(x)), (-1, self.feature_dim))
        if self.minibatch_stddev_group:
            features = append_minibatch_stddev(features, self.minibatch_stddev_group)
        if motion_code is not None:
            features = ops.concatenate([features, ops.cast(motion_code, features.dtype)], -1)
        for layer in self.hidden_layers:
            features = self.activation(layer(features))
        return self.logit_layer(features)

    def compute_output_shape(self, videos_shape, motion_code_shape=None):
        return (videos_shape[0], 1)

    def get_config(self):
        return {
            **super().get_config(),
            "resolution": self.resolution,
            "frames": self.frames,
            "base_channels": self.base_channels,
            "motion_dim": self.motion_dim,
            "hidden_dim": self.hidden_dim,
            "max_channel_multiplier": self.max_channel_multiplier,
            "negative_slope": self.negative_slope,
            "minibatch_stddev_group": self.minibatch_stddev_group,
        }
