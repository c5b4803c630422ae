"""NumPy reference computations (PyTorch semantics) for checking the Keras ports."""

from __future__ import annotations

import numpy as np


def conv3d_reference(
    x: np.ndarray,
    weight: np.ndarray,
    strides=(1, 1, 1),
    pads=((0, 0), (0, 0), (0, 0)),
    groups: int = 1,
    bias: np.ndarray | None = None,
) -> np.ndarray:
    """PyTorch `Conv3d` on channels-last x: weight (out, in / groups, kt, kh, kw), zero pads."""
    x = np.pad(np.asarray(x, np.float64), ((0, 0), *pads, (0, 0)))
    out_c, in_per_group, *kernel = weight.shape
    batch, *size, _ = x.shape
    out_size = [(n - k) // s + 1 for n, k, s in zip(size, kernel, strides)]
    out = np.zeros((batch, *out_size, out_c))
    out_per_group = out_c // groups
    w = np.asarray(weight, np.float64)
    for t in range(out_size[0]):
        for h in range(out_size[1]):
            for v in range(out_size[2]):
                t0, h0, v0 = t * strides[0], h * strides[1], v * strides[2]
                patch = x[:, t0 : t0 + kernel[0], h0 : h0 + kernel[1], v0 : v0 + kernel[2], :]
                for g in range(groups):
                    cin = slice(g * in_per_group, (g + 1) * in_per_group)
                    cout = slice(g * out_per_group, (g + 1) * out_per_group)
                    out[:, t, h, v, cout] = np.einsum("bthwc,octhw->bo", patch[..., cin], w[cout])
    if bias is not None:
        out += bias
    return out


def batch_norm_reference(x, weight, bias, mean, var, eps):
    return (x - mean) / np.sqrt(var + eps) * weight + bias


def random_state(shapes: dict[str, tuple[int, ...]], seed: int = 0) -> dict[str, np.ndarray]:
    """Random float32 tensors for a state_dict layout; BN variances positive."""
    rng = np.random.default_rng(seed)
    state = {}
    for key, shape in shapes.items():
        if key.endswith("running_var"):
            value = rng.uniform(0.5, 1.5, shape)
        elif key.endswith((".bias", "running_mean")):
            value = 0.1 * rng.standard_normal(shape)
        elif len(shape) == 1:  # batch-norm scale
            value = rng.uniform(0.5, 1.5, shape)
        else:
            value = rng.standard_normal(shape) * np.sqrt(2.0 / np.prod(shape[1:]))
        state[key] = value.astype(np.float32)
    return state
