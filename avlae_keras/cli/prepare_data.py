"""`avlae-prepare-data` (also `python scripts/prepare_data.py`): decodes a video dataset once
into a frame cache that training reads (`--dataset=cache --data_path=<cache_dir>`).

Frames are stored as uint8 at the size training crops from, one .npy per video, with a
manifest.json. Re-running only decodes new or changed files and drops removed ones.

Examples:
  avlae-prepare-data --dataset=ucf101 --data_path=/data/UCF-101 \
      --ucf_split_dir=/data/ucfTrainTestlist --ucf_subset=train \
      --height=128 --width=170 --cache_dir=/data/cache/ucf101_train
  avlae-prepare-data --dataset=weizmann_strips \
      --data_path=../shared/data/weizmann_mocogan --height=64 --width=64 \
      --cache_dir=/tmp/weizmann_cache
  avlae-prepare-data --dataset=sprites --num_videos=2000 --height=64 \
      --width=64 --cache_dir=/tmp/sprites_cache

Every option is a field of `avlae_keras.config.PrepareDataConfig`.
"""

from __future__ import annotations

import logging
import sys
from pathlib import Path

from absl import app

from avlae_keras.cli import run_app
from avlae_keras.cli.config_flags import config_from_flags, define_flags
from avlae_keras.config import ConfigError, PrepareDataConfig


def _items_and_root(config: PrepareDataConfig):
    from avlae_keras.data import (
        generate_moving_mnist,
        generate_sprites,
        index_videos,
        items_from_arrays,
        items_from_index,
        load_mnist_images,
    )

    size = (config.height, config.width)
    if config.dataset == "sprites":
        data = generate_sprites(
            config.num_videos, frames=config.frames, size=size, seed=config.seed
        )
        fingerprint = f"sprites:frames={config.frames}:size={size}:seed={config.seed}"
        return items_from_arrays(data.videos, name="sprites", fingerprint=fingerprint), "", None
    if config.dataset == "moving_mnist":
        images = load_mnist_images(config.data_path)
        data = generate_moving_mnist(
            images, config.num_videos, frames=config.frames, size=config.height, seed=config.seed
        )
        fingerprint = (
            f"moving_mnist:{Path(config.data_path).resolve()}:frames={config.frames}:"
            f"size={config.height}:seed={config.seed}"
        )
        items = items_from_arrays(data.videos, name="moving_mnist", fingerprint=fingerprint)
        return items, config.data_path, None
    options = {}
    if config.dataset in ("strips", "weizmann_strips"):
        options["frame_width"] = config.frame_width
    if config.dataset == "ucf101":
        options.update(
            split_dir=config.ucf_split_dir, split=config.ucf_split, subset=config.ucf_subset
        )
    index = index_videos(config.dataset, config.data_path, **options)
    return items_from_index(index), index.root, index.class_names


def main(argv: list[str]) -> int:
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {argv[1:]}")
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(message)s")
    config = config_from_flags(PrepareDataConfig)
    try:
        config.validate()
        items, root, class_names = _items_and_root(config)
    except (ConfigError, FileNotFoundError, NotADirectoryError, ValueError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    from avlae_keras.data import prepare_cache

    print(f"{len(items)} videos from {root or config.dataset} -> {config.cache_dir}")
    report = prepare_cache(
        config.cache_dir,
        items,
        frame_size=(config.height, config.width),
        dataset=config.dataset,
        source_root=root,
        class_names=class_names,
        max_frames=config.max_frames,
        workers=config.workers,
    )
    print(report.summary())
    if report.videos == 0:
        print(f"no video of {root or config.dataset} could be decoded", file=sys.stderr)
        return 1
    return 0


def run() -> None:
    define_flags(PrepareDataConfig)
    run_app(main)


if __name__ == "__main__":
    run()
