"""What a trained AVLAE offers: videos from latents, codes from videos, reconstructions."""

from __future__ import annotations

from collections.abc import Callable

import keras
from keras import ops

from avlae_keras.backend import compile_for_calls, is_traced
from avlae_keras.input_checks import (
    check_frame_index,
    check_latents,
    check_video_count,
    check_videos,
)


class Inference:
    """Mixin of `AVLAE`: `generate`, `encode`, `reconstruct` (and `call` = `reconstruct`), each
    checking its inputs in Python before any compiled work. The model provides `frames`,
    `resolution`, `latent_dim`, `map_latents`, `synthesize`, `appearance_encoder` and
    `motion_encoder`.

    On concrete arrays, `generate`, `encode` and `reconstruct` run compiled on JAX, once per
    input shape (`backend.compile_for_calls`), and eagerly on TensorFlow; `model.run_eagerly =
    True` runs them op by op everywhere, and inside a traced function they are traced with
    their caller. `model(videos)` runs op by op, as a Keras call does."""

    def _run(self, name: str, fn: Callable, *arrays):
        if self.run_eagerly or is_traced(*arrays):
            return fn(*arrays)
        compiled = self.__dict__.setdefault("_compiled_calls", {})
        if name not in compiled:
            compiled[name] = compile_for_calls(self, fn)
        return compiled[name](*arrays)

    def generate(self, num: int | None = None, z_a=None, z_m=None, seed: int | None = None):
        """Videos G(FA(zA), FM(zM)) in [-1, 1], (num, T, H, W, 3). Missing latents are drawn
        from N(0, I) with `seed`; given ones are (num, latent_dim) floats."""
        check_video_count(num)
        z_a, z_m = check_latents(z_a, z_m, self.latent_dim, num)
        given = z_a if z_a is not None else z_m
        if num is None:
            if given is None:
                raise ValueError(
                    "generate() needs `num` (the number of videos) or latents z_a / z_m."
                )
            num = ops.shape(given)[0]
        if z_a is None or z_m is None:  # (a SeedGenerator is a variable: only when needed)
            seed_generator = keras.random.SeedGenerator(seed)
            if z_a is None:
                z_a = keras.random.normal((num, self.latent_dim), seed=seed_generator)
            if z_m is None:
                z_m = keras.random.normal((num, self.latent_dim), seed=seed_generator)
        return self._run("generate", self._generate_from, z_a, z_m)

    def _generate_from(self, z_a, z_m):
        return self.synthesize(*self.map_latents(z_a, z_m))

    def encode(self, videos, frame_index: int | None = None):
        """(wA', wM') = (EA(x_t), EM(x)) for videos x (B, T, H, W, 3) in [-1, 1]; x_t is frame
        `frame_index` (default the middle one)."""
        videos, frame_index = self._checked_videos(videos, frame_index, "encode")
        return self._run(
            f"encode_{frame_index}", lambda v: self._encode_checked(v, frame_index), videos
        )

    def reconstruct(self, videos, frame_index: int | None = None):
        """G(EA(x_t), EM(x)) for real videos x (B, T, H, W, 3) in [-1, 1]."""
        videos, frame_index = self._checked_videos(videos, frame_index, "reconstruct")
        return self._run(
            f"reconstruct_{frame_index}",
            lambda v: self._reconstruct_checked(v, frame_index),
            videos,
        )

    def _checked_videos(self, videos, frame_index, caller: str):
        if self.motion_encoder is None:
            raise ValueError(
                f"{caller}: this AVLAE has no motion encoder (use_motion_encoder=False)."
            )
        videos = self._check_videos(videos, caller)
        return videos, check_frame_index(frame_index, self.frames, caller)

    def _encode_checked(self, videos, frame_index: int):
        videos = ops.cast(videos, "float32")
        return self.appearance_encoder(videos[:, frame_index]), self.motion_encoder(videos)

    def _reconstruct_checked(self, videos, frame_index: int):
        return self.synthesize(*self._encode_checked(videos, frame_index))

    def _check_videos(self, videos, caller: str, check_range: bool = True):
        return check_videos(videos, self.frames, self.resolution, caller, check_range)

    def call(self, videos):
        return self._reconstruct_checked(*self._checked_videos(videos, None, "reconstruct"))
