"""Flow visualisation with the standard colour wheel (Baker et al., Middlebury flow benchmark):
hue is the direction of motion, saturation its magnitude relative to the largest in the image."""

from __future__ import annotations

import numpy as np

# Number of hues between consecutive primary/secondary colours on the wheel:
# red-yellow, yellow-green, green-cyan, cyan-blue, blue-magenta, magenta-red.
_SEGMENTS = (15, 6, 4, 11, 13, 6)


def color_wheel() -> np.ndarray:
    """(55, 3) float RGB wheel in [0, 1], starting at red and turning through yellow and green."""
    anchors = np.array(
        [[1, 0, 0], [1, 1, 0], [0, 1, 0], [0, 1, 1], [0, 0, 1], [1, 0, 1], [1, 0, 0]], np.float64
    )
    rows = []
    for i, steps in enumerate(_SEGMENTS):
        t = np.arange(steps)[:, None] / steps
        rows.append((1 - t) * anchors[i] + t * anchors[i + 1])
    return np.concatenate(rows, axis=0)


def flow_to_color(flow: np.ndarray, max_magnitude: float | None = None) -> np.ndarray:
    """(H, W, 2) flow (x, y) -> (H, W, 3) uint8 RGB.

    Magnitudes are divided by `max_magnitude` (default: the largest finite magnitude in `flow`),
    so colours are comparable between images only when the same `max_magnitude` is given.
    Non-finite vectors are drawn black.
    """
    flow = np.asarray(flow, np.float64)
    if flow.ndim != 3 or flow.shape[-1] != 2:
        raise ValueError(f"flow_to_color expects (H, W, 2) flow, got shape {flow.shape}")
    valid = np.all(np.isfinite(flow), axis=-1)
    u = np.where(valid, flow[..., 0], 0.0)
    v = np.where(valid, flow[..., 1], 0.0)
    magnitude = np.hypot(u, v)
    if max_magnitude is None:
        max_magnitude = float(magnitude.max()) if magnitude.size else 0.0
    scale = max(max_magnitude, 1e-8)
    u, v, magnitude = u / scale, v / scale, magnitude / scale

    wheel = color_wheel()
    n = len(wheel)
    # Angle measured so that rightward motion is red and downward motion (image y) turns to green.
    angle = np.arctan2(-v, -u) / np.pi  # in (-1, 1]
    position = (angle + 1) / 2 * (n - 1)
    lower = np.floor(position).astype(int)
    upper = (lower + 1) % n
    fraction = (position - lower)[..., None]
    colour = (1 - fraction) * wheel[lower] + fraction * wheel[upper]

    radius = np.clip(magnitude, 0, None)[..., None]
    inside = radius <= 1
    colour = np.where(inside, 1 - radius * (1 - colour), colour * 0.75)
    colour = np.where(valid[..., None], colour, 0.0)
    return np.clip(np.floor(255 * colour), 0, 255).astype(np.uint8)


def color_wheel_legend(size: int = 64) -> np.ndarray:
    """(size, size, 3) uint8 legend: the colour of every direction at every magnitude up to 1."""
    half = (size - 1) / 2
    ys, xs = np.mgrid[0:size, 0:size]
    flow = np.stack([(xs - half) / half, (ys - half) / half], axis=-1)
    legend = flow_to_color(flow, max_magnitude=1.0)
    legend[np.hypot(flow[..., 0], flow[..., 1]) > 1] = 255
    return legend
