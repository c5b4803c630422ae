"""Fixtures for the data tests."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
from data_test_utils import encode_video


@pytest.fixture
def video_folder(tmp_path: Path) -> Path:
    """Four good 12..18-frame mp4s in nested folders."""
    root = tmp_path / "videos"
    (root / "a").mkdir(parents=True)
    (root / "b" / "c").mkdir(parents=True)
    encode_video(root / "a" / "one.mp4", frames=12)
    encode_video(root / "a" / "two.mp4", frames=14)
    encode_video(root / "b" / "c" / "three.mp4", frames=16)
    encode_video(root / "four.mp4", frames=18)
    return root


@pytest.fixture
def data_warnings(caplog):
    """Warnings logged by avlae_keras.data, as messages."""
    caplog.set_level(logging.WARNING, logger="avlae_keras.data")

    def messages() -> list[str]:
        return [r.getMessage() for r in caplog.records if r.name == "avlae_keras.data"]

    return messages
