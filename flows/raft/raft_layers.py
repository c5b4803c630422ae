"""Building blocks shared by RAFT's encoders and update blocks.

Every layer here knows the PyTorch module path of its weights (`torch_modules`), so that the
checkpoint reader can map an official `state_dict` onto it without a hand-written key table.
"""

from __future__ import annotations

import keras
from keras import ops


@keras.saving.register_keras_serializable(package="flows")
class TorchConv2D(keras.layers.Conv2D):
    """A Conv2D with PyTorch's symmetric zero padding of `kernel_size // 2` on each side.

    Keras' `padding="same"` pads asymmetrically for stride 2 (more at the bottom/right), which
    shifts every feature of a stride-2 convolution by half a pixel compared with the checkpoint.
    """

    def __init__(self, filters: int, kernel_size, strides=1, **kwargs):
        kwargs.pop("padding", None)
        super().__init__(filters, kernel_size, strides=strides, padding="valid", **kwargs)

    def _pad(self, inputs):
        pad_h, pad_w = self.kernel_size[0] // 2, self.kernel_size[1] // 2
        if pad_h == 0 and pad_w == 0:
            return inputs
        return ops.pad(inputs, [[0, 0], [pad_h, pad_h], [pad_w, pad_w], [0, 0]])

    def call(self, inputs):
        return super().call(self._pad(inputs))

    def convolve(self, inputs, kernel, bias=None):
        """This layer's convolution (padding, stride) with another kernel, e.g. a slice of its
        input channels or several layers' kernels side by side; in the layer's compute dtype."""
        dtype = self.compute_dtype
        outputs = ops.conv(
            self._pad(ops.cast(inputs, dtype)),
            ops.cast(kernel, dtype),
            strides=self.strides,
            padding="valid",
            data_format="channels_last",
        )
        return outputs if bias is None else outputs + ops.cast(bias, dtype)

    def compute_output_shape(self, input_shape):
        batch, height, width, channels = input_shape
        pad_h, pad_w = self.kernel_size[0] // 2, self.kernel_size[1] // 2
        padded = (
            batch,
            None if height is None else height + 2 * pad_h,
            None if width is None else width + 2 * pad_w,
            channels,
        )
        return super().compute_output_shape(padded)


@keras.saving.register_keras_serializable(package="flows")
class InstanceNormalization(keras.layers.Layer):
    """Per-sample, per-channel normalisation over H and W, without affine parameters.

    Matches `torch.nn.InstanceNorm2d(affine=False)`: biased variance, epsilon 1e-5.
    """

    def __init__(self, epsilon: float = 1e-5, **kwargs):
        super().__init__(**kwargs)
        self.epsilon = epsilon

    def call(self, inputs):
        mean = ops.mean(inputs, axis=(1, 2), keepdims=True)
        centered = inputs - mean
        variance = ops.mean(ops.square(centered), axis=(1, 2), keepdims=True)
        return centered * ops.rsqrt(variance + self.epsilon)

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return {**super().get_config(), "epsilon": self.epsilon}


def make_norm(norm: str, name: str, dtype=None):
    """The normalisation RAFT uses after a convolution: 'instance', 'batch' or 'none'."""
    if norm == "instance":
        return InstanceNormalization(name=name, dtype=dtype)
    if norm == "batch":
        return keras.layers.BatchNormalization(epsilon=1e-5, momentum=0.9, name=name, dtype=dtype)
    if norm == "none":
        return None
    raise ValueError(f"Unknown normalisation {norm!r}; expected 'instance', 'batch' or 'none'.")


def apply_norm(norm_layer, inputs):
    if norm_layer is None:
        return inputs
    if isinstance(norm_layer, keras.layers.BatchNormalization):
        # RAFT always runs BatchNorm with its stored statistics (its `freeze_bn`).
        return norm_layer(inputs, training=False)
    return norm_layer(inputs)


def build_layer(layer, input_shape):
    """Builds `layer` now, so that weights exist right after construction (needed to load them)."""
    layer.build(input_shape)
    return layer.compute_output_shape(input_shape)
