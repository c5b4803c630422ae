"""DI: the discriminator on appearance codes wA' = EA(x_t) (3 Dense layers)."""

from __future__ import annotations

import keras


@keras.saving.register_keras_serializable(package="avlae_keras")
class ImageLatentDiscriminator(keras.layers.Layer):
    """Three Dense layers with LeakyReLU(0.2) between them, (B, latent_dim) -> (B, 1) logits.

    Together with the appearance encoder EA it forms the image discriminator DI(EA(x_t)).

    Args:
        hidden_dim: width of the two hidden layers.
        negative_slope: slope of the LeakyReLU between layers.
    """

    def __init__(self, hidden_dim: int = 256, negative_slope: float = 0.2, **kwargs):
        super().__init__(**kwargs)

        # === Layers ===
        self.hidden_layers = [
            keras.layers.Dense(hidden_dim, dtype=self.dtype_policy, name=f"dense_{index}")
            for index in range(2)
        ]
        self.activation = keras.layers.LeakyReLU(negative_slope, dtype=self.dtype_policy)
        self.logit_layer = keras.layers.Dense(1, dtype=self.dtype_policy, name="logit")

        # === Config ===
        self.hidden_dim = hidden_dim
        self.negative_slope = negative_slope

    def build(self, input_shape):
        shape = tuple(input_shape)
        for layer in self.hidden_layers:
            layer.build(shape)
            shape = layer.compute_output_shape(shape)
        self.logit_layer.build(shape)
        self.built = True

    def call(self, w):
        for layer in self.hidden_layers:
            w = self.activation(layer(w))
        return self.logit_layer(w)

    def compute_output_shape(self, input_shape):
        return (*tuple(input_shape)[:-1], 1)

    def get_config(self):
        return {
            **super().get_config(),
            "hidden_dim": self.hidden_dim,
            "negative_slope": self.negative_slope,
        }
