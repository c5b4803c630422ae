"""FA and FM: the mapping networks from the input latent spaces Z to the intermediate spaces W."""

from __future__ import annotations

import keras
from keras import ops


@keras.saving.register_keras_serializable(package="avlae_keras")
class ScaledDense(keras.layers.Layer):
    """A Dense layer with a learning-rate multiplier (StyleGAN's and ALAE's equalised learning
    rate): weights are stored as N(0, 1 / lr_multiplier^2) and used as
    stored * lr_multiplier * gain / sqrt(fan_in), biases as stored * lr_multiplier. Adam's
    steps do not depend on the gradient's scale, so every parameter then moves
    `lr_multiplier` times as fast, relative to its size, as a plain Dense layer's would.

    Args:
        units: output size.
        lr_multiplier: 1 trains at the optimizer's rate; 0.01 is StyleGAN's mapping network.
        gain: init gain (sqrt(2) before a ReLU-like activation).
    """

    def __init__(self, units: int, lr_multiplier: float = 1.0, gain: float = 2**0.5, **kwargs):
        super().__init__(**kwargs)
        # === Config ===
        self.units = units
        self.lr_multiplier = lr_multiplier
        self.gain = gain

    def build(self, input_shape):
        fan_in = input_shape[-1]
        self.kernel = self.add_weight(
            (fan_in, self.units),
            initializer=keras.initializers.RandomNormal(stddev=1.0 / self.lr_multiplier),
            name="kernel",
        )
        self.bias = self.add_weight((self.units,), initializer="zeros", name="bias")
        self._kernel_scale = self.lr_multiplier * self.gain / fan_in**0.5
        self.built = True

    def call(self, x):
        kernel = ops.cast(self.kernel, x.dtype) * self._kernel_scale
        return ops.matmul(x, kernel) + ops.cast(self.bias, x.dtype) * self.lr_multiplier

    def compute_output_shape(self, input_shape):
        return (*tuple(input_shape)[:-1], self.units)

    def get_config(self):
        return {
            **super().get_config(),
            "units": self.units,
            "lr_multiplier": self.lr_multiplier,
            "gain": self.gain,
        }


@keras.saving.register_keras_serializable(package="avlae_keras")
class MappingNetwork(keras.layers.Layer):
    """Stacked fully connected layers with LeakyReLU between them, z (B, D) -> w (B, D_out).

    AVLAE uses two independent instances: FA maps zA to the appearance code wA, FM maps zM to the
    motion code wM (paper section 4.1: 5 layers, 128-d).

    Args:
        latent_dim: size of the output code w.
        hidden_dim: width of the hidden layers.
        num_layers: number of Dense layers.
        negative_slope: slope of the LeakyReLU between layers.
        lr_multiplier: 1: plain Dense layers (Glorot init, the optimizer's rate). Otherwise
            `ScaledDense` layers training at that multiple of the rate (ALAE 0.1, StyleGAN 0.01).
        normalize_latents: scale each z to unit root-mean-square first (ALAE's pixel norm).
    """

    def __init__(
        self,
        latent_dim: int = 128,
        hidden_dim: int = 128,
        num_layers: int = 5,
        negative_slope: float = 0.2,
        lr_multiplier: float = 1.0,
        normalize_latents: bool = False,
        **kwargs,
    ):
        if num_layers < 1:
            raise ValueError(f"num_layers must be at least 1, got {num_layers}.")
        super().__init__(**kwargs)

        # === Layers ===
        def dense(units: int, name: str) -> keras.layers.Layer:
            if lr_multiplier == 1.0:
                return keras.layers.Dense(units, dtype=self.dtype_policy, name=name)
            return ScaledDense(units, lr_multiplier, dtype=self.dtype_policy, name=name)

        self.dense_layers = [
            dense(latent_dim if index == num_layers - 1 else hidden_dim, f"dense_{index}")
            for index in range(num_layers)
        ]
        self.activation = keras.layers.LeakyReLU(negative_slope, dtype=self.dtype_policy)

        # === Config ===
        self.latent_dim = latent_dim
        self.hidden_dim = hidden_dim
        self.num_layers = num_layers
        self.negative_slope = negative_slope
        self.lr_multiplier = lr_multiplier
        self.normalize_latents = normalize_latents

    def build(self, input_shape):
        shape = tuple(input_shape)
        for layer in self.dense_layers:
            layer.build(shape)
            shape = layer.compute_output_shape(shape)
        self.built = True

    def call(self, z):
        w = z
        if self.normalize_latents:
            w = w * ops.rsqrt(ops.mean(ops.square(w), axis=-1, keepdims=True) + 1e-8)
        for index, layer in enumerate(self.dense_layers):
            w = layer(w)
            if index < self.num_layers - 1:
                w = self.activation(w)
        return w

    def compute_output_shape(self, input_shape):
        return (*tuple(input_shape)[:-1], self.latent_dim)

    def get_config(self):
        return {
            **super().get_config(),
            "latent_dim": self.latent_dim,
            "hidden_dim": self.hidden_dim,
            "num_layers": self.num_layers,
            "negative_slope": self.negative_slope,
            "lr_multiplier": self.lr_multiplier,
            "normalize_latents": self.normalize_latents,
        }
