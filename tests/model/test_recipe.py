"""The training recipe's parts: 2D-run factorized convolutions, G's options, the mapping
networks' learning-rate multiplier, minibatch stddev, Step III's constant targets and the health
statistics."""

from __future__ import annotations

import keras
import numpy as np
import pytest

from avlae_keras.backend import loss_and_gradients
from avlae_keras.logged_metrics import batch_spread, health_names, relative_reconstruction_error
from avlae_keras.monitoring import CollapseWatch
from avlae_keras.networks import MappingNetwork, VideoGenerator
from avlae_keras.networks.factorized_conv3d import FactorizedConv3D, FactorizedConv3DTranspose
from avlae_keras.networks.mapping_network import ScaledDense
from avlae_keras.networks.minibatch_stddev import append_minibatch_stddev
from tests.test_case import jitted_on_jax, run_serialization_test

CONV_CASES = [
    (keras.layers.Conv3D, FactorizedConv3D, (1, 4, 4), (1, 2, 2), "same", (2, 4, 8, 8, 3)),
    (keras.layers.Conv3D, FactorizedConv3D, (3, 1, 1), (2, 1, 1), "same", (2, 4, 8, 8, 3)),
    (keras.layers.Conv3D, FactorizedConv3D, (2, 4, 4), (1, 1, 1), "valid", (2, 2, 4, 4, 3)),
    (keras.layers.Conv3DTranspose, FactorizedConv3DTranspose, (4, 1, 1), (2, 1, 1), "same",
     (2, 4, 8, 8, 3)),
    (keras.layers.Conv3DTranspose, FactorizedConv3DTranspose, (1, 4, 4), (1, 2, 2), "same",
     (2, 4, 8, 8, 3)),
    (keras.layers.Conv3DTranspose, FactorizedConv3DTranspose, (4, 1, 1), (1, 1, 1), "valid",
     (2, 1, 1, 1, 3)),
    (keras.layers.Conv3DTranspose, FactorizedConv3DTranspose, (1, 4, 4), (1, 1, 1), "valid",
     (2, 4, 1, 1, 3)),
]  # fmt: skip


@pytest.mark.parametrize(("keras_class", "layer_class", "kernel", "strides", "padding", "shape"),
                         CONV_CASES)  # fmt: skip
def test_factorized_conv3d_computes_what_keras_conv3d_computes(
    keras_class, layer_class, kernel, strides, padding, shape
):
    options = {"filters": 5, "kernel_size": kernel, "strides": strides, "padding": padding}
    inputs = np.random.default_rng(0).standard_normal(shape).astype("float32")
    reference, layer = keras_class(**options), layer_class(**options)
    expected = keras.ops.convert_to_numpy(reference(inputs))
    layer.build(shape)
    layer.set_weights(reference.get_weights())
    assert [w.shape for w in layer.weights] == [w.shape for w in reference.weights]
    np.testing.assert_allclose(keras.ops.convert_to_numpy(layer(inputs)), expected, atol=2e-6)


@pytest.mark.parametrize("normalization", ["layer", "instance", "frame"])
@pytest.mark.parametrize("latent_injection", ["input", "every_block", "split"])
def test_generator_options(normalization, latent_injection):
    generator = VideoGenerator(
        resolution=16,
        frames=4,
        base_channels=4,
        normalization=normalization,
        normalize_each_conv=latent_injection != "input",
        use_bias=True,
        latent_injection=latent_injection,
    )
    codes = np.random.default_rng(0).standard_normal((3, 8)).astype("float32")
    videos = keras.ops.convert_to_numpy(generator(codes))
    assert videos.shape == (3, 4, 16, 16, 3) and np.all(np.abs(videos) <= 1)
    modulated = [block.modulated for block in generator.blocks]
    assert modulated == [latent_injection != "input"] * len(generator.blocks)
    run_serialization_test(generator.__class__.from_config(generator.get_config()))


def test_modulation_carries_the_code_past_the_first_block():
    """With every_block injection, changing w changes G's output even when the first block's
    output is held fixed."""
    generator = VideoGenerator(
        resolution=16, frames=4, base_channels=4, normalization="instance",
        latent_injection="every_block",
    )  # fmt: skip
    rng = np.random.default_rng(1)
    first, second = rng.standard_normal((2, 1, 8)).astype("float32")
    generator(first)
    x = generator.blocks[0](keras.ops.reshape(first, (1, 1, 1, 1, 8)), first)
    outputs = []
    for w in (first, second):
        y = x
        for block in generator.blocks[1:]:
            y = block(y, w)
        outputs.append(keras.ops.convert_to_numpy(y))
    assert np.abs(outputs[0] - outputs[1]).mean() > 1e-2


