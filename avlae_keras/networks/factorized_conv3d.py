"""3D convolutions whose kernel spans only space (1, kh, kw) or only time (kt, 1, 1), run as 2D
convolutions.

XLA's CPU backend has no fast path for 3D convolutions: a (1, 4, 4) Conv3D with its gradients
takes about 12x as long as the same work written as a Conv2D over frames (AMD EPYC, JAX 0.10).
These layers keep `keras.layers.Conv3D` / `Conv3DTranspose`'s variables, names and configs, so
checkpoints are unchanged, and only change how the convolution is computed:

- spatial kernels (1, kh, kw) with temporal stride 1: frames are folded into the batch;
- temporal kernels (kt, 1, 1) with spatial stride 1: height and width are folded into one axis
  and the kernel becomes (kt, 1).

Any other kernel runs as a plain 3D convolution.
"""

from __future__ import annotations

import keras
from keras import ops


def _factorization(layer) -> str | None:
    """'spatial', 'temporal' or None for a channels-last, undilated, ungrouped 3D conv layer."""
    if layer.data_format != "channels_last" or tuple(layer.dilation_rate) != (1, 1, 1):
        return None
    if getattr(layer, "groups", 1) != 1:
        return None
    (kt, kh, kw), (st, sh, sw) = layer.kernel_size, layer.strides
    if kt == 1 and st == 1:
        return "spatial"
    if kh == kw == 1 and sh == sw == 1:
        return "temporal"
    return None


def _to_2d(inputs, factorization: str):
    """(B, T, H, W, C) -> the 2D layout of `factorization`."""
    _, frames, height, width, channels = inputs.shape
    if factorization == "spatial":
        return ops.reshape(inputs, (-1, height, width, channels))
    return ops.reshape(inputs, (-1, frames, height * width, channels))


def _from_2d(outputs, inputs_shape, factorization: str):
    """The 2D result back to (B, T', H', W', C')."""
    _, frames, height, width, _ = inputs_shape
    if factorization == "spatial":
        return ops.reshape(outputs, (-1, frames, *outputs.shape[1:]))
    return ops.reshape(outputs, (-1, outputs.shape[1], height, width, outputs.shape[-1]))


def _kernel_2d(kernel, factorization: str):
    """(kt, kh, kw, a, b) -> (kh, kw, a, b) or (kt, 1, a, b)."""
    return kernel[0] if factorization == "spatial" else kernel[:, 0]


def _strides_2d(layer, factorization: str) -> tuple[int, int]:
    st, sh, sw = layer.strides
    return (sh, sw) if factorization == "spatial" else (st, 1)


@keras.saving.register_keras_serializable(package="avlae_keras")
class FactorizedConv3D(keras.layers.Conv3D):
    """`keras.layers.Conv3D` that runs spatial-only and temporal-only kernels as 2D convs."""

    def convolution_op(self, inputs, kernel):
        factorization = _factorization(self)
        if factorization is None:
            return super().convolution_op(inputs, kernel)
        outputs = ops.conv(
            _to_2d(inputs, factorization),
            _kernel_2d(kernel, factorization),
            strides=_strides_2d(self, factorization),
            padding=self.padding,
        )
        return _from_2d(outputs, inputs.shape, factorization)


@keras.saving.register_keras_serializable(package="avlae_keras")
class FactorizedConv3DTranspose(keras.layers.Conv3DTranspose):
    """`keras.layers.Conv3DTranspose` that runs spatial-only and temporal-only kernels as 2D
    transposed convs."""

    def call(self, inputs):
        factorization = _factorization(self)
        if factorization is None or self.output_padding is not None:
            return super().call(inputs)
        outputs = ops.conv_transpose(
            _to_2d(inputs, factorization),
            _kernel_2d(self.kernel, factorization),
            strides=_strides_2d(self, factorization),
            padding=self.padding,
        )
        outputs = _from_2d(outputs, inputs.shape, factorization)
        if self.use_bias:
            outputs = ops.add(outputs, self.bias)
        if self.activation is not None:
            outputs = self.activation(outputs)
        return outputs
