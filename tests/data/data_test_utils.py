"""Helpers for the data tests: tiny videos encoded with PyAV, paths of the shared data."""

from __future__ import annotations

import os
from pathlib import Path

import av
import numpy as np
import pytest

SHARED = Path(__file__).resolve().parents[2].parent / "shared"
UCF_SAMPLE = SHARED / "data/ucf101_sample/ApplyEyeMakeup/v_ApplyEyeMakeup_g01_c01.avi"
WEIZMANN_STRIPS = SHARED / "data/weizmann_mocogan"
MNIST_IMAGES = SHARED / "data/mnist/t10k-images-idx3-ubyte.gz"

# (file suffix, codec, pixel format) combinations that PyAV's bundled FFmpeg encodes.
CONTAINERS = [
    (".mp4", "libx264", "yuv420p"),
    (".mp4", "mpeg4", "yuv420p"),
    (".mkv", "libx264", "yuv420p"),
    (".webm", "libvpx", "yuv420p"),
    (".webm", "libvpx-vp9", "yuv420p"),
    (".mov", "libx264", "yuv420p"),
    (".avi", "mjpeg", "yuvj420p"),
]

BAR_WIDTH = 6
BAR_STEP = 2


def bar_frames(frames: int, height: int = 32, width: int = 32) -> np.ndarray:
    """Frames with a white vertical bar moving right BAR_STEP px per frame on grey."""
    video = np.full((frames, height, width, 3), 60, np.uint8)
    for t in range(frames):
        x = (BAR_STEP * t) % (width - BAR_WIDTH)
        video[t, :, x : x + BAR_WIDTH] = 230
    return video


def bar_position(frame: np.ndarray) -> int:
    """Left edge of the bright bar in a decoded frame."""
    column = frame.astype(np.float32).mean(axis=(0, 2))
    return int(np.argmax(np.convolve(column, np.ones(BAR_WIDTH), mode="valid")))


def encode_video(
    path: str | os.PathLike,
    frames: int = 12,
    codec: str = "libx264",
    pix_fmt: str = "yuv420p",
    size: tuple[int, int] = (32, 32),
) -> Path:
    path = Path(path)
    content = bar_frames(frames, *size)
    with av.open(str(path), "w") as container:
        stream = container.add_stream(codec, rate=10)
        stream.height, stream.width = size
        stream.pix_fmt = pix_fmt
        for image in content:
            container.mux(stream.encode(av.VideoFrame.from_ndarray(image, format="rgb24")))
        container.mux(stream.encode())
    return path


def truncate_copy(source: Path, target: Path, fraction: float = 0.5) -> Path:
    data = source.read_bytes()
    target.write_bytes(data[: int(len(data) * fraction)])
    return target


def random_bytes_file(path: Path, size: int = 4000) -> Path:
    path.write_bytes(np.random.default_rng(1).integers(0, 256, size, dtype=np.uint8).tobytes())
    return path


def require(path: Path) -> Path:
    if not path.exists():
        pytest.skip(f"shared test data {path} is not available")
    return path
