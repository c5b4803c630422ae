"""Choosing clips (start frame, flip, crop) and turning frames into model input."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from PIL import Image

SHORT_VIDEO_POLICIES = ("loop", "skip")


@dataclass(frozen=True)
class ClipSpec:
    """What a clip is: `frames` frames `stride` apart, `size` (H, W), float32 in [-1, 1].

    Frames are resized to `resize_to` (H, W) and then cropped to `size` (centre crop,
    or a random crop for training with `random_crop`); without `resize_to` they are
    resized straight to `size`. `flip` mirrors every frame of a training clip with
    probability 1/2. Videos shorter than a clip are looped (`short_videos="loop"`) or
    left out (`"skip"`).
    """

    frames: int = 16
    stride: int = 1
    size: tuple[int, int] = (128, 128)
    resize_to: tuple[int, int] | None = None
    random_crop: bool = False
    flip: bool = False
    short_videos: str = "loop"

    def __post_init__(self):
        object.__setattr__(self, "size", _pair(self.size, "size"))
        if self.resize_to is not None:
            resize_to = _pair(self.resize_to, "resize_to")
            object.__setattr__(self, "resize_to", resize_to)
            if resize_to[0] < self.size[0] or resize_to[1] < self.size[1]:
                raise ValueError(f"resize_to {resize_to} is smaller than the crop size {self.size}")
        if self.frames < 1 or self.stride < 1:
            raise ValueError(f"frames and stride must be >= 1, got {self.frames}, {self.stride}")
        if self.short_videos not in SHORT_VIDEO_POLICIES:
            raise ValueError(
                f"short_videos must be one of {SHORT_VIDEO_POLICIES}, got {self.short_videos!r}"
            )

    @classmethod
    def ucf101(cls, frames: int = 16, stride: int = 1, **options) -> ClipSpec:
        """The paper's UCF-101 recipe: resize to 170x128 (W x H), centre crop 128x128."""
        return cls(frames=frames, stride=stride, size=(128, 128), resize_to=(128, 170), **options)

    @property
    def span(self) -> int:
        """Frames of the source video one clip covers."""
        return (self.frames - 1) * self.stride + 1

    @property
    def stored_size(self) -> tuple[int, int]:
        """(H, W) frames are resized to before cropping; what a cache should store."""
        return self.resize_to or self.size


def _pair(value, name: str) -> tuple[int, int]:
    if isinstance(value, int):
        return (value, value)
    pair = tuple(int(v) for v in value)
    if len(pair) != 2 or min(pair) < 1:
        raise ValueError(f"{name} must be an int or (height, width), got {value!r}")
    return pair


@dataclass(frozen=True)
class ClipPlan:
    """The clips of one epoch, in order: which video, first frame, flip and crop corner."""

    video: np.ndarray
    start: np.ndarray
    flip: np.ndarray
    crop_y: np.ndarray
    crop_x: np.ndarray

    def __len__(self) -> int:
        return len(self.video)


def usable_videos(frame_counts: np.ndarray, spec: ClipSpec) -> np.ndarray:
    """Indices of videos that can give a clip under `spec.short_videos`."""
    counts = np.asarray(frame_counts)
    minimum = spec.span if spec.short_videos == "skip" else 1
    return np.flatnonzero(counts >= minimum)


def plan_clips(
    frame_counts: np.ndarray,
    spec: ClipSpec,
    *,
    training: bool,
    seed: int = 0,
    epoch: int = 0,
    clips_per_video: int = 1,
    name: str = "dataset",
) -> ClipPlan:
    """Chooses the clips of an epoch, deterministically from (seed, epoch).

    Training: random start, flip and crop per clip, shuffled order. Evaluation:
    `clips_per_video` evenly spaced starts (the middle one if 1), no flip, centre crop,
    video order; the same for every epoch.
    """
    counts = np.asarray(frame_counts, np.int64)
    videos = usable_videos(counts, spec)
    if videos.size == 0:
        raise ValueError(
            f"no usable clip in {name}: no video has {spec.span} frames "
            f"(frames={spec.frames}, stride={spec.stride}, short_videos={spec.short_videos!r}); "
            "use short_videos='loop' or shorter clips"
        )
    video = np.repeat(videos, clips_per_video)
    max_start = np.maximum(counts[video] - spec.span, 0)
    stored_h, stored_w = spec.stored_size
    spare_y, spare_x = stored_h - spec.size[0], stored_w - spec.size[1]
    n = len(video)
    if training:
        rng = np.random.default_rng([seed, epoch])
        start = rng.integers(0, max_start + 1)
        flip = rng.random(n) < 0.5 if spec.flip else np.zeros(n, bool)
        if spec.random_crop:
            crop_y = rng.integers(0, spare_y + 1, size=n)
            crop_x = rng.integers(0, spare_x + 1, size=n)
        else:
            crop_y, crop_x = np.full(n, spare_y // 2), np.full(n, spare_x // 2)
        order = rng.permutation(n)
        video, start, flip, crop_y, crop_x = (
            a[order] for a in (video, start, flip, crop_y, crop_x)
        )
    else:
        take = np.tile(np.arange(clips_per_video), len(videos))
        fraction = (take + 1) / (clips_per_video + 1)
        start = np.floor(fraction * max_start + 0.5).astype(np.int64)
        flip = np.zeros(n, bool)
        crop_y, crop_x = np.full(n, spare_y // 2), np.full(n, spare_x // 2)
    return ClipPlan(
        video=video.astype(np.int64),
        start=np.asarray(start, np.int64),
        flip=np.asarray(flip, bool),
        crop_y=np.asarray(crop_y, np.int64),
        crop_x=np.asarray(crop_x, np.int64),
    )


def clip_frame_indices(spec: ClipSpec, start: int, frame_count: int) -> np.ndarray:
    """Source frame indices of a clip; a video shorter than the clip is looped."""
    indices = start + spec.stride * np.arange(spec.frames, dtype=np.int64)
    if frame_count < spec.span:
        indices %= frame_count
    return indices


def resize_frames(frames: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Bilinear (antialiased when shrinking) resize of uint8 frames to (H, W)."""
    height, width = size
    if frames.shape[1:3] == (height, width):
        return frames
    out = np.empty((len(frames), height, width, 3), np.uint8)
    for i, frame in enumerate(frames):
        out[i] = np.asarray(Image.fromarray(frame).resize((width, height), Image.BILINEAR))
    return out


def frames_to_clip(
    frames: np.ndarray,
    spec: ClipSpec,
    *,
    flip: bool,
    crop_y: int,
    crop_x: int,
    out: np.ndarray | None = None,
) -> np.ndarray:
    """uint8 frames at any size -> float32 clip (T, H, W, 3) in [-1, 1], into `out` if given."""
    frames = resize_frames(frames, spec.stored_size)
    height, width = spec.size
    frames = frames[:, crop_y : crop_y + height, crop_x : crop_x + width]
    if flip:
        frames = frames[:, :, ::-1]
    clip = np.subtract(frames, np.float32(127.5), out=out, dtype=np.float32)
    clip /= np.float32(127.5)
    return clip
