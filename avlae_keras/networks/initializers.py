"""Weight initialisation of the networks without normalisation layers (EA, EM*, DV)."""

from __future__ import annotations

import keras


def leaky_relu_initializer(negative_slope: float = 0.2) -> keras.initializers.Initializer:
    """He initialisation for a convolution followed by LeakyReLU(`negative_slope`).

    G3AN initialises with N(0, 0.02), which relies on BatchNorm (its G) or spectral norm (its
    discriminators). Without either, N(0, 0.02) shrinks activations several times per layer and
    EA, EM* and DV start blind to their input (outputs varying by ~1e-5 across inputs), so the
    discriminators cannot learn; a fan-in scaled init keeps the activations' scale.
    """
    return keras.initializers.VarianceScaling(
        scale=2.0 / (1.0 + negative_slope**2), mode="fan_in", distribution="untruncated_normal"
    )


def linear_initializer() -> keras.initializers.Initializer:
    """Fan-in scaled init for a layer with no activation after it (e.g. EA's code layer)."""
    return keras.initializers.VarianceScaling(
        scale=1.0, mode="fan_in", distribution="untruncated_normal"
    )
