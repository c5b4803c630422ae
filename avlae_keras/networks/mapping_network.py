"""FA and FM: the mapping networks from the input latent spaces Z to the intermediate spaces W."""

from __future__ import annotations

import keras


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
    """

    def __init__(
        self,
        latent_dim: int = 128,
        hidden_dim: int = 128,
        num_layers: int = 5,
        negative_slope: float = 0.2,
        **kwargs,
    ):
        if num_layers < 1:
            raise ValueError(f"num_layers must be at least 1, got {num_layers}.")
        super().__init__(**kwargs)

        # === Layers ===
        self.dense_layers = [
            keras.layers.Dense(
                latent_dim if index == num_layers - 1 else hidden_dim,
                dtype=self.dtype_policy,
                name=f"dense_{index}",
            )
            for index in range(num_layers)
        ]
        self.activation = keras.layers.LeakyReLU(negative_slope, dtype=self.dtype_policy)

        # === Config ===
        self.latent_dim = latent_dim
        self.hidden_dim = hidden_dim
        self.num_layers = num_layers
        self.negative_slope = negative_slope

    def build(self, input_shape):
        shape = tuple(input_shape)
        for layer in self.dense_layers:
            layer.build(shape)
            shape = layer.compute_output_shape(shape)
        self.built = True

    def call(self, z):
        w = z
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
        }
