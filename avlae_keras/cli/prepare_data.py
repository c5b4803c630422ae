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

Exit status: 0 done, 1 not one video could be decoded, 2 options refused or no usable dataset in
--data_path.
"""

from __future__ import annotations

import logging
from typing import Any

from avlae_keras.cli import read_config, run_app, run_application
from avlae_keras.cli.config_flags import define_flags
from avlae_keras.config import PrepareDataConfig


def print_report(report: dict[str, Any]) -> None:
    print(report["summary"])


def main(argv: list[str]) -> int:
    config = read_config(argv, PrepareDataConfig)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(message)s")
    # A --data_path without a usable dataset (avlae_keras.data's errors) is refused input.
    return run_application(
        "avlae_keras.prepare_data",
        config,
        print_report,
        refused=(FileNotFoundError, NotADirectoryError, ValueError),
    )


def run() -> None:
    define_flags(PrepareDataConfig)
    run_app(main)


if __name__ == "__main__":
    run()