def test_scaled_dense_moves_at_its_learning_rate_multiplier():
    layer = ScaledDense(64, lr_multiplier=0.01)
    layer.build((None, 32))
    scale = 0.01 * 2**0.5 / 32**0.5
    effective = keras.ops.convert_to_numpy(layer.kernel.value) * scale
    assert effective.std() == pytest.approx(2**0.5 / 32**0.5, rel=0.1)  # He init
    inputs = np.random.default_rng(0).standard_normal((8, 32)).astype("float32")
    optimizer = keras.optimizers.Adam(1e-3)
    optimizer.build(layer.trainable_variables)

    def loss_fn():
        return keras.ops.sum(layer(inputs)), ()

    _, _, gradients = jitted_on_jax(
        lambda: loss_and_gradients(loss_fn, layer.trainable_variables)
    )()
    optimizer.apply(gradients, layer.trainable_variables)
    moved = keras.ops.convert_to_numpy(layer.kernel.value) * scale - effective
    # Adam's first step moves every parameter by the learning rate: here by lr * the multiplier
    # in the units of the weights actually used (stored weights of ~100 keep float32 rounding
    # of a few % per weight).
    np.testing.assert_allclose(np.abs(moved), 1e-3 * scale, rtol=0.1)
    assert np.abs(moved).mean() == pytest.approx(1e-3 * scale, rel=0.01)
    network = MappingNetwork(16, 16, 2, lr_multiplier=0.01, normalize_latents=True)
    outputs = network(np.full((2, 16), 3.0, "float32"))
    same = network(np.full((2, 16), 1.0, "float32"))  # the same z up to scale
    np.testing.assert_allclose(keras.ops.convert_to_numpy(outputs), same, atol=1e-5)
    run_serialization_test(network.__class__.from_config(network.get_config()))


def test_minibatch_stddev_column():
    features = np.array([[0.0, 2.0], [2.0, 4.0]], "float32")
    out = keras.ops.convert_to_numpy(append_minibatch_stddev(features))
    np.testing.assert_allclose(out[:, :2], features)
    np.testing.assert_allclose(out[:, 2], [1.0, 1.0], atol=1e-4)
    alike = keras.ops.convert_to_numpy(append_minibatch_stddev(np.ones((4, 3), "float32")))
    assert np.all(alike[:, 3] < 1e-3)
    # Groups of consecutive samples: the same column for a batch and for its halves.
    batch = np.random.default_rng(2).standard_normal((8, 5)).astype("float32")
    whole = keras.ops.convert_to_numpy(append_minibatch_stddev(batch, group_size=4))
    halves = [
        keras.ops.convert_to_numpy(append_minibatch_stddev(h, 4)) for h in (batch[:4], batch[4:])
    ]
    np.testing.assert_allclose(whole, np.concatenate(halves), rtol=1e-6)
    assert whole[0, 5] != whole[4, 5]
    with pytest.raises(ValueError, match="multiple of 4"):
        append_minibatch_stddev(batch[:6], group_size=4)


def test_health_statistics():
    rng = np.random.default_rng(0)
    videos = rng.standard_normal((16, 2, 4, 4, 3)).astype("float32")
    expected = np.std(videos, axis=0).mean()
    assert float(batch_spread(videos)) == pytest.approx(expected, rel=1e-5)
    collapsed = np.repeat(videos[:1], 16, axis=0)
    assert float(batch_spread(collapsed)) == pytest.approx(0.0, abs=1e-6)
    codes = rng.standard_normal((64, 8)).astype("float32") * 3.0
    mean_prediction = np.repeat(codes.mean(0, keepdims=True), 64, axis=0)
    assert float(relative_reconstruction_error(codes, mean_prediction)) == pytest.approx(1.0)
    assert float(relative_reconstruction_error(codes, codes)) == 0.0
    assert health_names(k1=0.0) == [n for n in health_names() if n != "motion_reconstruction_error"]


def test_collapse_watch_warns_after_patience_and_rearms():
    watch = CollapseWatch(threshold=0.2, patience=3)
    assert [watch.update(step, 0.05) for step in (10, 20)] == [None, None]
    warning = watch.update(30, 0.05)
    assert "mode collapse at step 30" in warning and "--latent_injection" in warning
    assert watch.update(40, 0.05) is None  # once per episode
    assert watch.update(50, 0.5) is None
    assert [watch.update(step, 0.1) for step in (60, 70, 80)][-1] is not None


