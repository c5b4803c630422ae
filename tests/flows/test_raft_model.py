"""RAFT as a Keras model: shapes, small inputs, gradients, compilation, freezing, saving."""

import math

import keras
import numpy as np
import pytest

from flows import RAFT
from flows.transforms import jit, value_and_input_gradients
from tests.test_case import (
    eager_on_tensorflow,
    jitted_on_jax,
    run_saving_test,
    run_serialization_test,
)


@pytest.fixture(scope="module")
def small_raft():
    """Run the quickest way for these tiny inputs (tests/test_case.py); the compiled
    `compute_flow` is checked against op by op by the tests that say so."""
    keras.utils.set_random_seed(0)
    return eager_on_tensorflow(RAFT(variant="small", iters=2))


def image_pair(height, width, batch=1, shift=2, seed=0):
    rng = np.random.default_rng(seed)
    image1 = rng.uniform(0, 255, (batch, height, width, 3)).astype("float32")
    return image1, np.roll(image1, shift, axis=2)


@pytest.mark.parametrize("height,width", [(64, 64), (60, 100), (13, 21)])
def test_output_shapes(small_raft, height, width):
    image1, image2 = image_pair(height, width, batch=2)
    flow_low, flow_up = small_raft.compute_flow(image1, image2)
    assert flow_low.shape == (2, math.ceil(height / 8), math.ceil(width / 8), 2)
    assert flow_up.shape == (2, height, width, 2)
    outputs = jitted_on_jax(lambda a, b: small_raft({"image1": a, "image2": b}))(image1, image2)
    np.testing.assert_allclose(np.asarray(outputs["flow_up"]), np.asarray(flow_up), atol=1e-4)
    assert small_raft.compute_output_shape({"image1": image1.shape})["flow_up"] == flow_up.shape


@pytest.mark.parametrize("variant", ["large", "small"])
@pytest.mark.parametrize("height,width", [(64, 64), (60, 100)])
def test_small_inputs_have_finite_flow_and_gradients(variant, height, width):
    """The original returns NaN under 128 px (a 1-pixel pyramid level); the port must not."""
    keras.utils.set_random_seed(1)
    model = eager_on_tensorflow(RAFT(variant=variant, iters=3))
    image1, image2 = image_pair(height, width)

    def loss(a, b):
        _, flow_up = model.compute_flow(a, b)
        return keras.ops.sum(keras.ops.square(flow_up))

    gradient_fn = jitted_on_jax(value_and_input_gradients(loss, argnums=(0, 1)))
    value, (grad1, grad2) = gradient_fn(image1, image2)
    assert np.isfinite(float(value))
    for grad in (np.asarray(grad1), np.asarray(grad2)):
        assert np.all(np.isfinite(grad))
        assert np.abs(grad).max() > 0


def test_jit_matches_eager(small_raft):
    """`flows.jit` of `compute_flow` against `compute_flow` op by op on TensorFlow, compiled on
    its own on JAX."""
    image1, image2 = image_pair(40, 48)
    eager = small_raft.compute_flow(image1, image2)
    compiled = jit(lambda a, b: small_raft.compute_flow(a, b))(image1, image2)
    for e, c in zip(eager, compiled, strict=True):
        np.testing.assert_allclose(np.asarray(c), np.asarray(e), atol=1e-4)


def test_frozen_by_default():
    model = RAFT(variant="large", iters=1)
    assert not model.trainable_weights
    statistics = [np.asarray(w) for w in model.non_trainable_weights if "moving" in w.path]
    assert statistics, "the large context encoder has BatchNorm statistics"
    image1, image2 = image_pair(32, 32, batch=2)
    model({"image1": image1, "image2": image2}, training=True)
    after = [np.asarray(w) for w in model.non_trainable_weights if "moving" in w.path]
    for before, now in zip(statistics, after, strict=True):
        np.testing.assert_array_equal(before, now)
    assert RAFT(variant="small", trainable=True).trainable_weights


def test_identical_images_give_near_zero_flow_with_real_weights():
    from tests.conftest import shared_file

    model = RAFT.from_checkpoint(shared_file("weights/raft/raft-small.pth"))
    image, _ = image_pair(64, 64)
    _, flow_up = model.compute_flow(image, image, iters=6)
    assert np.abs(np.asarray(flow_up)).max() < 0.5


def test_padding_modes_differ_only_for_unaligned_heights(small_raft):
    kitti = eager_on_tensorflow(
        RAFT.from_config({**small_raft.get_config(), "padding_mode": "kitti"})
    )
    kitti.set_weights(small_raft.get_weights())
    aligned = image_pair(32, 40)
    np.testing.assert_allclose(
        np.asarray(kitti.compute_flow(*aligned)[1]),
        np.asarray(small_raft.compute_flow(*aligned)[1]),
        atol=1e-5,
    )
    unaligned = image_pair(36, 40)
    difference = np.asarray(kitti.compute_flow(*unaligned)[1]) - np.asarray(
        small_raft.compute_flow(*unaligned)[1]
    )
    assert np.abs(difference).max() > 0


