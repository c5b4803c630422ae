"""DI: the discriminator on appearance codes wA' = EA(x_t) (3 Dense layers)."""

from __future__ import annotations

import keras

from avlae_keras.networks.minibatch_stddev import append_minibatch_stddev


@keras.saving.register_keras_serializable(package="avlae_keras")
class ImageLatentDiscriminator(keras.layers.Layer):
    """Three Dense layers with LeakyReLU(0.2) between them, (B, latent_dim) -> (B, 1) logits.

    Together with the appearance encoder EA it forms the image discriminator DI(EA(x_t)).

    Args:
        hidden_dim: width of the two hidden layers.
        negative_slope: slope of the LeakyReLU between layers.
        minibatch_stddev: append the batch's standard deviation of the codes to each code
            (`append_minibatch_stddev`).
    """

    def __init__(
        self,
        hidden_dim: int = 256,
        negative_slope: float = 0.2,
        minibatch_stddev_group: int = 0,
        **kwargs,
    ):
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
        self.minibatch_stddev_group = minibatch_stddev_group

    def build(self, input_shape):
        shape = (*tuple(input_shape)[:-1], input_shape[-1] + int(self.minibatch_stddev_group > 0))
        for layer in self.hidden_layers:
            layer.build(shape)
            shape = layer.compute_output_shape(shape)
        self.logit_layer.build(shape)
        self.built = True

    def call(self, w):
        if self.minibatch_stddev_group:
            w = append_minibatch_stddev(w, self.minibatch_stddev_group)
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
            "minibatch_stddev_group": self.minibatch_stddev_group,
        }