def test_step3_targets_are_constants_when_mappings_train(make_tiny_model):
    """With step3_updates_mappings=True, FA and FM get Step III gradients only through G's
    input. If G's output ignores its input, their gradient must be exactly zero: the targets
    FA(zA), FM(zM) are constants (otherwise L_rec could fall by shrinking w)."""
    model = make_tiny_model(step3_updates_mappings=True)
    rng = np.random.default_rng(4)
    z_a, z_m = rng.standard_normal((2, 2, model.latent_dim)).astype("float32")
    frame_index = np.array([0, 1], "int32")
    mappings = (
        model.appearance_mapping.trainable_variables + model.motion_mapping.trainable_variables
    )

    def mapping_gradient_norm():
        def loss_fn():
            terms = model.latent_reconstruction_terms(z_a, z_m, frame_index)
            return sum(terms.values()), ()

        _, _, gradients = loss_and_gradients(loss_fn, mappings)
        return sum(keras.ops.sum(keras.ops.square(g)) for g in gradients)

    # A new lambda for each jit: JAX caches traces per function object.
    through_generator = float(jitted_on_jax(lambda: mapping_gradient_norm())())
    synthesize = model.synthesize
    model.synthesize = lambda w_a, w_m: keras.ops.stop_gradient(synthesize(w_a, w_m))
    try:
        through_targets_only = float(jitted_on_jax(lambda: mapping_gradient_norm())())
    finally:
        del model.synthesize
    assert through_generator > 0
    assert through_targets_only == 0.0


def test_input_gradients_are_the_gradients_of_the_summed_outputs():
    """R1's gradient on every backend: d/dx sum(x^2 * c) = 2 c x, and differentiable again."""
    from avlae_keras.backend import input_gradients

    inputs = np.random.default_rng(5).standard_normal((3, 4)).astype("float32")
    weights = np.arange(1, 5, dtype="float32")

    def fn(x):
        return keras.ops.sum(keras.ops.square(x) * weights, axis=-1, keepdims=True)

    gradients = jitted_on_jax(lambda x: input_gradients(fn, keras.ops.convert_to_tensor(x)))(inputs)
    np.testing.assert_allclose(keras.ops.convert_to_numpy(gradients), 2 * weights * inputs, 1e-5)


def test_split_injection_modulates_time_with_wm_and_space_with_wa():
    generator = VideoGenerator(
        resolution=16, frames=4, base_channels=4, normalization="instance",
        normalize_each_conv=True, latent_injection="split",
    )  # fmt: skip
    generator.build((None, 8))
    block = generator.blocks[1]
    assert block.modulations["temporal"].to_scale_and_shift.kernel.shape[0] == 4
    assert block.modulations["spatial"].to_scale_and_shift.kernel.shape[0] == 4
    with pytest.raises(ValueError, match="normalize_each_conv"):
        VideoGenerator(resolution=16, frames=4, base_channels=4, latent_injection="split")


@pytest.mark.parametrize("temporal_stride", [1, 2])
def test_replicated_end_frames_are_made_like_the_others(temporal_stride):
    """With temporal_padding="replicate" every frame of a temporal convolution is made from as
    many taps: from a video constant in time, the frames of one phase of the stride are all the
    same, the end frames too (with zeros, the end frames differ); and with zero frames in place
    of the replicas it computes what 'same' padding computes."""
    from avlae_keras.networks.video_generator import SpatioTemporalUpBlock

    blocks = {
        padding: SpatioTemporalUpBlock(6, temporal_stride=temporal_stride, temporal_padding=padding)
        for padding in ("zeros", "replicate")
    }
    shape = (2, 4, 4, 4, 5)
    for block in blocks.values():
        block.build(shape)
    blocks["replicate"].set_weights(blocks["zeros"].get_weights())
    frame = np.random.default_rng(0).standard_normal((2, 1, 4, 4, 5)).astype("float32")
    constant = np.repeat(frame, 4, axis=1)
    outputs = {
        padding: keras.ops.convert_to_numpy(block._temporal(constant))
        for padding, block in blocks.items()
    }
    assert outputs["replicate"].shape == (2, 4 * temporal_stride, 4, 4, 6)
    phase = np.arange(4 * temporal_stride) % temporal_stride
    first = {padding: output[:, phase] for padding, output in outputs.items()}
    assert np.abs(outputs["replicate"] - first["replicate"]).max() < 1e-5
    assert np.abs(outputs["zeros"] - first["zeros"]).max() > 1e-2
    replicate = blocks["replicate"]
    padded = np.pad(constant, [(0, 0), (1, 1), (0, 0), (0, 0), (0, 0)])
    with_zeros = keras.ops.convert_to_numpy(replicate.temporal_conv(padded))
    cropped = with_zeros[:, replicate._crop : replicate._crop + 4 * temporal_stride]
    np.testing.assert_allclose(cropped, outputs["zeros"], atol=1e-5)
    assert keras.ops.convert_to_numpy(replicate(constant)).shape == (
        2,
        4 * temporal_stride,
        8,
        8,
        6,
    )


