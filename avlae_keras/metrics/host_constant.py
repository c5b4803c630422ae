"""Weight initialisation for networks whose weights always come from a checkpoint."""

from __future__ import annotations

import keras
import numpy as np


@keras.saving.register_keras_serializable(package="avlae_keras.metrics")
class HostConstant(keras.initializers.Initializer):
    """A constant made by NumPy on the host.

    Keras' own initializers run as backend ops, and JAX compiles one for every new weight shape
    (about 0.1-0.2 s each on CPU: ~20 s for I3D's many shapes) only for the values to be
    overwritten by a checkpoint.
    """

    def __init__(self, value: float = 0.0):
        self.value = float(value)

    def __call__(self, shape, dtype=None):
        dtype = keras.backend.standardize_dtype(dtype or keras.config.floatx())
        return np.full(tuple(shape), self.value, dtype=dtype)

    def get_config(self):
        return {"value": self.value}


WEIGHT_INITS = ("random", "constant")


def conv_kwargs(weight_init: str) -> dict:
    """Initializer arguments of Conv/Dense layers for `weight_init` ("random" or "constant")."""
    if weight_init == "random":
        return {}
    if weight_init == "constant":
        return {"kernel_initializer": HostConstant(0.0), "bias_initializer": HostConstant(0.0)}
    raise ValueError(f"weight_init must be one of {WEIGHT_INITS}, got {weight_init!r}")


def batch_norm_kwargs(weight_init: str) -> dict:
    """Initializer arguments of BatchNormalization for `weight_init` (identity statistics)."""
    if weight_init == "random":
        return {}
    if weight_init == "constant":
        return {
            "gamma_initializer": HostConstant(1.0),
            "beta_initializer": HostConstant(0.0),
            "moving_mean_initializer": HostConstant(0.0),
            "moving_variance_initializer": HostConstant(1.0),
        }
    raise ValueError(f"weight_init must be one of {WEIGHT_INITS}, got {weight_init!r}")
