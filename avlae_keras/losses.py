"""AVLAE's loss terms (paper eqs. 8-10), written once with `keras.ops` for every backend.

The adversarial terms use the non-saturating logistic form: log D(x) and log(1 - D(x)) of the
paper are read as -softplus(-logit) and -softplus(logit). Everything is computed in float32.
"""

from __future__ import annotations

from keras import ops


def _as_float32(x):
    return ops.cast(x, "float32")


def real_logistic_loss(real_logits):
    """Discriminator term on real samples: E[softplus(-D(x))] = -E[log sigmoid(D(x))]."""
    return ops.mean(ops.softplus(-_as_float32(real_logits)))


def fake_logistic_loss(fake_logits):
    """Discriminator term on generated samples: E[softplus(D(x_hat))] = -E[log(1 - sigmoid)]."""
    return ops.mean(ops.softplus(_as_float32(fake_logits)))


def generator_logistic_loss(fake_logits):
    """Non-saturating generator term: E[softplus(-D(x_hat))]."""
    return ops.mean(ops.softplus(-_as_float32(fake_logits)))


def latent_reconstruction_loss(target_codes, encoded_codes):
    """Squared error between the mapped codes w and the encoded codes w' (eq. 10), averaged over
    the batch and the code dimensions as ALAE does."""
    return ops.mean(ops.square(_as_float32(target_codes) - _as_float32(encoded_codes)))


def r1_penalty(input_gradients, gamma: float):
    """R1 (Mescheder et al. 2018): gamma / 2 * E[||grad_x D(x)||^2] on real inputs, the squared
    norm summed over every input dimension."""
    gradients = _as_float32(input_gradients)
    squared_norm = ops.sum(ops.reshape(ops.square(gradients), (ops.shape(gradients)[0], -1)), -1)
    return 0.5 * gamma * ops.mean(squared_norm)
