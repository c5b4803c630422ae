"""R1 against central finite differences on every backend: `backend.input_gradients` (the
gradient R1 squares), `losses.r1_penalty` built on it, its own gradient with respect to the
discriminator's weights (what Step I descends), and the R1 terms of the model's Step I."""

from __future__ import annotations

import keras
import numpy as np
import pytest

from avlae_keras import losses
from avlae_keras.backend import input_gradients, loss_and_gradients
from avlae_keras.model import select_frames
from tests.model.conftest import tiny_videos
from tests.test_case import jitted_on_jax

GAMMA = 10.0
SHAPE = (2, 4, 4, 2)


@pytest.fixture
def tiny_discriminator():
    """Conv -> tanh -> Dense(tanh) -> Dense(1): smooth, so central differences are accurate
    in float32 (a ReLU kink inside the stencil would spoil them)."""
    init = keras.initializers.GlorotUniform
    network = keras.Sequential(
        [
            keras.Input(SHAPE[1:]),
            keras.layers.Conv2D(3, 3, activation="tanh", kernel_initializer=init(seed=1)),
            keras.layers.Flatten(),
            keras.layers.Dense(4, activation="tanh", kernel_initializer=init(seed=2)),
            keras.layers.Dense(1, kernel_initializer=init(seed=3), bias_initializer="ones"),
        ]
    )
    inputs = np.random.default_rng(4).uniform(-1, 1, SHAPE).astype("float32")
    return network, inputs


def _numpy(x) -> np.ndarray:
    return np.asarray(keras.ops.convert_to_numpy(x), np.float64)


def _per_sample_logits(network, samples: np.ndarray) -> np.ndarray:
    return _numpy(network(samples))[:, 0]


def test_input_gradients_match_central_differences(tiny_discriminator):
    network, inputs = tiny_discriminator
    gradients = _numpy(
        jitted_on_jax(lambda x: input_gradients(network, keras.ops.convert_to_tensor(x)))(inputs)
    )
    assert gradients.shape == SHAPE

    # Every input entry of every sample moved by +-h, all in one batch (the network has no
    # batch statistic, so sum(D(x)) changes only through the moved sample).
    h, size = 1e-2, int(np.prod(SHAPE[1:]))
    steps = np.eye(size, dtype=np.float32).reshape((size, *SHAPE[1:])) * h
    plus = (inputs[:, None] + steps[None]).reshape((-1, *SHAPE[1:]))
    minus = (inputs[:, None] - steps[None]).reshape((-1, *SHAPE[1:]))
    differences = (_per_sample_logits(network, plus) - _per_sample_logits(network, minus)) / (2 * h)
    differences = differences.reshape(SHAPE)
    scale = np.abs(differences).max()
    assert scale > 1e-2  # a meaningful gradient, not a dead network
    np.testing.assert_allclose(gradients, differences, rtol=1e-2, atol=2e-3 * scale)

    penalty = float(_numpy(losses.r1_penalty(gradients.astype("float32"), GAMMA)))
    expected = 0.5 * GAMMA * np.mean(np.sum(np.square(differences), axis=(1, 2, 3)))
    assert penalty == pytest.approx(expected, rel=1e-2)


def test_r1_gradient_wrt_weights_matches_central_differences(tiny_discriminator):
    """Double backpropagation: d R1 / d weights through `loss_and_gradients`, as Step I takes
    it, against differences of the R1 value itself (each value an `input_gradients` call)."""
    network, inputs = tiny_discriminator
    variables = network.trainable_variables

    def r1_value():
        return losses.r1_penalty(
            input_gradients(network, keras.ops.convert_to_tensor(inputs)), GAMMA
        )

    _, _, gradients = jitted_on_jax(
        lambda: loss_and_gradients(lambda: (r1_value(), ()), variables)
    )()
    gradients = [_numpy(g) for g in gradients]

    r1_of_weights = jitted_on_jax(
        lambda weights: losses.r1_penalty(
            input_gradients(
                lambda x: network.stateless_call(weights, [], x)[0],
                keras.ops.convert_to_tensor(inputs),
            ),
            GAMMA,
        )
    )

    def r1_at(values) -> float:
        return float(_numpy(r1_of_weights(values)))

    base = [_numpy(v.value).astype("float32") for v in variables]
    assert r1_at(base) == pytest.approx(float(_numpy(jitted_on_jax(r1_value)())), rel=1e-5)
    rng = np.random.default_rng(0)
    h = 1e-2
    checked = 0
    for index, value in enumerate(base):
        for flat in rng.choice(value.size, size=min(4, value.size), replace=False):
            position = np.unravel_index(flat, value.shape)
            shifted = []
            for sign in (1, -1):
                values = [v.copy() for v in base]
                values[index][position] += sign * h
                shifted.append(r1_at(values))
            difference = (shifted[0] - shifted[1]) / (2 * h)
            analytic = gradients[index][position]
            scale = max(np.abs(g).max() for g in gradients)
            assert analytic == pytest.approx(difference, rel=2e-2, abs=2e-3 * scale), (
                variables[index].path,
                position,
            )
            checked += 1
    assert checked >= 12
    assert max(np.abs(g).max() for g in gradients[:2]) > 0  # reaches the first layer


