"""Moving MNIST: handwritten digits bouncing inside a square canvas."""

from __future__ import annotations

import gzip
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

_IDX_UBYTE_IMAGES = 0x00000803


def load_mnist_images(path: str | os.PathLike) -> np.ndarray:
    """Images (N, 28, 28) uint8 from an MNIST idx3-ubyte file, gzipped or not."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(
            f"MNIST images {path} do not exist; pass an idx3-ubyte(.gz) file such as "
            "t10k-images-idx3-ubyte.gz"
        )
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rb") as handle:
            data = handle.read()
    except (OSError, EOFError) as error:
        raise ValueError(f"cannot read MNIST images {path}: {error}") from error
    header = np.frombuffer(data[:16], ">u4") if len(data) >= 16 else np.zeros(4, ">u4")
    magic, count, rows, cols = (int(v) for v in header)
    if magic != _IDX_UBYTE_IMAGES or len(data) != 16 + count * rows * cols:
        raise ValueError(f"{path} is not an MNIST idx3-ubyte image file")
    return np.frombuffer(data, np.uint8, offset=16).reshape(count, rows, cols)


@dataclass(frozen=True)
class MovingMnistData:
    videos: np.ndarray  # (N, T, size, size, 3) uint8, grey replicated to RGB
    digit_indices: np.ndarray  # (N, digits) index into the MNIST images used
    positions: np.ndarray  # (N, T, digits, 2) top-left corner (y, x) per frame


def generate_moving_mnist(
    images: np.ndarray,
    num_videos: int,
    *,
    frames: int = 16,
    size: int = 64,
    digits: int = 2,
    seed: int = 0,
) -> MovingMnistData:
    """Digits moving in straight lines at 2-5 px/frame and bouncing off the walls,
    overlapping by maximum; clip `i` depends only on (seed, i)."""
    images = np.asarray(images, np.uint8)
    digit_h, digit_w = images.shape[1:3]
    if size < max(digit_h, digit_w):
        raise ValueError(f"size {size} is smaller than a digit ({digit_h}x{digit_w})")
    limit = np.array([size - digit_h, size - digit_w], np.float32)
    videos = np.zeros((num_videos, frames, size, size), np.uint8)
    chosen = np.empty((num_videos, digits), np.int64)
    positions = np.empty((num_videos, frames, digits, 2), np.int64)
    for i in range(num_videos):
        rng = np.random.default_rng([seed, i])
        chosen[i] = rng.integers(len(images), size=digits)
        for d in range(digits):
            position = rng.random(2).astype(np.float32) * limit
            angle = rng.random() * 2 * np.pi
            velocity = (2 + 3 * rng.random()) * np.array([np.sin(angle), np.cos(angle)])
            for t in range(frames):
                y, x = np.round(position).astype(np.int64)
                positions[i, t, d] = (y, x)
                window = videos[i, t, y : y + digit_h, x : x + digit_w]
                np.maximum(window, images[chosen[i, d]], out=window)
                position = position + velocity
                for axis in range(2):  # reflect off the walls
                    if position[axis] < 0:
                        position[axis], velocity[axis] = -position[axis], -velocity[axis]
                    elif position[axis] > limit[axis]:
                        position[axis] = 2 * limit[axis] - position[axis]
                        velocity[axis] = -velocity[axis]
    rgb = np.repeat(videos[..., None], 3, axis=-1)
    return MovingMnistData(videos=rgb, digit_indices=chosen, positions=positions)
