from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from data_test_utils import WEIZMANN_STRIPS, encode_video, random_bytes_file, require, truncate_copy

from avlae_keras.data import (
    CachedVideoSource,
    index_videos,
    items_from_index,
    prepare_cache,
    read_video,
)

REPO = Path(__file__).resolve().parents[2]


def prepare(folder, cache, size=(16, 20), **options):
    index = index_videos("folder", folder)
    return prepare_cache(
        cache,
        items_from_index(index),
        frame_size=size,
        dataset="folder",
        source_root=index.root,
        progress=False,
        **options,
    )


def test_prepare_reads_back_and_skips_bad_files(video_folder, tmp_path, data_warnings):
    truncate_copy(video_folder / "four.mp4", video_folder / "truncated.mp4", 0.5)
    random_bytes_file(video_folder / "random.mkv")
    cache = tmp_path / "cache"
    report = prepare(video_folder, cache)
    assert (report.added, report.unchanged, report.videos) == (4, 0, 4)
    assert set(report.failed) == {"truncated.mp4", "random.mkv"}
    assert "2 unreadable and skipped" in report.summary()
    warned = "\n".join(data_warnings())
    assert "truncated.mp4" in warned and "random.mkv" in warned

    manifest = json.loads((cache / "manifest.json").read_text())
    assert manifest["settings"]["frame_size"] == [16, 20]
    assert {v["key"] for v in manifest["failed"]} == {"truncated.mp4", "random.mkv"}
    source = CachedVideoSource(cache)
    assert source.keys == ["a/one.mp4", "a/two.mp4", "b/c/three.mp4", "four.mp4"]
    assert source.frame_counts.tolist() == [12, 14, 16, 18]
    assert source.frame_size == (16, 20)
    frames = source.read(0, np.array([0, 5]))
    assert frames.shape == (2, 16, 20, 3) and frames.dtype == np.uint8
    original = read_video(video_folder / "a" / "one.mp4", frame_indices=[0, 5])
    assert np.abs(frames.mean(axis=(1, 2)) - original.mean(axis=(1, 2))).max() < 3


def test_rerun_processes_only_new_or_changed_files(video_folder, tmp_path):
    random_bytes_file(video_folder / "random.mkv")
    cache = tmp_path / "cache"
    prepare(video_folder, cache)
    arrays = {p.name: p.stat().st_mtime_ns for p in (cache / "videos").iterdir()}

    again = prepare(video_folder, cache)
    assert (again.added, again.updated, again.unchanged, again.removed) == (0, 0, 4, 0)
    assert "not retried" in again.failed["random.mkv"]
    assert {p.name: p.stat().st_mtime_ns for p in (cache / "videos").iterdir()} == arrays

    encode_video(video_folder / "a" / "one.mp4", frames=20)  # changed
    os.utime(video_folder / "a" / "one.mp4", ns=(1, 1))
    encode_video(video_folder / "new.webm", frames=9, codec="libvpx")  # added
    (video_folder / "b" / "c" / "three.mp4").unlink()  # removed
    third = prepare(video_folder, cache)
    assert (third.added, third.updated, third.unchanged, third.removed) == (1, 1, 2, 1)
    source = CachedVideoSource(cache)
    counts = dict(zip(source.keys, source.frame_counts.tolist(), strict=True))
    assert counts == {"four.mp4": 18, "new.webm": 9, "a/one.mp4": 20, "a/two.mp4": 14}
    assert len(list((cache / "videos").iterdir())) == 4

    resized = prepare(video_folder, cache, size=(8, 8))  # new settings: everything again
    assert resized.added == 4 and CachedVideoSource(cache).frame_size == (8, 8)


def test_max_frames(video_folder, tmp_path):
    prepare(video_folder, tmp_path / "cache", max_frames=10)
    assert CachedVideoSource(tmp_path / "cache").frame_counts.tolist() == [10, 10, 10, 10]


def test_missing_cache_names_the_fix(tmp_path):
    with pytest.raises(FileNotFoundError, match="prepare_data.py"):
        CachedVideoSource(tmp_path / "nothing")
    (tmp_path / "empty").mkdir()
    with pytest.raises(FileNotFoundError, match="manifest.json"):
        CachedVideoSource(tmp_path / "empty")


def run_script(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, str(REPO / "scripts" / "prepare_data.py"), *args],
        capture_output=True,
        text=True,
        timeout=120,
        # The lighter backend: the package's __init__ may import model code, hence Keras.
        env={**os.environ, "PYTHONPATH": str(REPO), "KERAS_BACKEND": "jax"},
    )


def test_prepare_data_script(tmp_path):
    strips = require(WEIZMANN_STRIPS)
    data = tmp_path / "strips"
    (data / "3").mkdir(parents=True)
    for name in sorted(os.listdir(strips / "3"))[:3]:
        (data / "3" / name).symlink_to(strips / "3" / name)
    random_bytes_file(data / "3" / "00000099.jpg")
    cache = tmp_path / "cache"
    args = ["--dataset=weizmann_strips", f"--data_path={data}", f"--cache_dir={cache}"]
    first = run_script(*args, "--height=32", "--width=32")
    assert first.returncode == 0, first.stderr
    assert "3 videos" in first.stdout and "1 unreadable and skipped: 3/00000099.jpg" in first.stdout
    assert "00000099.jpg" in first.stderr  # the warning names the file
    source = CachedVideoSource(cache)
    assert source.class_names == ("jumping_jack",) and source.frame_size == (32, 32)