@pytest.fixture(scope="module")
def r1_model(make_tiny_model):
    return make_tiny_model(r1_gamma=GAMMA)


def _directional_check(score, inputs, gradients, penalty, rng):
    """sum(D) moved along a direction u by +-h changes by 2h <grad, u>: along the gradient's
    own direction that is ||grad||, which fixes R1 = gamma / 2 * ||grad||^2 / batch."""
    norm = np.sqrt(np.sum(np.square(gradients)))
    assert norm > 0
    along_gradient = gradients / norm
    # A second direction, random but with a component along the gradient so that the expected
    # change is not lost in float32 noise.
    random = rng.standard_normal(inputs.shape)
    mixed = along_gradient + random / np.sqrt(np.sum(np.square(random)))
    # h: small enough for the leaky-ReLU kinks of the real networks, large for float32 rounding.
    h = 3e-3
    for direction in (along_gradient, mixed / np.sqrt(np.sum(np.square(mixed)))):
        step = (h * direction).astype("float32")
        difference = (score(inputs + step) - score(inputs - step)) / (2 * h)
        assert difference == pytest.approx(np.sum(gradients * direction), rel=1e-2, abs=1e-3 * norm)
        if direction is along_gradient:
            batch = inputs.shape[0]
            assert penalty == pytest.approx(0.5 * GAMMA * difference**2 / batch, rel=2e-2)


def test_model_r1_terms_match_finite_differences(r1_model):
    """The R1 terms of Step I: DV(., EM(x)) on the real videos with the motion code held, DI(EA)
    on the real frames; each against differences of the discriminator's summed logits."""
    model = r1_model
    videos = tiny_videos(2, seed=9)
    fake = tiny_videos(2, seed=10)
    real_index, fake_index = np.array([1, 3], "int32"), np.array([0, 2], "int32")

    def evaluate(x):
        x = keras.ops.convert_to_tensor(x)
        motion = model.motion_encoder(x)
        frames = select_frames(x, real_index)
        terms = model.discriminator_loss_terms(x, fake, real_index, fake_index)
        return (
            terms,
            motion,
            frames,
            input_gradients(lambda v: model._score_videos(v, motion), x),
            input_gradients(model._image_logits, frames),
        )

    terms, motion, frames, video_grads, image_grads = jitted_on_jax(evaluate)(videos)
    motion, frames = _numpy(motion).astype("float32"), _numpy(frames).astype("float32")
    video_grads, image_grads = _numpy(video_grads), _numpy(image_grads)
    video_penalty = float(_numpy(terms["video_r1_penalty"]))
    image_penalty = float(_numpy(terms["image_r1_penalty"]))
    assert video_penalty == pytest.approx(
        float(_numpy(losses.r1_penalty(video_grads.astype("float32"), GAMMA))), rel=1e-3
    )

    score_video = jitted_on_jax(lambda v: keras.ops.sum(model._score_videos(v, motion)))
    score_image = jitted_on_jax(lambda f: keras.ops.sum(model._image_logits(f)))
    rng = np.random.default_rng(1)
    _directional_check(
        lambda v: float(_numpy(score_video(v))), videos, video_grads, video_penalty, rng
    )
    _directional_check(
        lambda f: float(_numpy(score_image(f))), frames, image_grads, image_penalty, rng
    )
