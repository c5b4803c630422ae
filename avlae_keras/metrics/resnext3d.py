"""3D ResNeXt (Hara et al., "Can Spatiotemporal 3D CNNs Retrace the History of 2D CNNs and
ImageNet?", CVPR 2018), the Kinetics feature extractor of the video FID protocol.

The layout follows kenshohara/3D-ResNets-PyTorch (`models/resnext.py`, the version that produced
`resnext-101-kinetics.pth`): a 7x7x7 stem with stride (1, 2, 2), a 3x3x3 max pool with stride 2
and padding 1, bottleneck blocks whose 3x3x3 convolution is grouped (cardinality 32) and whose
width is `cardinality * (planes // 32)`, expansion 2, projection shortcuts ("type B") where the
shape changes, batch norm with PyTorch's epsilon 1e-5, an average pool over the last
`(ceil(duration / 16), ceil(size / 32), ceil(size / 32))` positions, and a linear classifier.
Tensors are channels-last: videos are (batch, time, height, width, channels).
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence

import keras
from keras import ops

from avlae_keras.metrics.host_constant import batch_norm_kwargs, conv_kwargs

_EXPANSION = 2


def _pad(inputs, padding: Sequence[int], value: float = 0.0):
    if not any(padding):
        return inputs
    pads = [[0, 0], *([p, p] for p in padding), [0, 0]]
    return ops.pad(inputs, pads, constant_values=value)


def _conv_output_size(size, kernel: int, stride: int, padding: int):
    return None if size is None else (size + 2 * padding - kernel) // stride + 1


@keras.saving.register_keras_serializable(package="avlae_keras.metrics")
class TorchConv3D(keras.layers.Conv3D):
    """A Conv3D with PyTorch's symmetric zero padding (`padding` positions on both sides).

    Keras' `padding="same"` pads asymmetrically for stride 2, which shifts every output of the
    strided convolutions by half a voxel compared with the checkpoint.
    """

    def __init__(self, filters: int, kernel_size, strides=1, torch_padding=0, **kwargs):
        kwargs.pop("padding", None)
        kwargs.setdefault("use_bias", False)
        super().__init__(filters, kernel_size, strides=strides, padding="valid", **kwargs)
        if isinstance(torch_padding, int):
            torch_padding = (torch_padding,) * 3
        self.torch_padding = tuple(int(p) for p in torch_padding)

    def build(self, input_shape):
        padded = list(input_shape)
        for axis, pad in enumerate(self.torch_padding, start=1):
            if padded[axis] is not None:
                padded[axis] += 2 * pad
        super().build(tuple(padded))

    def call(self, inputs):
        return super().call(_pad(inputs, self.torch_padding))

    def compute_output_shape(self, input_shape):
        out = [input_shape[0]]
        for axis in range(3):
            out.append(
                _conv_output_size(
                    input_shape[axis + 1],
                    self.kernel_size[axis],
                    self.strides[axis],
                    self.torch_padding[axis],
                )
            )
        return (*out, self.filters)

    def get_config(self):
        config = super().get_config()
        config.pop("padding", None)
        return {**config, "torch_padding": self.torch_padding}


def _batch_norm(name: str, weight_init: str) -> keras.layers.BatchNormalization:
    return keras.layers.BatchNormalization(
        epsilon=1e-5, momentum=0.9, name=name, **batch_norm_kwargs(weight_init)
    )


@keras.saving.register_keras_serializable(package="avlae_keras.metrics")
class ResNeXtBottleneck3D(keras.layers.Layer):
    """1x1x1 -> grouped 3x3x3 (stride) -> 1x1x1 (x2 expansion), plus an identity or projection."""

    def __init__(
        self,
        planes: int,
        cardinality: int = 32,
        strides: int = 1,
        downsample: bool = False,
        weight_init: str = "random",
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.weight_init = weight_init
        self.planes = int(planes)
        self.cardinality = int(cardinality)
        self.strides = int(strides)
        self.downsample = bool(downsample)
        mid_planes = self.cardinality * (self.planes // 32)
        if mid_planes < 1:
            raise ValueError(
                f"planes={planes} with cardinality={cardinality} gives a zero-width bottleneck "
                "(width is cardinality * (planes // 32))"
            )
        self.mid_planes = mid_planes
        self.out_planes = self.planes * _EXPANSION
        init = conv_kwargs(weight_init)
        self.conv1 = TorchConv3D(mid_planes, 1, name="conv1", **init)
        self.bn1 = _batch_norm("bn1", weight_init)
        self.conv2 = TorchConv3D(
            mid_planes,
            3,
            strides=self.strides,
            torch_padding=1,
            groups=self.cardinality,
            name="conv2",
            **init,
        )
        self.bn2 = _batch_norm("bn2", weight_init)
        self.conv3 = TorchConv3D(self.out_planes, 1, name="conv3", **init)
        self.bn3 = _batch_norm("bn3", weight_init)
        if self.downsample:
            self.downsample_conv = TorchConv3D(
                self.out_planes, 1, strides=self.strides, name="downsample_conv", **init
            )
            self.downsample_bn = _batch_norm("downsample_bn", weight_init)

    def build(self, input_shape):
        self.conv1.build(input_shape)
        inner = (*input_shape[:-1], self.mid_planes)
        self.bn1.build(inner)
        self.conv2.build(inner)
        strided = self.conv2.compute_output_shape(inner)
        self.bn2.build(strided)
        self.conv3.build(strided)
        self.bn3.build((*strided[:-1], self.out_planes))
        if self.downsample:
            self.downsample_conv.build(input_shape)
            self.downsample_bn.build((*strided[:-1], self.out_planes))

    def call(self, inputs, training=False):
        x = ops.relu(self.bn1(self.conv1(inputs), training=training))
        x = ops.relu(self.bn2(self.conv2(x), training=training))
        x = self.bn3(self.conv3(x), training=training)
        if self.downsample:
            residual = self.downsample_bn(self.downsample_conv(inputs), training=training)
        else:
            residual = inputs
        return ops.relu(x + residual)

    def compute_output_shape(self, input_shape):
        return (*self.conv2.compute_output_shape(input_shape)[:-1], self.out_planes)

    def torch_modules(self, prefix: str) -> Iterator[tuple[str, keras.layers.Layer]]:
        yield f"{prefix}.conv1", self.conv1
        yield f"{prefix}.bn1", self.bn1
        yield f"{prefix}.conv2", self.conv2
        yield f"{prefix}.bn2", self.bn2
        yield f"{prefix}.conv3", self.conv3
        yield f"{prefix}.bn3", self.bn3
        if self.downsample:
            yield f"{prefix}.downsample.0", self.downsample_conv
            yield f"{prefix}.downsample.1", self.downsample_bn

    def get_config(self):
        return {
            **super().get_config(),
            "planes": self.planes,
            "cardinality": self.cardinality,
            "strides": self.strides,
            "downsample": self.downsample,
            "weight_init": self.weight_init,
        }


def _stage_specs(
    layers: Sequence[int], block_planes: Sequence[int], stem_channels: int
) -> list[list[tuple[int, int, bool]]]:
    """(planes, stride, projection shortcut) of every block, stage by stage."""
    specs = []
    inplanes = stem_channels
    for stage, (blocks, planes) in enumerate(zip(layers, block_planes)):
        stride = 1 if stage == 0 else 2
        stage_specs = [(planes, stride, stride != 1 or inplanes != planes * _EXPANSION)]
        inplanes = planes * _EXPANSION
        stage_specs += [(planes, 1, False)] * (blocks - 1)
        specs.append(stage_specs)
    return specs


@keras.saving.register_keras_serializable(package="avlae_keras.metrics")
class ResNeXt3D(keras.Model):
    """3D ResNeXt with shortcut type B; the defaults are ResNeXt-101 (32 groups) for Kinetics.

    Input: (batch, sample_duration, sample_size, sample_size, 3), RGB in 0..255 minus the
    Kinetics mean (see `KINETICS_MEAN`). `call` returns the class logits when `include_top`,
    else the average-pooled features (batch, block_planes[-1] * 2) — 2048-d by default.
    Where the final average pool leaves more than one position (inputs larger than
    `sample_size` / `sample_duration`) they are averaged.

    `layers`, `block_planes`, `cardinality` and `stem_channels` exist to build small variants
    quickly for tests; the defaults are the published network. `weight_init="constant"` skips
    random initialisation for a model that is about to load a checkpoint.
    """

    def __init__(
        self,
        layers: Sequence[int] = (3, 4, 23, 3),
        cardinality: int = 32,
        block_planes: Sequence[int] = (128, 256, 512, 1024),
        stem_channels: int = 64,
        num_classes: int = 400,
        sample_size: int = 112,
        sample_duration: int = 16,
        include_top: bool = True,
        weight_init: str = "random",
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.weight_init = weight_init
        self.stage_depths = tuple(int(n) for n in layers)
        self.cardinality = int(cardinality)
        self.block_planes = tuple(int(p) for p in block_planes)
        self.stem_channels = int(stem_channels)
        self.num_classes = int(num_classes)
        self.sample_size = int(sample_size)
        self.sample_duration = int(sample_duration)
        self.include_top = bool(include_top)
        if len(self.stage_depths) != len(self.block_planes):
            raise ValueError(
                f"layers {self.stage_depths} and block_planes {self.block_planes} differ in length"
            )
        self.conv1 = TorchConv3D(
            self.stem_channels,
            7,
            strides=(1, 2, 2),
            torch_padding=3,
            name="conv1",
            **conv_kwargs(weight_init),
        )
        self.bn1 = _batch_norm("bn1", weight_init)
        self.blocks: list[ResNeXtBottleneck3D] = []
        self.block_prefixes: list[str] = []
        specs = _stage_specs(self.stage_depths, self.block_planes, self.stem_channels)
        for stage, stage_specs in enumerate(specs, start=1):
            for index, (planes, stride, projection) in enumerate(stage_specs):
                self.blocks.append(
                    ResNeXtBottleneck3D(
                        planes,
                        self.cardinality,
                        stride,
                        projection,
                        weight_init=weight_init,
                        name=f"layer{stage}_{index}",
                    )
                )
                self.block_prefixes.append(f"layer{stage}.{index}")
        self.pool_size = (
            math.ceil(self.sample_duration / 16),
            math.ceil(self.sample_size / 32),
            math.ceil(self.sample_size / 32),
        )
        self.feature_dim = self.block_planes[-1] * _EXPANSION
        self.fc = (
            keras.layers.Dense(self.num_classes, name="fc", **conv_kwargs(weight_init))
            if self.include_top
            else None
        )

    @property
    def default_input_shape(self) -> tuple[int, int, int, int]:
        """(time, height, width, channels) of the clips the network was trained on."""
        return (self.sample_duration, self.sample_size, self.sample_size, 3)

    def features(self, inputs, training=False):
        """Average-pooled features of the last stage: (batch, block_planes[-1] * 2)."""
        x = ops.relu(self.bn1(self.conv1(inputs), training=training))
        # Padding with -inf: PyTorch's max pool ignores its padding.
        x = ops.max_pool(_pad(x, (1, 1, 1), float("-inf")), 3, strides=2, padding="valid")
        for block in self.blocks:
            x = block(x, training=training)
        x = ops.average_pool(x, self.pool_size, strides=1, padding="valid")
        return ops.mean(x, axis=(1, 2, 3))

    def call(self, inputs, training=False):
        x = self.features(inputs, training=training)
        return self.fc(x) if self.fc is not None else x

    def torch_modules(self) -> Iterator[tuple[str, keras.layers.Layer]]:
        """(state_dict prefix, Keras layer) pairs of the PyTorch model, in its order."""
        yield "conv1", self.conv1
        yield "bn1", self.bn1
        for prefix, block in zip(self.block_prefixes, self.blocks):
            yield from block.torch_modules(prefix)
        if self.fc is not None:
            yield "fc", self.fc

    def get_config(self):
        return {
            **super().get_config(),
            "layers": self.stage_depths,
            "cardinality": self.cardinality,
            "block_planes": self.block_planes,
            "stem_channels": self.stem_channels,
            "num_classes": self.num_classes,
            "sample_size": self.sample_size,
            "sample_duration": self.sample_duration,
            "include_top": self.include_top,
            "weight_init": self.weight_init,
        }


def resnext3d_state_dict_shapes(
    layers: Sequence[int] = (3, 4, 23, 3),
    cardinality: int = 32,
    block_planes: Sequence[int] = (128, 256, 512, 1024),
    stem_channels: int = 64,
    num_classes: int | None = 400,
) -> dict[str, tuple[int, ...]]:
    """Key -> shape of the PyTorch `state_dict` (without `module.` and `num_batches_tracked`).

    With the defaults these are the keys and shapes of `resnext-101-kinetics.pth`.
    """
    shapes: dict[str, tuple[int, ...]] = {}

    def bn(prefix: str, channels: int) -> None:
        for name in ("weight", "bias", "running_mean", "running_var"):
            shapes[f"{prefix}.{name}"] = (channels,)

    shapes["conv1.weight"] = (stem_channels, 3, 7, 7, 7)
    bn("bn1", stem_channels)
    inplanes = stem_channels
    specs = _stage_specs(layers, block_planes, stem_channels)
    for stage, stage_specs in enumerate(specs, start=1):
        for index, (planes, _, projection) in enumerate(stage_specs):
            prefix = f"layer{stage}.{index}"
            mid = cardinality * (planes // 32)
            out = planes * _EXPANSION
            shapes[f"{prefix}.conv1.weight"] = (mid, inplanes, 1, 1, 1)
            bn(f"{prefix}.bn1", mid)
            shapes[f"{prefix}.conv2.weight"] = (mid, mid // cardinality, 3, 3, 3)
            bn(f"{prefix}.bn2", mid)
            shapes[f"{prefix}.conv3.weight"] = (out, mid, 1, 1, 1)
            bn(f"{prefix}.bn3", out)
            if projection:
                shapes[f"{prefix}.downsample.0.weight"] = (out, inplanes, 1, 1, 1)
                bn(f"{prefix}.downsample.1", out)
            inplanes = out
    if num_classes is not None:
        shapes["fc.weight"] = (num_classes, inplanes)
        shapes["fc.bias"] = (num_classes,)
    return shapes


# Per-channel RGB mean of Kinetics on the 0..255 scale, subtracted by Hara et al. (no std).
KINETICS_MEAN = (110.63666788, 103.16065604, 96.29023126)
