"""Checks of what users hand to `AVLAE` (videos, latents, counts, frame indices), run in Python
before any compiled call. Each error names the caller, what is wrong and how to convert."""

from __future__ import annotations

import keras
import numpy as np

from avlae_keras.backend import value_range

# Videos are floats in [-1, 1]; a little past it is rounding (e.g. from bfloat16), not a mistake.
RANGE_TOLERANCE = 1e-3


def static_shape(values) -> tuple | None:
    """The shape as a tuple, None for dimensions not known as numbers (traced batch sizes,
    JAX's symbolic dimensions); None when even the rank is unknown."""
    try:
        dimensions = tuple(values.shape)
    except (TypeError, ValueError):  # a TensorFlow shape of unknown rank
        return None
    return tuple(int(d) if isinstance(d, int | np.integer) else None for d in dimensions)


def check_videos(videos, frames: int, resolution: int, caller: str, check_range: bool = True):
    """`videos` (as an array when given as a list) after checking that they are what the model
    takes: (batch, frames, resolution, resolution, 3) floats in [-1, 1]. The range is checked
    only when the values are known (NumPy, eager tensors), never while traced."""
    if not hasattr(videos, "shape"):
        videos = np.asarray(videos)
    shape = static_shape(videos)
    expected = (frames, resolution, resolution, 3)
    layout = f"(batch, {', '.join(map(str, expected))})"
    if shape is not None and len(shape) != 5:
        hint = "; for one video add a batch axis: videos[None]" if len(shape) == 4 else ""
        raise ValueError(
            f"{caller}: videos must be 5-D {layout} (batch, frames, height, width, RGB), "
            f"got shape {shape}{hint}"
        )
    if shape is not None:
        names = ("frames", "height", "width", "channels")
        wrong = [
            f"{got} {name} instead of {want}"
            for name, got, want in zip(names, shape[1:], expected, strict=True)
            if got is not None and got != want
        ]
        if wrong:
            raise ValueError(
                f"{caller}: this model (frames={frames}, resolution={resolution}) takes videos "
                f"of shape {layout}, got {shape}: {', '.join(wrong)}. Cut or resize the clips "
                "(RGB, 3 channels) to match"
            )
    dtype = keras.backend.standardize_dtype(videos.dtype)
    if not keras.backend.is_float_dtype(dtype):
        raise ValueError(
            f"{caller}: videos must be floats in [-1, 1], got dtype {dtype}; convert "
            "8-bit pixels with `videos.astype('float32') / 127.5 - 1`"
        )
    values = value_range(videos) if check_range else None
    if values is not None and not (
        -1 - RANGE_TOLERANCE <= values[0] and values[1] <= 1 + RANGE_TOLERANCE
    ):
        raise ValueError(
            f"{caller}: videos must be in [-1, 1] (the range of the training data), got "
            f"values from {values[0]:.4g} to {values[1]:.4g}; rescale them: pixels in "
            "[0, 255] with `videos / 127.5 - 1`, images in [0, 1] with `videos * 2 - 1`"
        )
    return videos


def check_video_count(num) -> None:
    """`generate`'s `num`: None, a traced count, or a whole number >= 1."""
    if num is None or keras.ops.is_tensor(num):
        return
    if isinstance(num, bool) or not isinstance(num, int | np.integer):
        raise TypeError(
            f"generate: num, the number of videos to make, must be a whole number; "
            f"got {num!r} of type {type(num).__name__}"
        )
    if num < 1:
        raise ValueError(
            f"generate: num, the number of videos to make, must be at least 1; got {num}"
        )


def check_latents(z_a, z_m, latent_dim: int, num=None):
    """(z_a, z_m) as given (lists as arrays) after checking that each is None or a float
    (batch, latent_dim), with the same batch as each other and as `num`."""
    latents = {"z_a": z_a, "z_m": z_m}
    batches = {}
    for name, z in latents.items():
        if z is None:
            continue
        if not hasattr(z, "shape"):
            z = latents[name] = np.asarray(z, "float32")
        shape = static_shape(z)
        if shape is not None and (len(shape) != 2 or shape[1] not in (None, latent_dim)):
            raise ValueError(
                f"generate: {name} must have shape (batch, {latent_dim}) (the model's "
                f"latent_dim), got {shape}"
            )
        dtype = keras.backend.standardize_dtype(z.dtype)
        if not keras.backend.is_float_dtype(dtype):
            raise ValueError(
                f"generate: {name} must be floats (draws of N(0, I)), got dtype {dtype}"
            )
        if shape is not None and shape[0] is not None:
            batches[name] = shape[0]
    if len(set(batches.values())) > 1:
        raise ValueError(
            f"generate: z_a and z_m must have the same batch size, got {batches['z_a']} "
            f"and {batches['z_m']}"
        )
    if batches and isinstance(num, int | np.integer) and num not in batches.values():
        name, batch = next(iter(batches.items()))
        raise ValueError(
            f"generate: num={num} videos, but {name} holds {batch} latents; pass one of "
            "them (num is then the latents' batch size)"
        )
    return latents["z_a"], latents["z_m"]


def check_frame_index(frame_index, frames: int, caller: str) -> int:
    """The frame to encode appearance from: `frame_index`, or the middle frame for None."""
    if frame_index is None:
        return frames // 2
    if isinstance(frame_index, int | np.integer) and not (-frames <= frame_index < frames):
        raise ValueError(
            f"{caller}: frame_index {frame_index} is not a frame of this model's "
            f"{frames}-frame videos; pass 0 to {frames - 1} (or None: the middle)"
        )
    return frame_index
