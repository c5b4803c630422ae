"""Video sources: random access to the frames of a dataset's videos."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

from avlae_keras.data.decode import VideoDecodeError, count_frames, read_video
from avlae_keras.data.layouts import NO_LABEL, VideoIndex

logger = logging.getLogger("avlae_keras.data")


class VideoSource:
    """Random access to the frames of N videos.

    Subclasses set `name` (used in messages), `keys` (one name per video),
    `frame_counts` (int64, 0 for a video known to be unreadable), `labels` (int32,
    NO_LABEL where unknown), `class_names`, and `frame_size`: the (H, W) every video is
    stored at, or None when sizes vary (decoded files), and implement `read`.
    """

    name: str
    keys: Sequence[str]
    frame_counts: np.ndarray
    labels: np.ndarray
    class_names: tuple[str, ...] | None = None
    frame_size: tuple[int, int] | None = None

    def __len__(self) -> int:
        return len(self.keys)

    def read(self, index: int, frame_indices: np.ndarray) -> np.ndarray:
        """uint8 frames (len(frame_indices), H, W, 3) of video `index`.

        Raises VideoDecodeError or OSError when the video cannot be read.
        """
        raise NotImplementedError


class ArrayVideoSource(VideoSource):
    """Videos held in memory: an array (N, T, H, W, 3) or a list of (T_i, H, W, 3) arrays."""

    def __init__(
        self,
        videos: np.ndarray | Sequence[np.ndarray],
        labels: Sequence[int] | np.ndarray | None = None,
        *,
        name: str = "in-memory videos",
        class_names: Sequence[str] | None = None,
        factors: dict[str, np.ndarray] | None = None,
    ):
        self.videos = videos
        if len(videos) == 0:
            raise ValueError(f"{name}: no videos given")
        for i, video in enumerate(videos):
            if video.dtype != np.uint8 or video.ndim != 4 or video.shape[-1] != 3:
                raise ValueError(
                    f"{name}: video {i} must be uint8 (frames, H, W, 3), got "
                    f"{video.dtype} {video.shape}"
                )
        self.name = name
        self.keys = [f"{name}[{i}]" for i in range(len(videos))]
        self.frame_counts = np.array([len(v) for v in videos], np.int64)
        self.labels = (
            np.full(len(videos), NO_LABEL, np.int32)
            if labels is None
            else np.asarray(labels, np.int32).reshape(len(videos))
        )
        self.class_names = None if class_names is None else tuple(class_names)
        self.factors = factors
        sizes = {tuple(v.shape[1:3]) for v in videos}
        self.frame_size = sizes.pop() if len(sizes) == 1 else None

    def read(self, index: int, frame_indices: np.ndarray) -> np.ndarray:
        return self.videos[index][frame_indices]


class VideoFileSource(VideoSource):
    """Decodes videos (files, frame folders, strips) of a `VideoIndex` on every read.

    Frame counts are probed once at construction, without decoding pictures; videos
    that cannot be opened are skipped with one warning each and a summary.
    """

    def __init__(self, index: VideoIndex, *, workers: int = 2):
        self.index = index
        self.name = index.root
        self.keys = [r.key for r in index.records]
        self.paths = [r.path for r in index.records]
        self.labels = np.array([r.label for r in index.records], np.int32)
        self.class_names = index.class_names
        self.frame_size = None
        with ThreadPoolExecutor(max(1, workers)) as pool:
            results = list(pool.map(self._probe, self.paths))
        self.frame_counts = np.array([count for count, _ in results], np.int64)
        self.unreadable = {p: reason for p, (_, reason) in zip(self.paths, results) if reason}
        for path, reason in self.unreadable.items():
            logger.warning("skipping unreadable video %s: %s", path, reason)
        if self.unreadable:
            logger.warning(
                "%d of %d videos under %s are unreadable and skipped",
                len(self.unreadable),
                len(self.paths),
                self.name,
            )
        if not self.frame_counts.any():
            raise ValueError(f"no readable video under {self.name}; every file failed to decode")

    def _probe(self, path: str) -> tuple[int, str | None]:
        try:
            return count_frames(path, frame_width=self.index.frame_width), None
        except (VideoDecodeError, OSError) as error:
            return 0, str(getattr(error, "reason", error))

    def read(self, index: int, frame_indices: np.ndarray) -> np.ndarray:
        return read_video(
            Path(self.paths[index]),
            frame_indices=frame_indices,
            frame_width=self.index.frame_width,
            clamp_to_available=True,
        )


def sprites_source(
    num_videos: int = 1000,
    *,
    frames: int = 16,
    size: int | tuple[int, int] = 64,
    seed: int = 0,
) -> ArrayVideoSource:
    """Generated sprites clips as a source; `source.factors` holds the ground truth."""
    from avlae_keras.data.sprites import generate_sprites

    data = generate_sprites(num_videos, frames=frames, size=size, seed=seed)
    return ArrayVideoSource(data.videos, name=f"sprites(seed={seed})", factors=data.factors)


def moving_mnist_source(
    mnist_images_path: str | Path,
    num_videos: int = 1000,
    *,
    frames: int = 16,
    size: int = 64,
    digits: int = 2,
    seed: int = 0,
) -> ArrayVideoSource:
    """Moving MNIST clips generated from an MNIST idx3-ubyte(.gz) image file."""
    from avlae_keras.data.moving_mnist import generate_moving_mnist, load_mnist_images

    images = load_mnist_images(mnist_images_path)
    data = generate_moving_mnist(
        images, num_videos, frames=frames, size=size, digits=digits, seed=seed
    )
    return ArrayVideoSource(data.videos, name=f"moving_mnist(seed={seed})")
