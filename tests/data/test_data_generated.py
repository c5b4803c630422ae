from __future__ import annotations

import numpy as np
import pytest
from data_test_utils import MNIST_IMAGES, require

from avlae_keras.data import (
    APPEARANCE_FACTORS,
    MOTION_FACTORS,
    SPRITE_FACTORS,
    generate_moving_mnist,
    generate_sprites,
    load_mnist_images,
    make_source,
)


def test_sprites_are_deterministic_and_index_stable():
    a = generate_sprites(6, frames=8, size=32, seed=3)
    b = generate_sprites(3, frames=8, size=32, seed=3)
    np.testing.assert_array_equal(a.videos[:3], b.videos)
    for name in SPRITE_FACTORS:
        np.testing.assert_array_equal(a.factors[name][:3], b.factors[name])
    c = generate_sprites(6, frames=8, size=32, seed=4)
    assert not np.array_equal(a.videos, c.videos)
    assert set(APPEARANCE_FACTORS) | set(MOTION_FACTORS) == set(SPRITE_FACTORS)


def test_sprites_any_resolution_and_length():
    data = generate_sprites(2, frames=40, size=(24, 48), seed=0)
    assert data.videos.shape == (2, 40, 24, 48, 3) and data.videos.dtype == np.uint8


def test_sprites_motion_matches_factors():
    size, frames = 64, 12
    data = generate_sprites(48, frames=frames, size=size, seed=0)
    assert all(len(np.unique(v)) == len(SPRITE_FACTORS[k]) for k, v in data.factors.items())
    steps = {"right": (0, 1), "left": (0, -1), "down": (1, 0), "up": (-1, 0)}
    for i in range(len(data.videos)):
        direction = SPRITE_FACTORS["direction"][data.factors["direction"][i]]
        speed = SPRITE_FACTORS["speed"][data.factors["speed"][i]]
        # Displacement per frame along the direction, unwrapped on the torus.
        delta = np.diff(data.positions[i], axis=0)
        delta = (delta + size / 2) % size - size / 2
        along = delta @ np.array(steps[direction], np.float32)
        expected = 3.0 if speed == "slow" else 6.0  # px/frame at 64 px
        np.testing.assert_allclose(along, expected, atol=1e-3)
        # The rendered pixels change between every pair of consecutive frames.
        changed = np.any(data.videos[i, 1:] != data.videos[i, :-1], axis=-1).sum(axis=(1, 2))
        assert (changed >= 2 * 3).all()


def test_sprites_appearance_is_constant_within_a_clip():
    data = generate_sprites(8, frames=10, size=32, seed=1)
    for video in data.videos:
        colours_per_frame = [{tuple(c) for c in frame.reshape(-1, 3)} for frame in video]
        assert all(c == colours_per_frame[0] for c in colours_per_frame)


def test_sprites_source():
    source = make_source("sprites", num_videos=5, frames=8, size=32, seed=2)
    assert len(source) == 5 and source.frame_size == (32, 32)
    assert set(source.factors) == set(SPRITE_FACTORS)


def test_moving_mnist():
    images = load_mnist_images(require(MNIST_IMAGES))
    assert images.shape == (10000, 28, 28) and images.dtype == np.uint8
    data = generate_moving_mnist(images, 3, frames=10, size=64, seed=0)
    assert data.videos.shape == (3, 10, 64, 64, 3)
    again = generate_moving_mnist(images, 2, frames=10, size=64, seed=0)
    np.testing.assert_array_equal(data.videos[:2], again.videos)
    moved = np.abs(np.diff(data.positions[:, :, 0], axis=1)).sum(-1)
    assert (moved.mean(axis=1) >= 2).all()  # the first digit moves >= 2 px per frame
    assert data.videos.max() == 255


def test_mnist_bad_file(tmp_path):
    (tmp_path / "bad-idx3-ubyte").write_bytes(b"not mnist at all")
    with pytest.raises(ValueError, match="bad-idx3-ubyte"):
        load_mnist_images(tmp_path / "bad-idx3-ubyte")
    with pytest.raises(FileNotFoundError, match="missing"):
        load_mnist_images(tmp_path / "missing")
