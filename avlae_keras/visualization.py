"""Pictures of videos: animated GIF grids and PNG strips of chosen frames.

Videos are (T, H, W, 3) or batches (B, T, H, W, 3) of floats in [-1, 1] (the model's range) or
uint8. Shared by training samples, `scripts/sample.py` figures and evaluation reports.
"""

from __future__ import annotations

import os
from collections.abc import Sequence

import numpy as np
from PIL import Image

# Frames the paper shows for each sample (1st, 10th and 16th; 1-based).
PAPER_FRAMES = (1, 10, 16)


def paper_frames(length: int) -> tuple[int, ...]:
    """The paper's frames 1, 10, 16 for 16-frame videos; the same fractions of shorter ones."""
    if length >= 16:
        return PAPER_FRAMES
    return tuple(sorted({1, round(1 + 9 * (length - 1) / 15), length}))


def to_uint8(videos) -> np.ndarray:
    """[-1, 1] floats (or uint8, returned as is) -> uint8, rounded, out-of-range values clipped."""
    array = np.asarray(videos)
    if array.dtype == np.uint8:
        return array
    return np.clip(np.rint((array.astype(np.float32) + 1.0) * 127.5), 0, 255).astype(np.uint8)


def _batch(videos) -> np.ndarray:
    array = to_uint8(videos)
    if array.ndim == 4:
        array = array[None]
    if array.ndim != 5 or array.shape[-1] != 3:
        raise ValueError(f"expected videos (B, T, H, W, 3) or (T, H, W, 3), got {array.shape}")
    return array


def enlarge(videos, min_size: int = 64) -> np.ndarray:
    """Repeats pixels (nearest neighbour) until frames are at least `min_size` high, so small
    training resolutions stay legible in pictures; the pixel values are untouched."""
    batch = _batch(videos)
    factor = max(1, -(-min_size // batch.shape[2]))
    return batch.repeat(factor, axis=2).repeat(factor, axis=3) if factor > 1 else batch


def _tile(images: np.ndarray, columns: int, gap: int) -> np.ndarray:
    """(N, H, W, 3) -> one image of `columns` columns separated by `gap` white pixels."""
    count, height, width, _ = images.shape
    rows = -(-count // columns)
    canvas = np.full(
        (rows * height + (rows - 1) * gap, columns * width + (columns - 1) * gap, 3), 255, np.uint8
    )
    for index, image in enumerate(images):
        row, column = divmod(index, columns)
        top, left = row * (height + gap), column * (width + gap)
        canvas[top : top + height, left : left + width] = image
    return canvas


def video_grid_frames(videos, columns: int | None = None, gap: int = 2) -> np.ndarray:
    """(B, T, H, W, 3) -> (T, H', W', 3): every frame of every video tiled in a grid."""
    batch = _batch(videos)
    columns = columns or int(np.ceil(np.sqrt(len(batch))))
    return np.stack([_tile(batch[:, t], columns, gap) for t in range(batch.shape[1])])


def save_gif(videos, path: str | os.PathLike, fps: int = 8, columns: int | None = None) -> str:
    """Writes the videos as one looping animated GIF grid (frames enlarged to >= 64 px)."""
    frames = video_grid_frames(enlarge(videos), columns)
    images = [Image.fromarray(frame) for frame in frames]
    os.makedirs(os.path.dirname(os.fspath(path)) or ".", exist_ok=True)
    images[0].save(
        path,
        save_all=True,
        append_images=images[1:],
        duration=int(1000 / fps),
        loop=0,
        optimize=False,
    )
    return os.fspath(path)


def frame_strip(videos, frames: Sequence[int] | None = None, gap: int = 2) -> np.ndarray:
    """One row per video holding its frames `frames` (1-based; clipped to the video length;
    default `paper_frames` of the length)."""
    batch = _batch(videos)
    length = batch.shape[1]
    frames = paper_frames(length) if frames is None else frames
    chosen = [min(max(f, 1), length) - 1 for f in frames]
    rows = [_tile(video[chosen], len(chosen), gap) for video in batch]
    return _tile(np.stack(rows), 1, 2 * gap)


def save_frame_strip(videos, path: str | os.PathLike, frames: Sequence[int] = PAPER_FRAMES) -> str:
    """Writes `frame_strip(videos, frames)` as a PNG (frames enlarged to >= 64 px)."""
    os.makedirs(os.path.dirname(os.fspath(path)) or ".", exist_ok=True)
    Image.fromarray(frame_strip(enlarge(videos), frames)).save(path)
    return os.fspath(path)


def side_by_side(*video_batches) -> np.ndarray:
    """Joins equally shaped video batches along width: e.g. inputs | reconstructions."""
    batches = [_batch(v) for v in video_batches]
    gap = np.full((*batches[0].shape[:3], 2, 3), 255, np.uint8)
    parts = []
    for index, batch in enumerate(batches):
        if index:
            parts.append(gap)
        parts.append(batch)
    return np.concatenate(parts, axis=3)


def frame_strip_grid(videos, frames: Sequence[int] | None = None, gap: int = 2) -> np.ndarray:
    """(rows, columns, T, H, W, 3) -> one image: row r holds the `frame_strip` frames of each
    of its videos side by side, videos separated by a wider gap (Figs. 3-4: one row per fixed
    code, one column per varied code)."""
    grid = to_uint8(videos)
    if grid.ndim != 6 or grid.shape[-1] != 3:
        raise ValueError(f"expected videos (rows, columns, T, H, W, 3), got {grid.shape}")
    columns = grid.shape[1]
    cells = np.stack(
        [frame_strip(video, frames, gap) for video in grid.reshape(-1, *grid.shape[2:])]
    )
    return _tile(cells, columns, 4 * gap)