def test_initial_frames_set_where_frames_are_made():
    doubling = VideoGenerator(resolution=16, frames=8, base_channels=4, initial_frames=4)
    direct = VideoGenerator(resolution=16, frames=8, base_channels=4, temporal_padding="replicate")
    assert [b.temporal_stride for b in doubling.blocks] == [1, 2, 1]
    assert [b.temporal_stride for b in direct.blocks] == [1, 1, 1]
    direct.build((None, 8))
    assert direct.blocks[0].temporal_conv.kernel.shape[0] == 8
    codes = np.random.default_rng(0).standard_normal((2, 8)).astype("float32")
    assert keras.ops.convert_to_numpy(direct(codes)).shape == (2, 8, 16, 16, 3)
    run_serialization_test(direct.__class__.from_config(direct.get_config()))
    for bad in (3, 16):
        with pytest.raises(ValueError, match="initial_frames"):
            VideoGenerator(resolution=16, frames=8, base_channels=4, initial_frames=bad)


def test_runs_saved_before_initial_frames_existed_keep_four():
    from avlae_keras import AVLAE
    from avlae_keras.config import TrainConfig

    stored = {
        k: v for k, v in TrainConfig(frames=8).to_dict().items() if k != "generator_initial_frames"
    }
    assert TrainConfig.from_dict(stored).generator_initial_frames == 4
    assert (
        TrainConfig.from_dict({**stored, "generator_initial_frames": None}).generator_initial_frames
        is None
    )
    config = AVLAE(
        resolution=16,
        frames=8,
        latent_dim=8,
        base_channels=4,
        flow_estimator=None,
        k1=0.0,
        use_motion_encoder=False,
    ).get_config()
    assert config["generator_initial_frames"] is None
    del config["generator_initial_frames"]
    assert AVLAE.from_config(config).video_generator.initial_frames == 4


def test_frame_normalization_gives_every_frame_the_same_strength():
    from avlae_keras.networks.video_generator import FrameNormalization

    rng = np.random.default_rng(3)
    videos = rng.standard_normal((2, 4, 5, 5, 3)).astype("float32")
    videos *= np.array([0.1, 1.0, 10.0, 3.0], "float32")[
        None, :, None, None, None
    ]  # a fading frame
    normalized = keras.ops.convert_to_numpy(FrameNormalization()(videos))
    np.testing.assert_allclose(normalized.mean(axis=(2, 3)), 0.0, atol=1e-5)
    np.testing.assert_allclose(normalized.std(axis=(2, 3)), 1.0, rtol=1e-3)
    run_serialization_test(FrameNormalization(epsilon=1e-3))


@pytest.mark.parametrize("normalization", ["instance", "frame"])
def test_every_generator_weight_gets_a_gradient_and_initial_frames_differ(normalization):
    """Frame normalisation of G's first temporal convolution (at 1 x 1) once zeroed its output:
    every initial frame was the same and that convolution never learned."""
    generator = VideoGenerator(
        resolution=16,
        frames=4,
        base_channels=4,
        normalization=normalization,
        normalize_each_conv=True,
        latent_injection="split",
    )
    w_video = np.random.default_rng(0).standard_normal((2, 16)).astype("float32")
    generator.build(w_video.shape)
    first_block = generator.blocks[0]
    temporal = first_block._temporal(keras.ops.reshape(w_video, (-1, 1, 1, 1, 16)))
    initial = keras.ops.convert_to_numpy(first_block._normalize(temporal, "temporal", w_video))
    assert np.abs(initial - initial[:, :1]).max() > 1e-2
    target = np.random.default_rng(1).standard_normal((2, 4, 16, 16, 3)).astype("float32")

    def loss_fn():
        return keras.ops.sum(generator(w_video) * target), ()

    variables = generator.trainable_variables
    _, _, gradients = jitted_on_jax(lambda: loss_and_gradients(loss_fn, variables))()
    for variable, gradient in zip(variables, gradients, strict=True):
        assert np.abs(keras.ops.convert_to_numpy(gradient)).max() > 0, variable.path
