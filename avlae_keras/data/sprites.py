"""Sprites: coloured shapes moving over textured backgrounds, with known factors.

Each clip has three appearance factors (shape, colour, background texture) that stay
fixed over the clip and three motion factors (direction, speed, trajectory kind). The
shape moves several pixels per frame and wraps around the edges (the frame is a torus),
so direction and speed stay constant however long the clip is. Clip `i` depends only on
(seed, i, frames, size): more clips or a different count never changes earlier ones.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

SPRITE_FACTORS: dict[str, tuple[str, ...]] = {
    "shape": ("square", "circle", "triangle", "diamond"),
    "colour": ("red", "green", "blue", "yellow", "magenta", "cyan"),
    "background": ("stripes", "checker", "dots", "grid"),
    "direction": ("right", "left", "down", "up"),
    "speed": ("slow", "fast"),
    "trajectory": ("straight", "wave"),
}
APPEARANCE_FACTORS = ("shape", "colour", "background")
MOTION_FACTORS = ("direction", "speed", "trajectory")

_COLOURS = np.array(
    [[235, 45, 45], [45, 210, 70], [55, 100, 250], [245, 225, 40], [230, 60, 230], [40, 225, 235]],
    np.float32,
)
# Dark, desaturated tints (pattern colour, ground colour) so sprites always stand out.
_BACKGROUND_TINTS = np.array(
    [
        [[70, 70, 95], [40, 40, 55]],
        [[95, 75, 55], [50, 40, 30]],
        [[60, 90, 60], [30, 50, 30]],
        [[90, 90, 90], [35, 35, 35]],
    ],
    np.float32,
)
# (dy, dx) unit steps for right, left, down, up.
_DIRECTIONS = np.array([[0, 1], [0, -1], [1, 0], [-1, 0]], np.float32)
# Pixels per frame as a fraction of the shorter side: 3 and 6 px at 64 px.
_SPEED_FRACTIONS = (3 / 64, 6 / 64)
_WAVE_PERIOD_FRAMES = 8


@dataclass(frozen=True)
class SpritesData:
    """Generated clips and their ground-truth factors (indices into `factor_values`)."""

    videos: np.ndarray  # (N, T, H, W, 3) uint8
    factors: dict[str, np.ndarray]  # name -> (N,) int64
    positions: np.ndarray  # (N, T, 2) float32 sprite centre (y, x) per frame
    seed: int

    @property
    def factor_values(self) -> dict[str, tuple[str, ...]]:
        return SPRITE_FACTORS


def background_image(kind: int, height: int, width: int) -> np.ndarray:
    """Background texture `kind` (index into `SPRITE_FACTORS["background"]`) as (H, W, 3)
    float32 in [0, 255]: what a clip shows where its sprite is not."""
    y, x = np.mgrid[0:height, 0:width].astype(np.float32)
    period = max(4.0, min(height, width) / 8)
    if kind == 0:  # diagonal stripes
        pattern = ((x + y) // (period / 2)) % 2
    elif kind == 1:  # checkerboard
        pattern = ((x // period) + (y // period)) % 2
    elif kind == 2:  # dots on a regular lattice
        dy = (y % period) - period / 2
        dx = (x % period) - period / 2
        pattern = (dy**2 + dx**2 <= (period / 4) ** 2).astype(np.float32)
    else:  # thin grid lines
        pattern = ((y % period < 1) | (x % period < 1)).astype(np.float32)
    tint, ground = _BACKGROUND_TINTS[kind]
    return ground + pattern[..., None] * (tint - ground)


def _shape_mask(shape: int, dy: np.ndarray, dx: np.ndarray, radius: float) -> np.ndarray:
    if shape == 0:
        return np.maximum(np.abs(dy), np.abs(dx)) <= 0.8 * radius
    if shape == 1:
        return dy**2 + dx**2 <= radius**2
    if shape == 2:  # upward triangle: apex at -radius, base at +0.75 radius
        return (dy >= -radius) & (dy <= 0.75 * radius) & (np.abs(dx) <= 0.6 * (dy + radius))
    return np.abs(dy) + np.abs(dx) <= 1.15 * radius


def _render_clip(rng: np.random.Generator, frames: int, height: int, width: int):
    factors = {name: int(rng.integers(len(values))) for name, values in SPRITE_FACTORS.items()}
    side = min(height, width)
    speed = _SPEED_FRACTIONS[factors["speed"]] * side
    step = _DIRECTIONS[factors["direction"]] * speed
    start = rng.random(2).astype(np.float32) * np.array([height, width], np.float32)
    t = np.arange(frames, dtype=np.float32)
    centre = start[None] + t[:, None] * step[None]
    if SPRITE_FACTORS["trajectory"][factors["trajectory"]] == "wave":
        across = np.array([abs(step[1]), abs(step[0])], np.float32) / speed  # perpendicular axis
        centre += (side / 8) * np.sin(2 * np.pi * t / _WAVE_PERIOD_FRAMES)[:, None] * across
    centre %= np.array([height, width], np.float32)

    y = np.arange(height, dtype=np.float32)[None, :, None]
    x = np.arange(width, dtype=np.float32)[None, None, :]
    # Offsets on the torus, so a sprite leaving one edge re-enters on the other.
    dy = (y - centre[:, 0, None, None] + height / 2) % height - height / 2
    dx = (x - centre[:, 1, None, None] + width / 2) % width - width / 2
    mask = _shape_mask(factors["shape"], dy, dx, radius=0.14 * side)
    background = background_image(factors["background"], height, width)
    video = np.where(mask[..., None], _COLOURS[factors["colour"]], background[None])
    return np.round(video).astype(np.uint8), factors, centre


def generate_sprites(
    num_videos: int,
    *,
    frames: int = 16,
    size: int | tuple[int, int] = 64,
    seed: int = 0,
) -> SpritesData:
    """`num_videos` clips of `frames` frames at `size` (H, W), deterministic for `seed`."""
    height, width = (size, size) if isinstance(size, int) else size
    if min(height, width) < 8 or frames < 1 or num_videos < 1:
        raise ValueError(
            f"sprites need num_videos >= 1, frames >= 1 and size >= 8, got "
            f"{num_videos}, {frames}, {(height, width)}"
        )
    videos = np.empty((num_videos, frames, height, width, 3), np.uint8)
    positions = np.empty((num_videos, frames, 2), np.float32)
    factors = {name: np.empty(num_videos, np.int64) for name in SPRITE_FACTORS}
    for i in range(num_videos):
        rng = np.random.default_rng([seed, i])
        videos[i], clip_factors, positions[i] = _render_clip(rng, frames, height, width)
        for name, value in clip_factors.items():
            factors[name][i] = value
    return SpritesData(videos=videos, factors=factors, positions=positions, seed=seed)
