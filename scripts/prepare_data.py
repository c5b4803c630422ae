"""Decodes a video dataset once into a frame cache that training reads.

Frames are stored as uint8 at the size training crops from, one .npy per video, with a
manifest.json. Re-running only decodes new or changed files and drops removed ones.

Examples:
  python scripts/prepare_data.py --dataset=ucf101 --data_path=/data/UCF-101 \
      --ucf_split_dir=/data/ucfTrainTestlist --ucf_subset=train \
      --height=128 --width=170 --cache_dir=/data/cache/ucf101_train
  python scripts/prepare_data.py --dataset=weizmann_strips \
      --data_path=../shared/data/weizmann_mocogan --height=64 --width=64 \
      --cache_dir=/tmp/weizmann_cache
  python scripts/prepare_data.py --dataset=sprites --num_videos=2000 --height=64 \
      --width=64 --cache_dir=/tmp/sprites_cache
"""

from __future__ import annotations

import logging
import sys
from pathlib import Path

from absl import app, flags

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from avlae_keras.data import (
    SOURCE_KINDS,
    generate_moving_mnist,
    generate_sprites,
    index_videos,
    items_from_arrays,
    items_from_index,
    load_mnist_images,
    prepare_cache,
)

FILE_DATASETS = [k for k in SOURCE_KINDS if k not in ("cache", "sprites", "moving_mnist")]

FLAGS = flags.FLAGS
flags.DEFINE_enum("dataset", "folder", [*FILE_DATASETS, "sprites", "moving_mnist"], "Layout.")
flags.DEFINE_string("data_path", None, "Dataset folder (for moving_mnist: the idx3 image file).")
flags.DEFINE_string("cache_dir", None, "Folder to write the cache to.", required=True)
flags.DEFINE_integer("height", 128, "Stored frame height.")
flags.DEFINE_integer("width", 128, "Stored frame width (170 for the paper's UCF-101 recipe).")
flags.DEFINE_integer("max_frames", 0, "Keep at most this many frames per video (0: all).")
flags.DEFINE_integer("frame_width", None, "Frame width in strip images (default: height).")
flags.DEFINE_string("ucf_split_dir", None, "UCF-101 ucfTrainTestlist folder (optional).")
flags.DEFINE_integer("ucf_split", 1, "UCF-101 official split, 1-3.")
flags.DEFINE_enum("ucf_subset", "train", ["train", "test"], "UCF-101 split subset.")
flags.DEFINE_integer("num_videos", 1000, "Generated datasets: number of clips.")
flags.DEFINE_integer("frames", 16, "Generated datasets: frames per clip.")
flags.DEFINE_integer("seed", 0, "Generated datasets: seed.")
flags.DEFINE_integer("workers", 2, "Decoding threads.")


def _items_and_root():
    size = (FLAGS.height, FLAGS.width)
    if FLAGS.dataset == "sprites":
        data = generate_sprites(FLAGS.num_videos, frames=FLAGS.frames, size=size, seed=FLAGS.seed)
        fingerprint = f"sprites:frames={FLAGS.frames}:size={size}:seed={FLAGS.seed}"
        return items_from_arrays(data.videos, name="sprites", fingerprint=fingerprint), "", None
    if not FLAGS.data_path:
        raise ValueError(f"--data_path is required for --dataset={FLAGS.dataset}")
    if FLAGS.dataset == "moving_mnist":
        images = load_mnist_images(FLAGS.data_path)
        data = generate_moving_mnist(
            images, FLAGS.num_videos, frames=FLAGS.frames, size=FLAGS.height, seed=FLAGS.seed
        )
        fingerprint = (
            f"moving_mnist:{Path(FLAGS.data_path).resolve()}:frames={FLAGS.frames}:"
            f"size={FLAGS.height}:seed={FLAGS.seed}"
        )
        items = items_from_arrays(data.videos, name="moving_mnist", fingerprint=fingerprint)
        return items, FLAGS.data_path, None
    options = {}
    if FLAGS.dataset in ("strips", "weizmann_strips"):
        options["frame_width"] = FLAGS.frame_width
    if FLAGS.dataset == "ucf101":
        options.update(
            split_dir=FLAGS.ucf_split_dir, split=FLAGS.ucf_split, subset=FLAGS.ucf_subset
        )
    index = index_videos(FLAGS.dataset, FLAGS.data_path, **options)
    return items_from_index(index), index.root, index.class_names


def main(argv):
    del argv
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(message)s")
    try:
        items, root, class_names = _items_and_root()
    except (FileNotFoundError, NotADirectoryError, ValueError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    print(f"{len(items)} videos from {root or FLAGS.dataset} -> {FLAGS.cache_dir}")
    report = prepare_cache(
        FLAGS.cache_dir,
        items,
        frame_size=(FLAGS.height, FLAGS.width),
        dataset=FLAGS.dataset,
        source_root=root,
        class_names=class_names,
        max_frames=FLAGS.max_frames,
        workers=FLAGS.workers,
    )
    print(report.summary())
    if report.videos == 0:
        print(f"no video of {root or FLAGS.dataset} could be decoded", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    app.run(main)
