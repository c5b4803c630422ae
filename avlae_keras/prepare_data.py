"""The frame cache builder behind `avlae-prepare-data`: decodes a video dataset once into a frame
cache that training reads (`--dataset=cache --data_path=<cache_dir>`).

Frames are stored as uint8 at the size training crops from, one .npy per video, with a
manifest.json (`avlae_keras.data.prepare_cache`). Re-running only decodes new or changed files
and drops removed ones.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

from avlae_keras.config import PrepareDataConfig
from avlae_keras.data import (
    generate_moving_mnist,
    generate_sprites,
    index_videos,
    items_from_arrays,
    items_from_index,
    load_mnist_images,
    prepare_cache,
)
from avlae_keras.errors import NoVideoDecodedError


def _items_and_root(config: PrepareDataConfig):
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


def run(config: PrepareDataConfig) -> dict[str, Any]:
    """Builds (or updates) the frame cache `config.cache_dir`. Returns the report: the
    `source`, the cache's counts as `avlae_keras.data.PrepareReport` (`videos`, `added`,
    `updated`, `unchanged`, `removed`, `failed`, `frames`, `seconds`) and its one-line `summary`.

    Raises `ConfigError` for unusable options; `FileNotFoundError`, `NotADirectoryError` or
    `ValueError` (from `avlae_keras.data`) when --data_path holds no usable dataset; and
    `NoVideoDecodedError` when not one video could be decoded."""
    config.validate()
    items, root, class_names = _items_and_root(config)
    source = root or config.dataset
    print(f"{len(items)} videos from {source} -> {config.cache_dir}", flush=True)
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
    if report.videos == 0:
        raise NoVideoDecodedError(
            f"no video of {source} could be decoded ({report.summary()}); the warnings above "
            "name each unreadable file: check --data_path and --dataset"
        )
    return {
        "source": source,
        **dataclasses.asdict(report),
        "videos": report.videos,
        "summary": report.summary(),
    }
