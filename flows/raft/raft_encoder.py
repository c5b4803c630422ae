"""RAFT's feature and context encoders (`BasicEncoder` and `SmallEncoder` in the reference)."""

from __future__ import annotations

import keras
from keras import ops

from flows.raft.raft_layers import TorchConv2D, apply_norm, build_layer, make_norm

# (stem width, stage widths) of the two encoder families.
_ENCODER_WIDTHS = {
    "basic": (64, (64, 96, 128)),
    "small": (32, (32, 64, 96)),
}
_STAGE_STRIDES = (1, 2, 2)


class _ResidualBlock(keras.layers.Layer):
    """Two 3x3 convolutions with a (strided 1x1) shortcut; the block of the large encoder."""

    def __init__(self, filters: int, norm: str, strides: int = 1, **kwargs):
        super().__init__(**kwargs)
        self.filters, self.norm, self.strides = filters, norm, strides
        self.conv1 = TorchConv2D(filters, 3, strides=strides, name="conv1", dtype=self.dtype_policy)
        self.conv2 = TorchConv2D(filters, 3, name="conv2", dtype=self.dtype_policy)
        self.norm1 = make_norm(norm, "norm1", self.dtype_policy)
        self.norm2 = make_norm(norm, "norm2", self.dtype_policy)
        self.shortcut_conv = None
        self.shortcut_norm = None
        if strides != 1:
            self.shortcut_conv = TorchConv2D(
                filters, 1, strides=strides, name="downsample_conv", dtype=self.dtype_policy
            )
            self.shortcut_norm = make_norm(norm, "downsample_norm", self.dtype_policy)

    def build(self, input_shape):
        shape = build_layer(self.conv1, input_shape)
        for norm in (self.norm1, self.norm2):
            if norm is not None:
                build_layer(norm, shape)
        build_layer(self.conv2, shape)
        if self.shortcut_conv is not None:
            shape = build_layer(self.shortcut_conv, input_shape)
            if self.shortcut_norm is not None:
                build_layer(self.shortcut_norm, shape)

    def call(self, inputs):
        y = ops.relu(apply_norm(self.norm1, self.conv1(inputs)))
        y = ops.relu(apply_norm(self.norm2, self.conv2(y)))
        shortcut = inputs
        if self.shortcut_conv is not None:
            shortcut = apply_norm(self.shortcut_norm, self.shortcut_conv(inputs))
        return ops.relu(shortcut + y)

    def compute_output_shape(self, input_shape):
        return self.conv1.compute_output_shape(input_shape)

    def torch_modules(self, prefix: str):
        modules = [(f"{prefix}.conv1", self.conv1), (f"{prefix}.conv2", self.conv2)]
        modules += [(f"{prefix}.norm1", self.norm1), (f"{prefix}.norm2", self.norm2)]
        if self.shortcut_conv is not None:
            modules += [(f"{prefix}.downsample.0", self.shortcut_conv)]
            modules += [(f"{prefix}.downsample.1", self.shortcut_norm)]
        return modules


