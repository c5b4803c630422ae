"""All-pairs correlation pyramid and its windowed lookup.

The lookup samples each level bilinearly (align_corners=True, zeros outside) at a (2r+1)^2 window
of integer offsets around the current coordinates. Because the offsets are integers, every sample
of a window shares one pair of fractional weights, so the bilinear sample factors into two small
matrix products with "tent" weights max(0, 1 - |u - x|) along x and y. This needs no gather, no
division by (W - 1) (the reference's NaN for levels one pixel wide) and is differentiable with
respect to the correlation values.
"""

from __future__ import annotations

import math

from keras import ops


def correlation_pyramid(features1, features2, num_levels: int):
    """All-pairs correlation of two (B, H, W, C) feature maps, then `num_levels - 1` 2x2 poolings.

    Returns a list of (B, H*W, h_l, w_l) tensors; level l has h_l = H // 2**l (floor, as
    `avg_pool2d(2, stride=2)`). A level whose side reaches 0 is kept as None and reads as zeros.
    """
    _, height, width, channels = ops.shape(features1)
    flat1 = ops.reshape(features1, (-1, height * width, channels))
    flat2 = ops.reshape(features2, (-1, height * width, channels))
    corr = ops.einsum("bpc,bqc->bpq", flat1, flat2) / math.sqrt(channels)
    level = ops.reshape(corr, (-1, height * width, height, width))
    pyramid = [level]
    h, w = height, width
    for _ in range(num_levels - 1):
        h, w = h // 2, w // 2
        if level is None or h == 0 or w == 0:
            level = None
        else:
            cropped = level[:, :, : 2 * h, : 2 * w]
            level = ops.mean(ops.reshape(cropped, (-1, height * width, h, 2, w, 2)), axis=(3, 5))
        pyramid.append(level)
    return pyramid


def _tent_weights(positions, size: int):
    """Bilinear weights of `positions` (..., K) on the integer grid 0..size-1 -> (..., K, size)."""
    grid = ops.arange(size, dtype=positions.dtype)
    return ops.relu(1.0 - ops.abs(positions[..., None] - grid))


def lookup_correlation(pyramid, coords, radius: int):
    """Samples every pyramid level in a (2r+1)^2 window around `coords` (B, H, W, 2), x first.

    Returns (B, H, W, levels * (2r+1)^2). Within a level the channel index is
    (dx + r) * (2r+1) + (dy + r): x is the slow index, as in the reference.
    """
    _, height, width, _ = ops.shape(coords)
    window = 2 * radius + 1
    offsets = ops.arange(-radius, radius + 1, dtype=coords.dtype)
    points = ops.reshape(coords, (-1, height * width, 2))
    samples = []
    for level_index, level in enumerate(pyramid):
        if level is None:
            samples.append(ops.zeros_like(points[..., :1]) * ops.zeros((window * window,)))
            continue
        level_h, level_w = ops.shape(level)[2], ops.shape(level)[3]
        centre = points / float(2**level_index)
        weights_x = _tent_weights(centre[..., 0:1] + offsets, level_w)  # (B, P, Kx, w)
        weights_y = _tent_weights(centre[..., 1:2] + offsets, level_h)  # (B, P, Ky, h)
        # Products and sums over the last axis, in the order the output wants (x slow): no
        # transposes, and XLA fuses each product into its sum (the windows are tiny).
        rows = ops.sum(level[:, :, None] * weights_x[:, :, :, None], axis=-1)  # (B, P, Kx, h)
        window_values = ops.sum(rows[:, :, :, None] * weights_y[:, :, None], axis=-1)  # (.., Ky)
        samples.append(ops.reshape(window_values, (-1, height * width, window * window)))
    out = ops.concatenate(samples, axis=-1)
    return ops.reshape(out, (-1, height, width, len(pyramid) * window * window))
