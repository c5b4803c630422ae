"""The data of a run, from its `TrainConfig`: the training source and clip recipe, the batches of
every training step, held-out clips for evaluation and figures, and the data fingerprint.

Training, evaluation, figures and the sprites judge all build their data here, so a run's
clips are described once.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np

from avlae_keras.config import DATA_OPTIONS, TrainConfig
from avlae_keras.data.clip_loader import ClipLoader
from avlae_keras.data.clips import ClipSpec
from avlae_keras.data.sources import VideoSource
from avlae_keras.data.step_batches import StepBatches

# Held-out sprites are generated with this offset added to the run's seed: clip i of seed s
# depends only on (s, i), so these clips are never the training ones.
HELDOUT_SEED_OFFSET = 1_000_003


def training_source(config: TrainConfig) -> VideoSource:
    """The videos a run trains on."""
    from avlae_keras.data import make_source

    if config.dataset == "sprites":
        return make_source(
            "sprites",
            num_videos=config.num_videos,
            frames=max(config.frames * config.frame_stride, 16),
            size=config.resolution,
            seed=config.seed,
        )
    options: dict[str, Any] = {}
    if config.dataset == "ucf101":
        options.update(split_dir=config.ucf_split_dir, split=config.ucf_split, subset="train")
    return make_source(config.dataset, config.data_path, **options)


def clip_spec(config: TrainConfig, *, training: bool = True) -> ClipSpec:
    """How a run cuts clips from videos (no flips outside training)."""
    common = {
        "frames": config.frames,
        "stride": config.frame_stride,
        "flip": config.flip and training,
    }
    if config.dataset == "ucf101" and config.resolution == 128:
        return ClipSpec.ucf101(**common)
    return ClipSpec(size=(config.resolution, config.resolution), **common)


def training_batches(config: TrainConfig) -> StepBatches:
    """The batch of every training step of a run (a function of (seed, step) only)."""
    loader = ClipLoader(training_source(config), clip_spec(config), training=True, seed=config.seed)
    return StepBatches(loader, config.batch_size)


def heldout_source(config: TrainConfig, num_videos: int) -> tuple[VideoSource, bool]:
    """A source of real videos not used for training, and whether they are truly held out.

    Sprites (and Moving MNIST) are generated again with another seed; UCF-101 with an official
    split uses its test list; other datasets have no split, so their own videos are returned
    (marked not held out).
    """
    from avlae_keras.data import make_source

    seed = config.seed + HELDOUT_SEED_OFFSET
    if config.dataset == "sprites":
        return training_source(config.replace(num_videos=num_videos, seed=seed)), True
    if config.dataset == "moving_mnist":
        return make_source("moving_mnist", config.data_path, seed=seed), True
    if config.dataset == "ucf101" and config.ucf_split_dir:
        source = make_source(
            "ucf101",
            config.data_path,
            split_dir=config.ucf_split_dir,
            split=config.ucf_split,
            subset="test",
        )
        return source, True
    return training_source(config), False


def evaluation_clips(
    source: VideoSource, config: TrainConfig, num: int | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Evaluation clips (centre clip, no flip) of `num` videos spread evenly over `source`
    (all when None): float32 (n, T, H, W, 3) in [-1, 1] and the source's video indices."""
    loader = ClipLoader(source, clip_spec(config, training=False), training=False, seed=0)
    total = loader.num_clips
    count = total if num is None else min(num, total)
    positions = np.unique(np.linspace(0, total - 1, count).round().astype(np.int64))
    clips = np.stack([loader.load(0, int(p))[0] for p in positions])
    return clips, loader.plan(0).video[positions]


def real_batches(config: TrainConfig, batch_size: int) -> Callable[[], Iterator[np.ndarray]]:
    """A callable yielding the run's real evaluation clips in batches (FID/FVD statistics)."""

    def batches() -> Iterator[np.ndarray]:
        loader = ClipLoader(
            training_source(config), clip_spec(config, training=False), training=False
        )
        steps = StepBatches(loader, batch_size, drop_remainder=False)
        for step in range(steps.steps_per_epoch):
            yield steps.load_clips(step)

    return batches


def data_fingerprint(config: TrainConfig) -> str:
    """Changes whenever the real clips could change (the run's data options)."""
    text = json.dumps({k: getattr(config, k) for k in DATA_OPTIONS}, sort_keys=True)
    return hashlib.sha1(text.encode()).hexdigest()[:16]
