"""G: the video generator, wV = concat(wA, wM) -> (T, H, W, 3) with factorized (1+2)D transposed
convolutions."""

from __future__ import annotations

import math

import keras
from keras import ops

from avlae_keras.networks.factorized_conv3d import FactorizedConv3D, FactorizedConv3DTranspose

INITIAL_SIZE = 4


def _check_power_of_two(name: str, value: int, minimum: int) -> int:
    if value < minimum or 2 ** round(math.log2(value)) != value:
        raise ValueError(f"{name} must be a power of two >= {minimum}, got {value}.")
    return round(math.log2(value))


def with_initial_frames_of_older_runs(config: dict, default_frames: int) -> dict:
    """An AVLAE or TrainConfig `config` saved before `generator_initial_frames` existed gets the
    initial frames G then made, min(frames, 4); a newer one is returned as it is."""
    if "generator_initial_frames" in config:
        return config
    frames = config.get("frames", default_frames)
    return {**config, "generator_initial_frames": min(frames, 4)}


def generator_channels(resolution: int, base_channels: int, max_multiplier: int = 8) -> list[int]:
    """Channels of each generator block, from the 4x4 block to the full-resolution one."""
    num_upsamplings = _check_power_of_two("resolution", resolution, 8) - 2
    return [
        base_channels * min(max_multiplier, 2 ** (num_upsamplings - index))
        for index in range(num_upsamplings + 1)
    ]


GENERATOR_NORMALIZATIONS = ("layer", "instance", "frame")
LATENT_INJECTIONS = ("input", "every_block", "split")
TEMPORAL_PADDINGS = ("zeros", "replicate")


def _normalization_layer(kind: str, filters: int, dtype_policy, name: str) -> keras.layers.Layer:
    if kind == "layer":
        # Per position, over channels.
        return keras.layers.LayerNormalization(epsilon=1e-5, dtype=dtype_policy, name=name)
    if kind == "instance":
        # Per sample and channel, over frames, height and width (ALAE, StyleGAN's AdaIN).
        return keras.layers.GroupNormalization(
            groups=filters, epsilon=1e-5, center=False, scale=False, dtype=dtype_policy, name=name
        )
    if kind == "frame":
        return FrameNormalization(epsilon=1e-5, dtype=dtype_policy, name=name)
    raise ValueError(f"normalization must be one of {GENERATOR_NORMALIZATIONS}, got {kind!r}.")


@keras.saving.register_keras_serializable(package="avlae_keras")
class FrameNormalization(keras.layers.Layer):
    """Instance normalisation of each frame on its own: per sample, frame and channel, over
    height and width, without learned scale or shift. Every frame then carries a channel with
    the same strength, so no frame can fade out of a video. A frame of a single position (G's
    first temporal convolution, at 1 x 1) has no spatial statistics: it is normalised over its
    channels instead, which would otherwise be zeroed and make every initial frame the same.

    Args:
        epsilon: added to the variance.
    """

    def __init__(self, epsilon: float = 1e-5, **kwargs):
        super().__init__(**kwargs)
        self.epsilon = epsilon

    def call(self, x):
        single_position = x.shape[2] == 1 and x.shape[3] == 1
        axes = (4,) if single_position else (2, 3)
        mean, variance = ops.moments(x, axes=axes, keepdims=True)
        return (x - mean) * ops.rsqrt(variance + self.epsilon)

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return {**super().get_config(), "epsilon": self.epsilon}


@keras.saving.register_keras_serializable(package="avlae_keras")
class LatentModulation(keras.layers.Layer):
    """Scales and shifts every channel of a normalised activation by affine maps of the latent
    code: x * (1 + scale(w)) + shift(w) (AdaIN as in ALAE and StyleGAN), so the code reaches
    every block instead of the first one only.

    Args:
        filters: channels of the modulated activation.
    """

    def __init__(self, filters: int, **kwargs):
        super().__init__(**kwargs)
        # === Layers ===
        self.to_scale_and_shift = keras.layers.Dense(
            2 * filters,
            kernel_initializer=keras.initializers.VarianceScaling(
                1.0, "fan_in", "untruncated_normal"
            ),
            dtype=self.dtype_policy,
            name="to_scale_and_shift",
        )
        # === Config ===
        self.filters = filters

    def build(self, x_shape, w_shape):
        self.to_scale_and_shift.build(w_shape)
        self.built = True

    def call(self, x, w):
        scale, shift = ops.split(self.to_scale_and_shift(ops.cast(w, x.dtype)), 2, axis=-1)
        broadcast = (-1, 1, 1, 1, self.filters)
        return x * (1.0 + ops.reshape(scale, broadcast)) + ops.reshape(shift, broadcast)

    def get_config(self):
        return {**super().get_config(), "filters": self.filters}


