"""Video data: decoding, dataset layouts, generated datasets, clip sampling, a frame
cache, and batched pipelines (tf.data, or keras PyDataset without TensorFlow).

Importing this package imports neither TensorFlow nor Keras.
"""

from __future__ import annotations

import os
from typing import Any

from avlae_keras.data.cache import (
    CachedVideoSource,
    CacheItem,
    PrepareReport,
    items_from_arrays,
    items_from_index,
    prepare_cache,
    read_manifest,
)
from avlae_keras.data.clip_loader import ClipLoader
from avlae_keras.data.clips import (
    ClipPlan,
    ClipSpec,
    clip_frame_indices,
    frames_to_clip,
    plan_clips,
    resize_frames,
)
from avlae_keras.data.decode import (
    IMAGE_EXTENSIONS,
    VIDEO_EXTENSIONS,
    VideoDecodeError,
    count_frames,
    iter_video_frames,
    read_video,
)
from avlae_keras.data.layouts import (
    LAYOUTS,
    NO_LABEL,
    VideoIndex,
    VideoRecord,
    index_videos,
)
from avlae_keras.data.moving_mnist import generate_moving_mnist, load_mnist_images
from avlae_keras.data.pipelines import make_pipeline, make_py_dataset, make_tf_dataset
from avlae_keras.data.run_data import (
    clip_spec,
    data_fingerprint,
    evaluation_clips,
    heldout_source,
    real_batches,
    training_batches,
    training_source,
)
from avlae_keras.data.sources import (
    ArrayVideoSource,
    VideoFileSource,
    VideoSource,
    moving_mnist_source,
    sprites_source,
)
from avlae_keras.data.sprites import (
    APPEARANCE_FACTORS,
    MOTION_FACTORS,
    SPRITE_FACTORS,
    background_image,
    generate_sprites,
)
from avlae_keras.data.step_batches import StepBatches, tensorflow_available

SOURCE_KINDS = (*LAYOUTS, "cache", "sprites", "moving_mnist")


def make_source(kind: str, path: str | os.PathLike | None = None, **options: Any) -> VideoSource:
    """A video source by name.

    - "cache": a frame cache folder made by scripts/prepare_data.py (fastest).
    - "sprites": generated sprites; options of `sprites_source` (no path).
    - "moving_mnist": `path` is an MNIST idx3-ubyte(.gz) file; options of
      `moving_mnist_source`.
    - any of `LAYOUTS` ("folder", "frames", "strips", "uva_nemo", "weizmann",
      "weizmann_strips", "ucf101"): videos decoded on the fly; options go to the
      layout's indexer (e.g. `split_dir`, `split`, `subset` for UCF-101), plus `workers`
      for probing.
    """
    if kind == "sprites":
        return sprites_source(**options)
    if kind not in SOURCE_KINDS:
        raise ValueError(f"unknown dataset kind {kind!r}; choose one of {', '.join(SOURCE_KINDS)}")
    if path is None:
        raise ValueError(f"dataset kind {kind!r} needs a path")
    if kind == "cache":
        return CachedVideoSource(path, **options)
    if kind == "moving_mnist":
        return moving_mnist_source(path, **options)
    workers = options.pop("workers", 2)
    return VideoFileSource(index_videos(kind, path, **options), workers=workers)


def __getattr__(name: str):
    # ClipPyDataset subclasses keras.utils.PyDataset; importing keras is deferred to here.
    if name == "ClipPyDataset":
        from avlae_keras.data.py_dataset import ClipPyDataset

        return ClipPyDataset
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "APPEARANCE_FACTORS",
    "IMAGE_EXTENSIONS",
    "LAYOUTS",
    "MOTION_FACTORS",
    "NO_LABEL",
    "SOURCE_KINDS",
    "SPRITE_FACTORS",
    "VIDEO_EXTENSIONS",
    "ArrayVideoSource",
    "CacheItem",
    "CachedVideoSource",
    "ClipLoader",
    "ClipPlan",
    "ClipPyDataset",
    "ClipSpec",
    "PrepareReport",
    "StepBatches",
    "VideoDecodeError",
    "VideoFileSource",
    "VideoIndex",
    "VideoRecord",
    "VideoSource",
    "background_image",
    "clip_frame_indices",
    "clip_spec",
    "count_frames",
    "data_fingerprint",
    "evaluation_clips",
    "frames_to_clip",
    "generate_moving_mnist",
    "generate_sprites",
    "heldout_source",
    "index_videos",
    "items_from_arrays",
    "items_from_index",
    "iter_video_frames",
    "load_mnist_images",
    "make_pipeline",
    "make_py_dataset",
    "make_source",
    "make_tf_dataset",
    "moving_mnist_source",
    "plan_clips",
    "prepare_cache",
    "read_manifest",
    "read_video",
    "real_batches",
    "resize_frames",
    "sprites_source",
    "tensorflow_available",
    "training_batches",
    "training_source",
]
