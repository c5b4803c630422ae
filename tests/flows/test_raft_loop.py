"""RAFT's refinement loop: `flows.transforms.repeat`, and the looped model against the unrolled."""

import keras
import numpy as np
import pytest

from flows import RAFT
from flows.transforms import jit, repeat, value_and_input_gradients


def test_repeat_matches_python_loop_with_history():
    def step(state):
        x, y = state
        return x * 2.0, y + x

    start = (np.ones((2, 3), "float32"), np.zeros((2, 3), "float32"))
    for unroll in (False, True):
        (x, y), (xs, ys) = repeat(step, start, 4, unroll=unroll, history=True)
        np.testing.assert_allclose(np.asarray(x), 16.0)
        np.testing.assert_allclose(np.asarray(y), 15.0)
        assert tuple(xs.shape) == (4, 2, 3)
        np.testing.assert_allclose(np.asarray(ys)[:, 0, 0], [1.0, 3.0, 7.0, 15.0])
    with pytest.raises(ValueError, match="at least 1"):
        repeat(step, start, 0)


def test_repeat_is_differentiable_inside_xla():
    def loss(a):
        (x,) = repeat(lambda s: (keras.ops.sin(s[0]) * 1.5,), (a,), 3)
        return keras.ops.sum(x)

    a = np.linspace(-0.5, 1.0, 5).astype("float32")
    value, (grad,) = jit(value_and_input_gradients(loss))(a)
    expected = a.astype("float64")
    derivative = np.ones_like(expected)
    for _ in range(3):
        derivative = derivative * 1.5 * np.cos(expected)
        expected = 1.5 * np.sin(expected)
    np.testing.assert_allclose(float(value), expected.sum(), rtol=1e-5)
    np.testing.assert_allclose(np.asarray(grad), derivative, rtol=1e-4, atol=1e-6)


def test_looped_model_matches_unrolled_values_and_input_gradients():
    keras.utils.set_random_seed(3)
    looped = RAFT(variant="large", iters=3)
    assert looped.get_config()["unroll"] is False
    unrolled = RAFT.from_config({**looped.get_config(), "unroll": True})
    unrolled.set_weights(looped.get_weights())
    rng = np.random.default_rng(0)
    image1 = rng.uniform(0, 255, (1, 40, 48, 3)).astype("float32")
    image2 = np.roll(image1, 2, axis=2)

    def gradients(model):
        def loss(a, b):
            return keras.ops.sum(keras.ops.square(model.compute_flow(a, b)[1]))

        return jit(value_and_input_gradients(loss, argnums=(0, 1)))(image1, image2)

    (value_l, grads_l), (value_u, grads_u) = gradients(looped), gradients(unrolled)
    np.testing.assert_allclose(float(value_l), float(value_u), rtol=1e-4)
    for g_l, g_u in zip(grads_l, grads_u, strict=True):
        g_l, g_u = np.asarray(g_l), np.asarray(g_u)
        assert np.abs(g_l).max() > 0
        np.testing.assert_allclose(g_l, g_u, atol=1e-4 * np.abs(g_u).max())