@keras.saving.register_keras_serializable(package="avlae_keras")
class SpatioTemporalUpBlock(keras.layers.Layer):
    """A temporal transposed convolution (k, 1, 1), then a spatial one (1, 4, 4), each run as a
    2D convolution; then normalisation, optional modulation by the latent code, and ReLU.

    Args:
        filters: output channels.
        temporal_stride: 2 doubles the number of frames, 1 keeps it.
        spatial_stride: 2 doubles height and width, 1 keeps them.
        from_single_position: the first block: the input is one position (1, 1, 1) and both
            convolutions are 'valid', growing it to (temporal_size, 4, 4).
        temporal_size: frames produced by the first block.
        normalization: "layer" (per position, over channels), "instance" (per sample and
            channel, over the whole video) or "frame" (per sample, channel and frame).
        normalize_each_conv: also normalise (and modulate) and apply ReLU between the temporal
            and the spatial convolution (G3AN's block); False: one linear map, then one
            normalisation (the paper's "rudimentary" reading).
        use_bias: biases in the convolutions.
        modulated: the block takes the latent code as a second input and modulates each
            normalisation with it (`LatentModulation`).
        split_latents: the code is concat(wA, wM): wM modulates the normalisation after the
            temporal convolution and wA the one after the spatial convolution (needs
            `normalize_each_conv`).
        temporal_padding: what the temporal convolution sees beyond the first and last frame:
            "zeros" ('same' padding: an end frame is made from fewer taps than the others, and
            a stride-2 transposed convolution gives it a single tap) or "replicate" (the end
            frames repeated, so that every output frame is made from as many taps).
    """

    def __init__(
        self,
        filters: int,
        temporal_stride: int = 1,
        spatial_stride: int = 2,
        from_single_position: bool = False,
        temporal_size: int = INITIAL_SIZE,
        normalization: str = "layer",
        normalize_each_conv: bool = False,
        use_bias: bool = False,
        modulated: bool = False,
        split_latents: bool = False,
        temporal_padding: str = "zeros",
        **kwargs,
    ):
        if split_latents and not (modulated and normalize_each_conv):
            raise ValueError("split_latents needs modulated=True and normalize_each_conv=True.")
        if temporal_padding not in TEMPORAL_PADDINGS:
            raise ValueError(
                f"temporal_padding must be one of {TEMPORAL_PADDINGS}, got {temporal_padding!r}."
            )
        super().__init__(**kwargs)
        initializer = keras.initializers.RandomNormal(stddev=0.02)
        if from_single_position:
            temporal_kernel, conv_padding = temporal_size, "valid"
            spatial_kernel, spatial_padding = INITIAL_SIZE, "valid"
        else:
            temporal_kernel = 4 if temporal_stride == 2 else 3
            conv_padding = "same" if temporal_padding == "zeros" else "valid"
            spatial_kernel, spatial_padding = 4, "same"
        # Replicated end frames: one frame on each side, then the frames 'same' would keep.
        self._replicate = temporal_padding == "replicate" and not from_single_position
        self._crop = temporal_stride + (temporal_kernel - temporal_stride) // 2
        stages = ("temporal", "spatial") if normalize_each_conv else ("spatial",)

        # === Layers ===
        self.temporal_conv = FactorizedConv3DTranspose(
            filters,
            (temporal_kernel, 1, 1),
            strides=(temporal_stride, 1, 1),
            padding=conv_padding,
            use_bias=use_bias,
            kernel_initializer=initializer,
            dtype=self.dtype_policy,
            name="temporal_conv",
        )
        self.spatial_conv = FactorizedConv3DTranspose(
            filters,
            (1, spatial_kernel, spatial_kernel),
            strides=(1, spatial_stride, spatial_stride),
            padding=spatial_padding,
            use_bias=use_bias,
            kernel_initializer=initializer,
            dtype=self.dtype_policy,
            name="spatial_conv",
        )
        # Per-sample normalization keeps the step independent of how the batch is split across
        # devices, and carries no running statistics.
        suffix = {"temporal": "_temporal", "spatial": ""}
        self.normalizations = {
            stage: _normalization_layer(
                normalization, filters, self.dtype_policy, f"normalization{suffix[stage]}"
            )
            for stage in stages
        }
        self.modulations = {}
        if modulated:
            self.modulations = {
                stage: LatentModulation(
                    filters, dtype=self.dtype_policy, name=f"modulation{suffix[stage]}"
                )
                for stage in stages
            }

        # === Config ===
        self.filters = filters
        self.temporal_stride = temporal_stride
        self.spatial_stride = spatial_stride
        self.from_single_position = from_single_position
        self.temporal_size = temporal_size
        self.normalization = normalization
        self.normalize_each_conv = normalize_each_conv
        self.use_bias = use_bias
        self.modulated = modulated
        self.split_latents = split_latents
        self.temporal_padding = temporal_padding

    def build(self, input_shape, latent_shape=None):
        self.temporal_conv.build(input_shape)
        shapes = {"temporal": self._temporal_output_shape(input_shape)}
        self.spatial_conv.build(shapes["temporal"])
        shapes["spatial"] = self.spatial_conv.compute_output_shape(shapes["temporal"])
        for stage, normalization in self.normalizations.items():
            normalization.build(shapes[stage])
        if self.split_latents:
            latent_shape = (latent_shape[0], latent_shape[-1] // 2)
        for stage, modulation in self.modulations.items():
            modulation.build(shapes[stage], latent_shape)
        self.built = True

    def _normalize(self, x, stage: str, w):
        x = self.normalizations[stage](x)
        if self.modulations:
            if self.split_latents:
                w_a, w_m = ops.split(w, 2, axis=-1)
                w = w_m if stage == "temporal" else w_a
            x = self.modulations[stage](x, w)
        return ops.relu(x)

    def _temporal_output_shape(self, input_shape):
        if not self._replicate:
            return self.temporal_conv.compute_output_shape(input_shape)
        batch, frames, *rest = input_shape
        return (batch, frames * self.temporal_stride, *rest[:-1], self.filters)

    def _temporal(self, x):
        if not self._replicate:
            return self.temporal_conv(x)
        frames = x.shape[1]
        # "symmetric" padding by one frame repeats the end frame (and works on every backend).
        x = ops.pad(x, [(0, 0), (1, 1), (0, 0), (0, 0), (0, 0)], mode="symmetric")
        x = self.temporal_conv(x)
        return x[:, self._crop : self._crop + frames * self.temporal_stride]

    def call(self, inputs, w=None):
        if self.modulations and w is None:
            raise ValueError(f"{self.name} is modulated: pass the latent code w.")
        x = self._temporal(inputs)
        if self.normalize_each_conv:
            x = self._normalize(x, "temporal", w)
        return self._normalize(self.spatial_conv(x), "spatial", w)

    def compute_output_shape(self, input_shape, latent_shape=None):
        return self.spatial_conv.compute_output_shape(self._temporal_output_shape(input_shape))

    def get_config(self):
        return {
            **super().get_config(),
            "filters": self.filters,
            "temporal_stride": self.temporal_stride,
            "spatial_stride": self.spatial_stride,
            "from_single_position": self.from_single_position,
            "temporal_size": self.temporal_size,
            "normalization": self.normalization,
            "normalize_each_conv": self.normalize_each_conv,
            "use_bias": self.use_bias,
            "modulated": self.modulated,
            "split_latents": self.split_latents,
            "temporal_padding": self.temporal_padding,
        }


@keras.saving.register_keras_serializable(package="avlae_keras")
class VideoGenerator(keras.layers.Layer):
    """G: maps wV = concat(wA, wM) (B, 2 * latent_dim) to videos (B, T, H, W, 3) in [-1, 1].

    One video stream (no separate appearance and motion streams, paper section 4.1): the code
    is grown to (initial_frames, 4, 4) by 'valid' transposed convolutions, then each block
    doubles H and W (and T, in the first blocks, until it reaches `frames`), halving channels from
    `base_channels * max_channel_multiplier` down to `base_channels`; a (1, 3, 3) convolution and
    tanh give RGB. Channel layout follows G3AN's generator (512 -> 64 at 64x64 with width 64).

    Args:
        resolution: output height and width, a power of two >= 8 (64 or 128 in the paper).
        frames: output frames T, a power of two.
        base_channels: channels of the last block (the network's width).
        max_channel_multiplier: cap on channels, as a multiple of `base_channels`.
        normalization, normalize_each_conv, use_bias: see `SpatioTemporalUpBlock`.
        latent_injection: "input" (the paper: wV enters the first block only),
            "every_block" (wV also modulates every normalisation, as ALAE and StyleGAN) or
            "split" (every block, wM after temporal and wA after spatial convolutions, as
            G3AN feeds its motion and appearance streams; needs `normalize_each_conv`).
        temporal_padding: "zeros" or "replicate" (see `SpatioTemporalUpBlock`).
        initial_frames: frames made by the first block from wV, a power of two dividing
            `frames`; each of the next blocks doubles them until `frames`. None (the default):
            `frames` itself, no temporal upsampling: every frame has its own slice of the first
            block's kernel, so no two frames are made from one (with 4 made first and doubled,
            as G3AN's 4 of 16, frames come in look-alike pairs and sprites jump).
    """

    def __init__(
        self,
        resolution: int = 128,
        frames: int = 16,
        base_channels: int = 64,
        max_channel_multiplier: int = 8,
        normalization: str = "layer",
        normalize_each_conv: bool = False,
        use_bias: bool = False,
        latent_injection: str = "input",
        temporal_padding: str = "zeros",
        initial_frames: int | None = None,
        **kwargs,
    ):
        if latent_injection not in LATENT_INJECTIONS:
            raise ValueError(
                f"latent_injection must be one of {LATENT_INJECTIONS}, got {latent_injection!r}."
            )
        super().__init__(**kwargs)
        channels = generator_channels(resolution, base_channels, max_channel_multiplier)
        log_frames = _check_power_of_two("frames", frames, 1)
        if initial_frames is None:
            initial_frames = frames
        log_initial = _check_power_of_two("initial_frames", initial_frames, 1)
        if initial_frames > frames:
            raise ValueError(f"initial_frames={initial_frames} exceeds frames={frames}.")
        frame_doublings = log_frames - log_initial
        if frame_doublings > len(channels) - 1:
            raise ValueError(
                f"frames={frames} needs {frame_doublings} temporal doublings but resolution "
                f"{resolution} has only {len(channels) - 1} blocks; raise the resolution."
            )

        block_options = {
            "normalization": normalization,
            "normalize_each_conv": normalize_each_conv,
            "use_bias": use_bias,
            "modulated": latent_injection != "input",
            "split_latents": latent_injection == "split",
            "temporal_padding": temporal_padding,
            "dtype": self.dtype_policy,
        }

        # === Layers ===
        self.blocks = []
        for index, filters in enumerate(channels):
            self.blocks.append(
                SpatioTemporalUpBlock(
                    filters,
                    temporal_stride=2 if 0 < index <= frame_doublings else 1,
                    from_single_position=index == 0,
                    temporal_size=initial_frames,
                    name=f"block_{index}",
                    **block_options,
                )
            )
        self.to_rgb = FactorizedConv3D(
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
        self.normalization = normalization
        self.normalize_each_conv = normalize_each_conv
        self.use_bias = use_bias
        self.latent_injection = latent_injection
        self.temporal_padding = temporal_padding
        self.initial_frames = initial_frames

    def build(self, input_shape):
        shape = (input_shape[0], 1, 1, 1, input_shape[-1])
        for block in self.blocks:
            block.build(shape, input_shape)
            shape = block.compute_output_shape(shape)
        self.to_rgb.build(shape)
        self.built = True

    def call(self, w_video):
        x = ops.reshape(w_video, (-1, 1, 1, 1, w_video.shape[-1]))
        for block in self.blocks:
            x = block(x, w_video) if block.modulated else block(x)
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
            "normalization": self.normalization,
            "normalize_each_conv": self.normalize_each_conv,
            "use_bias": self.use_bias,
            "latent_injection": self.latent_injection,
            "temporal_padding": self.temporal_padding,
            "initial_frames": self.initial_frames,
        }
