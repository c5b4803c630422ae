"""Every loss of `avlae_keras.losses` against values worked out by hand with NumPy, on each
backend: a flipped sign, swapped real/fake or a missing factor changes one of these numbers."""

from __future__ import annotations

import keras
import numpy as np
import pytest

from avlae_keras import losses

LOGITS = np.array([[-3.0], [-0.5], [0.0], [2.0]], "float32")


def _softplus(x):
    return np.log1p(np.exp(np.asarray(x, np.float64)))


def _value(tensor) -> float:
    return float(keras.ops.convert_to_numpy(tensor))


def test_softplus_terms_at_zero_logits_are_log_2():
    zero = np.zeros((3, 1), "float32")
    for loss in (losses.real_logistic_loss, losses.fake_logistic_loss):
        assert _value(loss(zero)) == pytest.approx(np.log(2.0), rel=1e-6)
    assert _value(losses.generator_logistic_loss(zero)) == pytest.approx(np.log(2.0), rel=1e-6)


def test_real_logistic_loss_is_minus_log_sigmoid_of_real_logits():
    expected = np.mean(-np.log(1 / (1 + np.exp(-LOGITS.astype(np.float64)))))
    assert _value(losses.real_logistic_loss(LOGITS)) == pytest.approx(expected, rel=1e-6)
    assert expected == pytest.approx(np.mean(_softplus(-LOGITS)), rel=1e-12)
    # Hand value: (softplus(3) + softplus(0.5) + log 2 + softplus(-2)) / 4.
    assert _value(losses.real_logistic_loss(LOGITS)) == pytest.approx(1.2106849, rel=1e-6)


def test_fake_logistic_loss_is_minus_log_one_minus_sigmoid_of_fake_logits():
    expected = np.mean(-np.log(1 - 1 / (1 + np.exp(-LOGITS.astype(np.float64)))))
    assert _value(losses.fake_logistic_loss(LOGITS)) == pytest.approx(expected, rel=1e-6)
    assert _value(losses.fake_logistic_loss(LOGITS)) == pytest.approx(0.8356849, rel=1e-6)


def test_real_and_fake_terms_reward_the_right_side():
    confident_real = np.full((2, 1), 4.0, "float32")
    # A discriminator saying "real" (large logit) has a small real loss and a large fake loss.
    assert _value(losses.real_logistic_loss(confident_real)) == pytest.approx(
        _softplus(-4.0), rel=1e-5
    )
    assert _value(losses.fake_logistic_loss(confident_real)) == pytest.approx(
        _softplus(4.0), rel=1e-6
    )
    # softplus(x) - softplus(-x) = x: the two terms differ by the mean logit.
    difference = _value(losses.fake_logistic_loss(LOGITS)) - _value(
        losses.real_logistic_loss(LOGITS)
    )
    assert difference == pytest.approx(float(np.mean(LOGITS)), abs=1e-6)


def test_generator_loss_is_non_saturating():
    """E[softplus(-D(G(z)))]: the real-side form on fake logits, not -E[softplus(D(G(z)))]."""
    fake_logits = np.array([[-5.0], [1.0]], "float32")
    value = _value(losses.generator_logistic_loss(fake_logits))
    assert value == pytest.approx(np.mean(_softplus(-fake_logits)), rel=1e-6)
    assert value == pytest.approx((5.006715348 + 0.313261687) / 2, rel=1e-6)
    # Its gradient stays large where D rejects the fakes (the non-saturating property):
    # d/dl softplus(-l) = -sigmoid(-l), so -sigmoid(5)/2 at the first logit.
    gradient = _logit_gradient(losses.generator_logistic_loss, fake_logits)
    expected = -1 / (1 + np.exp(fake_logits.astype(np.float64))) / len(fake_logits)
    np.testing.assert_allclose(gradient, expected, rtol=1e-5)
    assert gradient[0, 0] < -0.49


def _logit_gradient(loss, logits):
    from avlae_keras.backend import input_gradients

    return keras.ops.convert_to_numpy(input_gradients(loss, keras.ops.convert_to_tensor(logits)))


def test_discriminator_gradients_push_real_up_and_fake_down():
    real = _logit_gradient(losses.real_logistic_loss, LOGITS)
    fake = _logit_gradient(losses.fake_logistic_loss, LOGITS)
    sigmoid = 1 / (1 + np.exp(-LOGITS.astype(np.float64)))
    np.testing.assert_allclose(real, -(1 - sigmoid) / len(LOGITS), rtol=1e-5)
    np.testing.assert_allclose(fake, sigmoid / len(LOGITS), rtol=1e-5)
    assert np.all(real < 0) and np.all(fake > 0)


def test_losses_average_over_every_logit_and_compute_in_float32():
    logits = np.array([[1.0, -1.0], [0.5, 2.0]], "float16")
    value = losses.real_logistic_loss(logits)
    assert keras.backend.standardize_dtype(value.dtype) == "float32"
    assert tuple(value.shape) == ()
    assert _value(value) == pytest.approx(np.mean(_softplus(-logits.astype(np.float64))), 1e-3)


def test_latent_reconstruction_loss_is_the_mean_squared_error():
    target = np.array([[1.0, 2.0, 3.0], [0.0, -1.0, 0.5]], "float32")
    encoded = np.array([[1.5, 2.0, 1.0], [1.0, -1.0, 0.5]], "float32")
    # Squared errors 0.25, 0, 4, 1, 0, 0 over 6 entries.
    value = _value(losses.latent_reconstruction_loss(target, encoded))
    assert value == pytest.approx(5.25 / 6, rel=1e-6)
    assert _value(losses.latent_reconstruction_loss(encoded, target)) == pytest.approx(5.25 / 6)
    assert _value(losses.latent_reconstruction_loss(target, target)) == 0.0
    # The mean, not the sum: doubling the batch with a copy leaves it unchanged.
    doubled = losses.latent_reconstruction_loss(
        np.concatenate([target, target]), np.concatenate([encoded, encoded])
    )
    assert _value(doubled) == pytest.approx(5.25 / 6, rel=1e-6)
    assert (
        keras.backend.standardize_dtype(
            losses.latent_reconstruction_loss(target.astype("float16"), encoded).dtype
        )
        == "float32"
    )


def test_r1_penalty_is_half_gamma_times_mean_squared_gradient_norm():
    gradients = np.zeros((2, 2, 3, 1), "float32")
    gradients[0, 0, 0, 0], gradients[0, 1, 2, 0] = 3.0, 4.0  # squared norm 25
    gradients[1] = 1.0  # squared norm 6
    expected = 0.5 * 10.0 * (25.0 + 6.0) / 2  # 77.5
    assert _value(losses.r1_penalty(gradients, gamma=10.0)) == pytest.approx(expected, rel=1e-6)
    assert _value(losses.r1_penalty(gradients, gamma=1.0)) == pytest.approx(7.75, rel=1e-6)
    assert _value(losses.r1_penalty(-gradients, gamma=1.0)) == pytest.approx(7.75, rel=1e-6)
    assert _value(losses.r1_penalty(np.zeros((3, 5), "float32"), gamma=10.0)) == 0.0
    video_gradients = np.full((2, 4, 2, 2, 3), 0.5, "float32")  # 48 entries of 0.25 per sample
    assert _value(losses.r1_penalty(video_gradients, gamma=2.0)) == pytest.approx(12.0, rel=1e-6)