class _BottleneckBlock(keras.layers.Layer):
    """1x1 -> 3x3 -> 1x1 convolutions at a quarter of the width; the block of RAFT-small."""

    def __init__(self, filters: int, norm: str, strides: int = 1, **kwargs):
        super().__init__(**kwargs)
        self.filters, self.norm, self.strides = filters, norm, strides
        self.conv1 = TorchConv2D(filters // 4, 1, name="conv1", dtype=self.dtype_policy)
        self.conv2 = TorchConv2D(
            filters // 4, 3, strides=strides, name="conv2", dtype=self.dtype_policy
        )
        self.conv3 = TorchConv2D(filters, 1, name="conv3", dtype=self.dtype_policy)
        self.norm1 = make_norm(norm, "norm1", self.dtype_policy)
        self.norm2 = make_norm(norm, "norm2", self.dtype_policy)
        self.norm3 = make_norm(norm, "norm3", self.dtype_policy)
        self.shortcut_conv = None
        self.shortcut_norm = None
        if strides != 1:
            self.shortcut_conv = TorchConv2D(
                filters, 1, strides=strides, name="downsample_conv", dtype=self.dtype_policy
            )
            self.shortcut_norm = make_norm(norm, "downsample_norm", self.dtype_policy)

    def build(self, input_shape):
        shape = build_layer(self.conv1, input_shape)
        shape = build_layer(self.conv2, shape)
        final = build_layer(self.conv3, shape)
        for norm, norm_shape in ((self.norm1, shape), (self.norm2, shape), (self.norm3, final)):
            if norm is not None:
                build_layer(norm, norm_shape)
        if self.shortcut_conv is not None:
            shape = build_layer(self.shortcut_conv, input_shape)
            if self.shortcut_norm is not None:
                build_layer(self.shortcut_norm, shape)

    def call(self, inputs):
        y = ops.relu(apply_norm(self.norm1, self.conv1(inputs)))
        y = ops.relu(apply_norm(self.norm2, self.conv2(y)))
        y = ops.relu(apply_norm(self.norm3, self.conv3(y)))
        shortcut = inputs
        if self.shortcut_conv is not None:
            shortcut = apply_norm(self.shortcut_norm, self.shortcut_conv(inputs))
        return ops.relu(shortcut + y)

    def compute_output_shape(self, input_shape):
        return self.conv3.compute_output_shape(self.conv2.compute_output_shape(input_shape))

    def torch_modules(self, prefix: str):
        modules = [
            (f"{prefix}.conv{i}", conv)
            for i, conv in enumerate((self.conv1, self.conv2, self.conv3), start=1)
        ]
        modules += [
            (f"{prefix}.norm{i}", norm)
            for i, norm in enumerate((self.norm1, self.norm2, self.norm3), start=1)
        ]
        if self.shortcut_conv is not None:
            modules += [(f"{prefix}.downsample.0", self.shortcut_conv)]
            modules += [(f"{prefix}.downsample.1", self.shortcut_norm)]
        return modules


@keras.saving.register_keras_serializable(package="flows")
class RAFTEncoder(keras.layers.Layer):
    """Image encoder at 1/8 resolution: 7x7 stride-2 stem, three residual stages, 1x1 projection.

    Args:
        output_dim: channels of the output feature map.
        norm: 'instance' (feature encoder), 'batch' (large context encoder) or 'none'.
        family: 'basic' (residual blocks, RAFT) or 'small' (bottleneck blocks, RAFT-small).
    """

    def __init__(self, output_dim: int, norm: str, family: str = "basic", **kwargs):
        super().__init__(**kwargs)
        if family not in _ENCODER_WIDTHS:
            raise ValueError(f"Unknown encoder family {family!r}; expected 'basic' or 'small'.")
        self.output_dim, self.norm, self.family = output_dim, norm, family
        stem_width, stage_widths = _ENCODER_WIDTHS[family]
        block = _ResidualBlock if family == "basic" else _BottleneckBlock

        self.stem_conv = TorchConv2D(
            stem_width, 7, strides=2, name="conv1", dtype=self.dtype_policy
        )
        self.stem_norm = make_norm(norm, "norm1", self.dtype_policy)
        self.stages = []
        for stage, (width, strides) in enumerate(zip(stage_widths, _STAGE_STRIDES), start=1):
            self.stages.append(
                [
                    block(
                        width,
                        norm,
                        strides=strides,
                        name=f"layer{stage}_0",
                        dtype=self.dtype_policy,
                    ),
                    block(width, norm, strides=1, name=f"layer{stage}_1", dtype=self.dtype_policy),
                ]
            )
        self.projection = TorchConv2D(output_dim, 1, name="conv2", dtype=self.dtype_policy)

    def build(self, input_shape):
        shape = build_layer(self.stem_conv, input_shape)
        if self.stem_norm is not None:
            build_layer(self.stem_norm, shape)
        for stage in self.stages:
            for block in stage:
                shape = build_layer(block, shape)
        build_layer(self.projection, shape)

    def call(self, images):
        x = ops.relu(apply_norm(self.stem_norm, self.stem_conv(images)))
        for stage in self.stages:
            for block in stage:
                x = block(x)
        return self.projection(x)

    def compute_output_shape(self, input_shape):
        shape = self.stem_conv.compute_output_shape(input_shape)
        for stage in self.stages:
            for block in stage:
                shape = block.compute_output_shape(shape)
        return self.projection.compute_output_shape(shape)

    def torch_modules(self, prefix: str):
        modules = [(f"{prefix}.conv1", self.stem_conv), (f"{prefix}.norm1", self.stem_norm)]
        for stage_index, stage in enumerate(self.stages, start=1):
            for block_index, block in enumerate(stage):
                modules += block.torch_modules(f"{prefix}.layer{stage_index}.{block_index}")
        modules.append((f"{prefix}.conv2", self.projection))
        return modules

    def get_config(self):
        return {
            **super().get_config(),
            "output_dim": self.output_dim,
            "norm": self.norm,
            "family": self.family,
        }
