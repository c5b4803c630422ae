"""Shared tiny configuration for the AVLAE model tests (CPU-friendly: 32x32, 4 frames)."""

from __future__ import annotations

import numpy as np
import pytest

TINY_CONFIG = {
    "resolution": 32,
    "frames": 4,
    "latent_dim": 16,
    "base_channels": 8,
    "mapping_layers": 5,
    "discriminator_hidden_dim": 16,
    "raft_iters": 1,
    "minibatch_stddev_group": 2,  # batches of 2, split over up to 2 devices in some tests
}


def tiny_videos(batch: int, seed: int = 0) -> np.ndarray:
    """Smooth moving blobs in [-1, 1], (batch, 4, 32, 32, 3)."""
    rng = np.random.default_rng(seed)
    frames, size = TINY_CONFIG["frames"], TINY_CONFIG["resolution"]
    ys, xs = np.mgrid[:size, :size].astype(np.float32)
    videos = np.empty((batch, frames, size, size, 3), np.float32)
    for b in range(batch):
        center = rng.uniform(8, 24, size=2)
        velocity = rng.uniform(-2, 2, size=2)
        color = rng.uniform(-1, 1, size=3)
        for t in range(frames):
            cy, cx = center + t * velocity
            blob = np.exp(-((ys - cy) ** 2 + (xs - cx) ** 2) / 30.0)
            videos[b, t] = -0.8 + blob[..., None] * (color + 0.8)
    return np.clip(videos, -1, 1)


@pytest.fixture(scope="session")
def small_raft():
    """RAFT-small with random weights: enough for mechanics, shared by every tiny model; op by
    op when called eagerly on TensorFlow (tests/test_case.py)."""
    from flows import RAFT
    from tests.test_case import eager_on_tensorflow

    return eager_on_tensorflow(RAFT(variant="small"))


@pytest.fixture(scope="session")
def make_tiny_model(small_raft):
    def make(**overrides):
        from avlae_keras import AVLAE

        config = {**TINY_CONFIG, "flow_estimator": small_raft, "seed": 7, **overrides}
        return AVLAE(**config)

    return make
