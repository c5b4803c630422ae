"""`generate`, `encode` and `reconstruct` check their inputs in Python, before any compiled call,
and say what is wrong and how to fix it. Every bad input is refused before the networks run, so
these tests only build one tiny model."""

import keras
import numpy as np
import pytest

from avlae_keras.backend import value_range
from tests.model.conftest import TINY_CONFIG, tiny_videos

LATENT_DIM = TINY_CONFIG["latent_dim"]
FRAMES, SIZE = TINY_CONFIG["frames"], TINY_CONFIG["resolution"]


@pytest.fixture(scope="module")
def model(make_tiny_model):
    return make_tiny_model()


def _latents(batch: int, dim: int = LATENT_DIM, dtype: str = "float32") -> np.ndarray:
    return np.zeros((batch, dim), dtype)


BAD_GENERATE = {
    "no videos": (
        dict(num=0),
        ValueError,
        "num, the number of videos to make, must be at least 1; got 0",
    ),
    "negative": (dict(num=-2), ValueError, "must be at least 1; got -2"),
    "fraction": (dict(num=2.5), TypeError, "must be a whole number; got 2.5 of type float"),
    "nothing": (dict(), ValueError, "needs `num`"),
    "latent size": (
        dict(z_a=_latents(2, 8)),
        ValueError,
        r"z_a must have shape \(batch, 16\) \(the model's latent_dim\), got \(2, 8\)",
    ),
    "latent rank": (
        dict(z_m=np.zeros(LATENT_DIM, "float32")),
        ValueError,
        r"z_m must have shape \(batch, 16\)",
    ),
    "unequal batches": (
        dict(z_a=_latents(2), z_m=_latents(3)),
        ValueError,
        "same batch size, got 2 and 3",
    ),
    "num and latents": (
        dict(num=4, z_a=_latents(2)),
        ValueError,
        "num=4 videos, but z_a holds 2 latents",
    ),
    "integer latents": (dict(z_a=_latents(2, dtype="int32")), ValueError, "z_a must be floats"),
}


@pytest.mark.parametrize("case", BAD_GENERATE, ids=list(BAD_GENERATE))
def test_generate_refuses(model, case):
    arguments, error, message = BAD_GENERATE[case]
    with pytest.raises(error, match=message):
        model.generate(**arguments)


def _videos(shape=(2, FRAMES, SIZE, SIZE, 3), dtype="float32", fill=0.0):
    return np.full(shape, fill, dtype)


BAD_VIDEOS = {
    "one video": (
        _videos((FRAMES, SIZE, SIZE, 3)),
        r"must be 5-D \(batch, 4, 32, 32, 3\).*add a batch axis: videos\[None\]",
    ),
    "frames": (
        _videos((2, 8, SIZE, SIZE, 3)),
        r"takes videos of shape \(batch, 4, 32, 32, 3\), got \(2, 8, 32, 32, 3\): "
        "8 frames instead of 4",
    ),
    "resolution": (
        _videos((2, FRAMES, 64, 64, 3)),
        "64 height instead of 32, 64 width instead of 32",
    ),
    "grey": (_videos((2, FRAMES, SIZE, SIZE, 1)), "1 channels instead of 3"),
    "uint8": (
        _videos(dtype="uint8", fill=200),
        r"floats in \[-1, 1\], got dtype uint8; convert 8-bit pixels with "
        r"`videos.astype\('float32'\) / 127.5 - 1`",
    ),
    "0..255 floats": (
        _videos(fill=255.0),
        r"must be in \[-1, 1\] \(the range of the training data\), got values from 255 to "
        r"255; rescale them: pixels in \[0, 255\] with `videos / 127.5 - 1`",
    ),
    "NaN": (_videos(fill=np.nan), "got values from nan to nan"),
}


@pytest.mark.parametrize("method", ["encode", "reconstruct"])
@pytest.mark.parametrize("case", BAD_VIDEOS, ids=list(BAD_VIDEOS))
def test_encode_and_reconstruct_refuse(model, method, case):
    videos, message = BAD_VIDEOS[case]
    with pytest.raises(ValueError, match=f"^{method}: .*{message}"):
        getattr(model, method)(videos)


@pytest.mark.parametrize("method", ["encode", "reconstruct"])
def test_frame_index_outside_the_video(model, method):
    with pytest.raises(ValueError, match=f"{method}: frame_index 4 is not a frame .* pass 0 to 3"):
        getattr(model, method)(tiny_videos(1), frame_index=FRAMES)


def test_range_is_checked_on_eager_tensors(model):
    # (Videos in range pass: tests/model/test_training.py::test_inference_api.)
    videos = tiny_videos(1)
    videos[0, 1, 2, 3, 0] = -2.0
    with pytest.raises(ValueError, match="got values from -2 to"):
        model.encode(keras.ops.convert_to_tensor(videos))


def test_value_range_only_of_concrete_values():
    values = np.array([[-0.5, 3.0]], "float32")
    assert value_range(values) == (-0.5, 3.0)
    assert value_range(keras.ops.convert_to_tensor(values)) == (-0.5, 3.0)
    assert value_range(keras.KerasTensor((None, 2))) is None
    seen = []
    if keras.backend.backend() == "jax":
        import jax

        jax.jit(lambda x: seen.append(value_range(x)) or x)(values)
    else:
        import tensorflow as tf

        tf.function(lambda x: seen.append(value_range(x)) or x)(tf.constant(values))
    assert seen == [None]