def test_flow_init_warm_start(small_raft):
    image1, image2 = image_pair(32, 32)
    flow_low, _ = small_raft.compute_flow(image1, image2, iters=1)
    continued, _ = small_raft.compute_flow(image1, image2, iters=1, flow_init=flow_low)
    two_steps, _ = small_raft.compute_flow(image1, image2, iters=2)
    # Warm start re-initialises the hidden state, so it differs from two uninterrupted steps.
    assert continued.shape == two_steps.shape
    assert np.all(np.isfinite(np.asarray(continued)))


def test_bad_inputs_raise_clear_errors(small_raft):
    image1, _ = image_pair(32, 32)
    with pytest.raises(ValueError, match=r"\(B, H, W, 3\)"):
        small_raft.compute_flow(image1[..., :1], image1[..., :1])
    with pytest.raises(ValueError, match="same shape"):
        small_raft.compute_flow(image1, image_pair(32, 40)[0])
    with pytest.raises(ValueError, match="Unknown RAFT variant"):
        RAFT(variant="huge")
    with pytest.raises(ValueError, match="padding_mode"):
        RAFT(padding_mode="middle")


def test_stays_float32_under_mixed_precision():
    keras.config.set_dtype_policy("mixed_bfloat16")
    try:
        model = RAFT(variant="small", iters=1)
        assert model.compute_dtype == "float32"
        flow_low, _ = model.compute_flow(*image_pair(32, 32))
        assert keras.backend.standardize_dtype(flow_low.dtype) == "float32"
    finally:
        keras.config.set_dtype_policy("float32")


def test_serialization(small_raft):
    run_serialization_test(small_raft)


def test_keras_saving(small_raft, tmp_path):
    images = image_pair(24, 32)
    inputs = dict(zip(("image1", "image2"), images, strict=True))

    def call(model):
        return jitted_on_jax(lambda a, b: model({"image1": a, "image2": b}))(*images)

    run_saving_test(small_raft, inputs, tmp_path, call=call)


def test_every_sub_layer_variable_is_frozen():
    model = RAFT(variant="large", iters=1)
    assert all(not v.trainable for v in model.variables)
    assert all(not layer.trainable for layer in model._flatten_layers(include_self=False))


def test_compute_flow_compiles_once_and_follows_the_weights():
    keras.utils.set_random_seed(1)
    raft = RAFT(variant="small", iters=2)
    image1, image2 = image_pair(24, 32)
    compiled = [np.asarray(x) for x in raft.compute_flow(image1, image2)]
    assert list(raft._compiled_flow) == [(2, True)]
    raft.compute_flow(image1[:, ::-1], image2)  # same shape and iterations: reused
    assert len(raft._compiled_flow) == 1
    raft.run_eagerly = True
    eager = [np.asarray(x) for x in raft.compute_flow(image1, image2)]
    for a, b in zip(compiled, eager, strict=True):
        np.testing.assert_allclose(a, b, atol=1e-4)
    raft.run_eagerly = False
    kernel = raft.update_block.weights[0]
    kernel.assign(kernel * 0.5)  # new weights reach the compiled program
    eager_now = None
    raft.run_eagerly = True
    eager_now = np.asarray(raft.compute_flow(image1, image2)[1])
    raft.run_eagerly = False
    np.testing.assert_allclose(
        np.asarray(raft.compute_flow(image1, image2)[1]), eager_now, atol=1e-4
    )
    assert not np.allclose(eager_now, eager[1])


def test_compute_flow_sequence_matches_pairs(small_raft):
    """Each frame feature-encoded once gives the flows of the pairs computed one by one."""
    frames = np.random.default_rng(3).uniform(0, 255, (2, 3, 16, 24, 3)).astype("float32")
    flow_low, flow_up = small_raft.compute_flow_sequence(frames, iters=1)
    assert tuple(flow_low.shape) == (2, 2, 2, 3, 2) and tuple(flow_up.shape) == (2, 2, 16, 24, 2)
    first, second = frames[:, :-1].reshape(-1, 16, 24, 3), frames[:, 1:].reshape(-1, 16, 24, 3)
    pairwise = small_raft.compute_flow(first, second, iters=1)
    for sequence, pairs in zip((flow_low, flow_up), pairwise, strict=True):
        np.testing.assert_allclose(
            np.reshape(np.asarray(sequence), pairs.shape), np.asarray(pairs), atol=1e-4
        )
