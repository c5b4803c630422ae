"""Upsampling of the 1/8-resolution flow: RAFT's learned convex combination and plain bilinear."""

from __future__ import annotations

import numpy as np
from keras import ops


def convex_upsample(flow, mask):
    """Upsamples (B, h, w, 2) flow by 8 with a (B, h, w, 576) mask of convex weights.

    Each output pixel is a softmax-weighted combination of the 3x3 neighbourhood (zero padded) of
    8 * flow around its coarse pixel. Mask channel k * 64 + a * 8 + b weights neighbour k (row-major
    3x3) for the sub-pixel at row a, column b.
    """
    _, height, width, _ = ops.shape(flow)
    # Softmax on a 5-D view: TensorFlow's softmax takes at most 5 dimensions.
    weights = ops.softmax(ops.reshape(mask, (-1, height, width, 9, 64)), axis=3)
    weights = ops.reshape(weights, (-1, height, width, 9, 8, 8))
    padded = ops.pad(8.0 * flow, [[0, 0], [1, 1], [1, 1], [0, 0]])
    neighbours = ops.stack(
        [padded[:, dy : dy + height, dx : dx + width, :] for dy in range(3) for dx in range(3)],
        axis=3,
    )  # (B, h, w, 9, 2)
    up = ops.einsum("nhwkab,nhwkc->nhawbc", weights, neighbours)
    return ops.reshape(up, (-1, 8 * height, 8 * width, 2))


def _align_corners_matrix(size_in: int, size_out: int) -> np.ndarray:
    """(size_out, size_in) linear-interpolation matrix with align_corners=True."""
    if size_in == 1:
        return np.ones((size_out, 1), np.float32)
    positions = np.arange(size_out) * (size_in - 1) / max(size_out - 1, 1)
    grid = np.arange(size_in)
    return np.maximum(0.0, 1.0 - np.abs(positions[:, None] - grid[None, :])).astype(np.float32)


def bilinear_upsample8(flow):
    """8 * bilinear (align_corners=True) upsampling of (B, h, w, 2) flow (`upflow8`)."""
    _, height, width, _ = ops.shape(flow)
    rows = ops.convert_to_tensor(_align_corners_matrix(height, 8 * height), dtype=flow.dtype)
    cols = ops.convert_to_tensor(_align_corners_matrix(width, 8 * width), dtype=flow.dtype)
    up = ops.einsum("yh,bhwc->bywc", rows, flow)
    up = ops.einsum("xw,bywc->byxc", cols, up)
    return 8.0 * up
