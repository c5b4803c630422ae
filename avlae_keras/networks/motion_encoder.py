"""EM: the motion encoder. A frozen flow estimator (RAFT) computes the flow of the T-1 consecutive
frame pairs at 1/8 resolution; EM*, its trainable part, encodes that flow sequence to wM'."""

from __future__ import annotations

import math

import keras
from keras import ops

from avlae_keras.networks.factorized_convolutions import (
    add_factorized_conv_stages,
    apply_stages,
    build_stages,
)
from flows import RAFT  # (also registers RAFT, so that saved models holding one load)


def flow_grid_size(resolution: int) -> int:
    """Side of RAFT's 1/8-resolution flow for frames of side `resolution`."""
    return math.ceil(resolution / 8)


def resolve_flow_estimator(flow_estimator, dtype: str = "float32", unroll: bool = True):
    """A `flows.RAFT` from an instance, its serialized config, or a preset name (then built
    with `dtype` and `unroll`)."""
    if isinstance(flow_estimator, str):
        return RAFT.from_preset(flow_estimator, dtype=dtype, unroll=unroll)
    if isinstance(flow_estimator, dict):
        return keras.saving.deserialize_keras_object(flow_estimator)
    if flow_estimator is None:
        raise ValueError("use_motion_encoder=True needs a flow_estimator (a flows.RAFT or name).")
    return flow_estimator


@keras.saving.register_keras_serializable(package="avlae_keras")
class FlowSequenceEncoder(keras.layers.Layer):
    """EM*: flow sequence (B, T-1, h, w, 2) -> wM' (B, latent_dim).

    Factorized spatio-temporal convolutions: each stage is a (1, 3, 3) spatial convolution with
    stride 2 (until the grid is 1x1) followed by a (3, 1, 1) temporal convolution, both with
    LeakyReLU(0.2); channels double from `base_channels`. The features are averaged over time and
    space and a Dense layer gives the code.

    Args:
        flow_size: side h = w of the input flow grid.
        base_channels: channels of the first stage.
        latent_dim: size of the output code.
        max_channel_multiplier: cap on channels, as a multiple of `base_channels`.
        negative_slope: slope of the LeakyReLU.
    """

    def __init__(
        self,
        flow_size: int = 16,
        base_channels: int = 64,
        latent_dim: int = 128,
        max_channel_multiplier: int = 8,
        negative_slope: float = 0.2,
        **kwargs,
    ):
        super().__init__(**kwargs)
        num_stages = max(1, math.ceil(math.log2(max(flow_size, 1))))

        # === Layers ===
        self.spatial_convs, self.temporal_convs = [], []
        add_factorized_conv_stages(
            self.spatial_convs,
            self.temporal_convs,
            num_stages,
            base_channels,
            max_channel_multiplier,
            spatial_kernel=3,
            temporal_kernel=3,
            temporal_strides=[1] * num_stages,
            negative_slope=negative_slope,
            dtype_policy=self.dtype_policy,
        )
        self.activation = keras.layers.LeakyReLU(negative_slope, dtype=self.dtype_policy)
        self.to_latent = keras.layers.Dense(latent_dim, dtype=self.dtype_policy, name="to_latent")

        # === Config ===
        self.flow_size = flow_size
        self.base_channels = base_channels
        self.latent_dim = latent_dim
        self.max_channel_multiplier = max_channel_multiplier
        self.negative_slope = negative_slope

    def build(self, input_shape):
        shape = build_stages(self.spatial_convs, self.temporal_convs, input_shape)
        self.to_latent.build((shape[0], shape[-1]))
        self.built = True

    def call(self, flows):
        x = apply_stages(flows, self.spatial_convs, self.temporal_convs, self.activation)
        return self.to_latent(ops.mean(x, axis=(1, 2, 3)))

    def compute_output_shape(self, input_shape):
        return (input_shape[0], self.latent_dim)

    def get_config(self):
        return {
            **super().get_config(),
            "flow_size": self.flow_size,
            "base_channels": self.base_channels,
            "latent_dim": self.latent_dim,
            "max_channel_multiplier": self.max_channel_multiplier,
            "negative_slope": self.negative_slope,
        }


@keras.saving.register_keras_serializable(package="avlae_keras")
class MotionEncoder(keras.layers.Layer):
    """EM: videos (B, T, H, W, 3) in [-1, 1] -> wM' (B, latent_dim).

    The flow estimator sees frames mapped to [0, 255] and runs once over all B * (T - 1)
    consecutive pairs (`RAFT.compute_flow_sequence`, each frame feature-encoded once); its
    1/8-resolution flow (B, T-1, ceil(H/8), ceil(W/8), 2) feeds EM*
    (`flow_sequence_encoder`). The flow estimator stays frozen (its weights are never in a
    trainable list) but passes gradients to the frames.

    Args:
        flow_estimator: a `flows.RAFT` instance (or its serialized config).
        raft_iters: refinement iterations of RAFT.
        resolution: frame height and width.
        base_channels, latent_dim, max_channel_multiplier: see `FlowSequenceEncoder`.
    """

    def __init__(
        self,
        flow_estimator,
        raft_iters: int = 12,
        resolution: int = 128,
        base_channels: int = 64,
        latent_dim: int = 128,
        max_channel_multiplier: int = 8,
        **kwargs,
    ):
        super().__init__(**kwargs)
        if isinstance(flow_estimator, dict):
            flow_estimator = keras.saving.deserialize_keras_object(flow_estimator)
        flow_estimator.trainable = False

        # === Layers ===
        self.flow_estimator = flow_estimator
        self.flow_sequence_encoder = FlowSequenceEncoder(
            flow_size=flow_grid_size(resolution),
            base_channels=base_channels,
            latent_dim=latent_dim,
            max_channel_multiplier=max_channel_multiplier,
            dtype=self.dtype_policy,
            name="flow_sequence_encoder",
        )

        # === Config ===
        self.raft_iters = raft_iters
        self.resolution = resolution
        self.base_channels = base_channels
        self.latent_dim = latent_dim
        self.max_channel_multiplier = max_channel_multiplier

    def build(self, input_shape):
        grid = flow_grid_size(self.resolution)
        self.flow_sequence_encoder.build((input_shape[0], input_shape[1] - 1, grid, grid, 2))
        self.built = True

    def compute_flow_sequence(self, videos):
        """(B, T, H, W, 3) in [-1, 1] -> 1/8-resolution flow (B, T-1, ceil(H/8), ceil(W/8), 2)."""
        frames = videos.shape[1]
        if frames is None or frames < 2:
            raise ValueError(f"The motion encoder needs at least 2 frames, got {frames}.")
        images = (ops.cast(videos, "float32") + 1.0) * 127.5
        # One call over every video's T - 1 pairs; each frame is feature-encoded once.
        flow_low, _ = self.flow_estimator.compute_flow_sequence(images, iters=self.raft_iters)
        return flow_low

    def call(self, videos):
        return self.flow_sequence_encoder(self.compute_flow_sequence(videos))

    def compute_output_shape(self, input_shape):
        return (input_shape[0], self.latent_dim)

    def get_config(self):
        return {
            **super().get_config(),
            "flow_estimator": keras.saving.serialize_keras_object(self.flow_estimator),
            "raft_iters": self.raft_iters,
            "resolution": self.resolution,
            "base_channels": self.base_channels,
            "latent_dim": self.latent_dim,
            "max_channel_multiplier": self.max_channel_multiplier,
        }
