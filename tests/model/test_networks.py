"""Shapes, dtypes and configs of the seven AVLAE networks."""

from __future__ import annotations

import keras
import numpy as np
import pytest

from avlae_keras.networks import (
    AppearanceEncoder,
    FlowSequenceEncoder,
    ImageLatentDiscriminator,
    MappingNetwork,
    MotionEncoder,
    VideoDiscriminator,
    VideoGenerator,
)
from tests.test_case import run_serialization_test


def test_mapping_network_is_five_dense_layers():
    network = MappingNetwork(latent_dim=16, hidden_dim=32, num_layers=5)
    w = network(np.zeros((3, 16), "float32"))
    assert tuple(w.shape) == (3, 16)
    assert len(network.dense_layers) == 5
    assert len(network.trainable_variables) == 10
    run_serialization_test(network.__class__.from_config(network.get_config()))


def test_image_latent_discriminator_is_three_dense_layers():
    network = ImageLatentDiscriminator(hidden_dim=8)
    logits = network(np.zeros((3, 16), "float32"))
    assert tuple(logits.shape) == (3, 1)
    assert len(network.trainable_variables) == 6
    run_serialization_test(network.__class__.from_config(network.get_config()))


def test_video_generator_shapes_and_range():
    generator = VideoGenerator(resolution=32, frames=4, base_channels=4)
    codes = np.random.default_rng(0).standard_normal((2, 32)).astype("float32")
    videos = keras.ops.convert_to_numpy(generator(codes))
    assert videos.shape == (2, 4, 32, 32, 3)
    assert videos.dtype == np.float32
    assert np.all(np.abs(videos) <= 1.0)
    run_serialization_test(generator.__class__.from_config(generator.get_config()))


@pytest.mark.parametrize(("resolution", "frames"), [(16, 8), (64, 16)])
def test_video_generator_output_shape(resolution, frames):
    generator = VideoGenerator(resolution=resolution, frames=frames, base_channels=2)
    spec = generator.compute_output_spec(keras.KerasTensor((None, 8)))
    assert tuple(spec.shape) == (None, frames, resolution, resolution, 3)


def test_video_generator_parameter_count_at_paper_scale():
    # The paper: about 25M trainable parameters at 128x128, 16 frames.
    generator = VideoGenerator(resolution=128, frames=16, base_channels=80)
    generator.build((None, 256))
    assert 22e6 < generator.count_params() < 30e6


def test_video_generator_rejects_bad_shapes():
    with pytest.raises(ValueError, match="power of two"):
        VideoGenerator(resolution=48)
    with pytest.raises(ValueError, match="temporal doublings"):
        VideoGenerator(resolution=8, frames=64, initial_frames=4)
    assert VideoGenerator(resolution=8, frames=64).initial_frames == 64  # no doubling needed


def test_appearance_encoder():
    encoder = AppearanceEncoder(resolution=32, base_channels=4, latent_dim=16)
    codes = encoder(np.zeros((3, 32, 32, 3), "float32"))
    assert tuple(codes.shape) == (3, 16)
    run_serialization_test(encoder.__class__.from_config(encoder.get_config()))


def test_flow_sequence_encoder():
    encoder = FlowSequenceEncoder(flow_size=4, base_channels=4, latent_dim=16)
    codes = encoder(np.zeros((2, 3, 4, 4, 2), "float32"))
    assert tuple(codes.shape) == (2, 16)
    run_serialization_test(encoder.__class__.from_config(encoder.get_config()))


def test_motion_encoder_batches_all_frame_pairs_in_one_flow_call(small_raft):
    encoder = MotionEncoder(small_raft, raft_iters=1, resolution=32, base_channels=4, latent_dim=16)
    calls = []
    original = small_raft.compute_flow_sequence

    def counting_compute_flow_sequence(frames, iters=None):
        calls.append((tuple(frames.shape), iters))
        return original(frames, iters=iters)

    small_raft.compute_flow_sequence = counting_compute_flow_sequence
    try:
        videos = np.random.default_rng(0).uniform(-1, 1, (2, 4, 32, 32, 3)).astype("float32")
        flows = encoder.compute_flow_sequence(videos)
    finally:
        del small_raft.compute_flow_sequence
    assert calls == [((2, 4, 32, 32, 3), 1)]
    assert tuple(flows.shape) == (2, 3, 4, 4, 2)
    assert len(encoder.trainable_variables) == len(
        encoder.flow_sequence_encoder.trainable_variables
    )
    assert not any(v.trainable for v in small_raft.weights)


def test_video_discriminator_with_and_without_motion_code():
    videos = np.zeros((2, 4, 32, 32, 3), "float32")
    with_motion = VideoDiscriminator(32, 4, base_channels=4, motion_dim=16, hidden_dim=8)
    assert tuple(with_motion(videos, np.zeros((2, 16), "float32")).shape) == (2, 1)
    without_motion = VideoDiscriminator(32, 4, base_channels=4, motion_dim=0, hidden_dim=8)
    assert tuple(without_motion(videos).shape) == (2, 1)
    head_inputs = with_motion.hidden_layers[0].kernel.shape[0]
    assert head_inputs == without_motion.hidden_layers[0].kernel.shape[0] + 16
    with pytest.raises(ValueError, match="motion code"):
        with_motion(videos)
    run_serialization_test(with_motion.__class__.from_config(with_motion.get_config()))


def test_unnormalised_networks_see_their_input_at_initialisation():
    """EA, EM* and DV have no normalisation layers: with G3AN's N(0, 0.02) init their outputs
    varied by ~1e-5 across inputs and DV never learned; their fan-in scaled init keeps the
    signal (a spread across inputs of 0.02 to 0.3 here, against at most 6e-4 before)."""
    keras.utils.set_random_seed(0)
    rng = np.random.default_rng(0)
    frames = rng.uniform(-1, 1, (8, 32, 32, 3)).astype("float32")
    flows = rng.normal(0, 2, (8, 3, 4, 4, 2)).astype("float32")
    videos = rng.uniform(-1, 1, (8, 4, 32, 32, 3)).astype("float32")
    motion_codes = np.zeros((8, 16), "float32")  # DV must vary through its video features
    outputs = {
        "EA": AppearanceEncoder(resolution=32, base_channels=8, latent_dim=16)(frames),
        "EM*": FlowSequenceEncoder(flow_size=4, base_channels=8, latent_dim=16)(flows),
        "DV": VideoDiscriminator(resolution=32, frames=4, base_channels=8, motion_dim=16)(
            videos, motion_codes
        ),
    }
    spread = {name: float(np.std(np.asarray(x), axis=0).mean()) for name, x in outputs.items()}
    assert all(value > 3e-3 for value in spread.values()), spread
