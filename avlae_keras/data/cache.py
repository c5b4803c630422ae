"""A decoded-frame cache: one uint8 .npy per video at the training resolution, plus a
`manifest.json`. Training memory-maps the arrays, so it only slices, flips and scales.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import sys
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from avlae_keras.data.clips import resize_frames
from avlae_keras.data.decode import VideoDecodeError, is_image_file, iter_video_frames
from avlae_keras.data.layouts import NO_LABEL, VideoIndex
from avlae_keras.data.sources import VideoSource
from flows.atomic_files import atomic_path, atomic_write_bytes

logger = logging.getLogger("avlae_keras.data")

CACHE_FORMAT = "avlae-keras-frame-cache"
CACHE_VERSION = 1
MANIFEST_NAME = "manifest.json"
_ARRAY_DIR = "videos"
_MANIFEST_EVERY_S = 30.0


@dataclass(frozen=True)
class CacheItem:
    """One video to cache: a unique `key`, a `fingerprint` that changes when the video
    does, and `frames()` yielding its uint8 (H, W, 3) frames at any size."""

    key: str
    source: str
    fingerprint: str
    frames: Callable[[], Iterator[np.ndarray]]
    label: int = NO_LABEL
    meta: dict[str, Any] = field(default_factory=dict)


@dataclass
class PrepareReport:
    """What `prepare_cache` did; `failed` maps keys to reasons (new failures and
    unchanged files that failed before and were not retried)."""

    cache_dir: str
    added: int = 0
    updated: int = 0
    unchanged: int = 0
    removed: int = 0
    failed: dict[str, str] = field(default_factory=dict)
    frames: int = 0
    seconds: float = 0.0

    @property
    def videos(self) -> int:
        return self.added + self.updated + self.unchanged

    def summary(self) -> str:
        text = (
            f"{self.cache_dir}: {self.videos} videos, {self.frames} frames "
            f"({self.added} new, {self.updated} changed, {self.unchanged} unchanged, "
            f"{self.removed} removed) in {self.seconds:.1f}s"
        )
        if self.failed:
            text += f"; {len(self.failed)} unreadable and skipped: " + ", ".join(
                sorted(self.failed)
            )
        return text


def file_fingerprint(path: str | os.PathLike) -> str:
    """Size and modification time of a file, or of every frame of a frame folder."""
    path = Path(path)
    if path.is_dir():
        digest = hashlib.sha1()
        for child in sorted(path.iterdir()):
            if child.is_file() and is_image_file(child):
                stat = child.stat()
                digest.update(f"{child.name}:{stat.st_size}:{stat.st_mtime_ns};".encode())
        return "dir:" + digest.hexdigest()
    stat = path.stat()
    return f"file:{stat.st_size}:{stat.st_mtime_ns}"


def items_from_index(index: VideoIndex) -> list[CacheItem]:
    """Cache items for the videos of a dataset index."""
    items = []
    for record in index.records:
        try:
            fingerprint = file_fingerprint(record.path)
        except OSError as error:
            fingerprint = f"unreadable:{error}"

        def frames(path=record.path):
            return iter_video_frames(path, frame_width=index.frame_width)

        items.append(
            CacheItem(record.key, record.path, fingerprint, frames, record.label, record.meta)
        )
    return items


def items_from_arrays(
    videos: Sequence[np.ndarray] | np.ndarray,
    *,
    name: str,
    fingerprint: str,
    labels: Sequence[int] | None = None,
) -> list[CacheItem]:
    """Cache items for in-memory (generated) videos; `fingerprint` names how they were made."""
    items = []
    for i, video in enumerate(videos):
        label = NO_LABEL if labels is None else int(labels[i])
        items.append(
            CacheItem(f"{name}/{i:06d}", name, fingerprint, lambda v=video: iter(v), label, {})
        )
    return items


class _Progress:
    """A one-line progress display on stderr (rewritten in place on a terminal)."""

    def __init__(self, total: int, stream=None):
        self.total = total
        self.stream = stream or sys.stderr
        self.start = time.monotonic()
        self.last = 0.0
        self.live = self.stream.isatty()

    def update(self, done: int, failed: int) -> None:
        now = time.monotonic()
        if done < self.total and now - self.last < (0.2 if self.live else 10.0):
            return
        self.last = now
        elapsed = now - self.start
        rate = done / elapsed if elapsed > 0 else 0.0
        eta = (self.total - done) / rate if rate > 0 else 0.0
        width = 30
        filled = int(width * done / self.total)
        line = (
            f"[{'=' * filled}{'.' * (width - filled)}] {done}/{self.total} videos, "
            f"{rate:.1f}/s, {failed} failed, eta {eta:.0f}s"
        )
        self.stream.write(("\r" + line) if self.live else line + "\n")
        self.stream.flush()

    def close(self) -> None:
        if self.live:
            self.stream.write("\n")
            self.stream.flush()


def _write_manifest(cache_dir: Path, manifest: dict) -> None:
    text = json.dumps(manifest, indent=1, sort_keys=True).encode()
    atomic_write_bytes(cache_dir / MANIFEST_NAME, text)


def read_manifest(cache_dir: str | os.PathLike) -> dict:
    """The manifest of a cache folder, checked for format and version."""
    cache_dir = Path(cache_dir)
    path = cache_dir / MANIFEST_NAME
    if not path.is_file():
        raise FileNotFoundError(
            f"no frame cache at {cache_dir} ({MANIFEST_NAME} missing); "
            "build it with scripts/prepare_data.py --cache_dir=" + str(cache_dir)
        )
    try:
        manifest = json.loads(path.read_text())
    except (OSError, ValueError) as error:
        raise ValueError(
            f"{path} is not a readable manifest ({error}); delete it and re-run "
            "scripts/prepare_data.py"
        ) from error
    if manifest.get("format") != CACHE_FORMAT or manifest.get("version") != CACHE_VERSION:
        raise ValueError(
            f"{path} is not a version {CACHE_VERSION} {CACHE_FORMAT} manifest; "
            "re-run scripts/prepare_data.py into an empty folder"
        )
    return manifest


def _array_name(key: str) -> str:
    return f"{_ARRAY_DIR}/{hashlib.sha1(key.encode()).hexdigest()[:24]}.npy"


def _cache_one(item: CacheItem, cache_dir: Path, frame_size, max_frames: int) -> dict:
    frames = []
    for frame in item.frames():
        frames.append(resize_frames(frame[None], frame_size)[0])
        if max_frames and len(frames) >= max_frames:
            break
    if not frames:
        raise VideoDecodeError(item.source, "no frames")
    array = np.stack(frames)
    name = _array_name(item.key)
    with atomic_path(cache_dir / name) as temporary, open(temporary, "wb") as handle:
        np.save(handle, array)
    return {
        "key": item.key,
        "source": item.source,
        "fingerprint": item.fingerprint,
        "file": name,
        "frames": len(array),
        "label": item.label,
        "meta": item.meta,
    }


def prepare_cache(
    cache_dir: str | os.PathLike,
    items: Sequence[CacheItem],
    *,
    frame_size: tuple[int, int],
    dataset: str,
    source_root: str,
    class_names: Sequence[str] | None = None,
    max_frames: int = 0,
    workers: int = 2,
    progress: bool = True,
) -> PrepareReport:
    """Decodes `items` into `cache_dir` at `frame_size` (H, W), keeping at most
    `max_frames` frames per video (0: all).

    Items whose key and fingerprint match the existing manifest are not touched, nor are
    unchanged items that failed before; items no longer listed are removed. Unreadable
    videos are skipped with one warning each and listed in the report. Arrays and the
    manifest are written atomically, and the manifest is saved along the way, so an
    interrupted run resumes where it stopped.
    """
    start_time = time.monotonic()
    cache_dir = Path(cache_dir)
    (cache_dir / _ARRAY_DIR).mkdir(parents=True, exist_ok=True)
    settings = {
        "dataset": dataset,
        "frame_size": [int(frame_size[0]), int(frame_size[1])],
        "max_frames": int(max_frames),
    }
    old_videos: dict[str, dict] = {}
    old_failed: dict[str, dict] = {}
    if (cache_dir / MANIFEST_NAME).exists():
        old = read_manifest(cache_dir)
        if old.get("settings") == settings:
            old_videos = {v["key"]: v for v in old["videos"]}
            old_failed = {v["key"]: v for v in old.get("failed", [])}
        else:
            logger.warning(
                "cache %s was built with %s; rebuilding for %s",
                cache_dir,
                old.get("settings"),
                settings,
            )

    report = PrepareReport(str(cache_dir))
    keys = [item.key for item in items]
    if len(set(keys)) != len(keys):
        raise ValueError("cache item keys must be unique")
    videos: dict[str, dict] = {}
    failed: dict[str, dict] = {}
    todo: list[CacheItem] = []
    for item in items:
        previous = old_videos.get(item.key)
        if (
            previous is not None
            and previous["fingerprint"] == item.fingerprint
            and (cache_dir / previous["file"]).is_file()
        ):
            videos[item.key] = {**previous, "label": item.label, "meta": item.meta}
            report.unchanged += 1
        elif item.key in old_failed and old_failed[item.key]["fingerprint"] == item.fingerprint:
            failed[item.key] = old_failed[item.key]
            report.failed[item.key] = old_failed[item.key]["reason"] + " (unchanged; not retried)"
        else:
            todo.append(item)

    def manifest() -> dict:
        order = {key: i for i, key in enumerate(keys)}
        return {
            "format": CACHE_FORMAT,
            "version": CACHE_VERSION,
            "settings": settings,
            "source_root": str(source_root),
            "class_names": None if class_names is None else list(class_names),
            "videos": sorted(videos.values(), key=lambda v: order[v["key"]]),
            "failed": sorted(failed.values(), key=lambda v: order[v["key"]]),
        }

    bar = _Progress(len(todo)) if progress and todo else None

    def work(item: CacheItem):
        try:
            return item, _cache_one(item, cache_dir, frame_size, max_frames), None
        except (VideoDecodeError, OSError) as error:
            return item, None, str(getattr(error, "reason", error))

    last_save = time.monotonic()
    with ThreadPoolExecutor(max(1, workers)) as pool:
        for done, (item, entry, reason) in enumerate(pool.map(work, todo), start=1):
            if entry is None:
                logger.warning("skipping unreadable video %s: %s", item.source, reason)
                failed[item.key] = {
                    "key": item.key,
                    "source": item.source,
                    "fingerprint": item.fingerprint,
                    "reason": reason,
                }
                report.failed[item.key] = reason
                videos.pop(item.key, None)
            else:
                if item.key in old_videos:
                    report.updated += 1
                else:
                    report.added += 1
                videos[item.key] = entry
            if bar is not None:
                bar.update(done, len(failed))
            if time.monotonic() - last_save > _MANIFEST_EVERY_S:
                _write_manifest(cache_dir, manifest())
                last_save = time.monotonic()

    current = set(keys)
    for key, entry in old_videos.items():
        if key not in current:
            report.removed += 1
        if key not in videos and (cache_dir / entry["file"]).exists():
            (cache_dir / entry["file"]).unlink()
    _write_manifest(cache_dir, manifest())
    if bar is not None:
        bar.close()
    report.frames = sum(v["frames"] for v in videos.values())
    report.seconds = time.monotonic() - start_time
    if report.failed:
        logger.warning(
            "%d unreadable videos skipped: %s", len(report.failed), ", ".join(report.failed)
        )
    return report


class CachedVideoSource(VideoSource):
    """The videos of a frame cache built by `prepare_cache`, memory-mapped."""

    def __init__(self, cache_dir: str | os.PathLike):
        self.cache_dir = Path(cache_dir)
        if not self.cache_dir.exists():
            raise FileNotFoundError(
                f"cache folder {self.cache_dir} does not exist; build it with "
                f"scripts/prepare_data.py --cache_dir={self.cache_dir}"
            )
        manifest = read_manifest(self.cache_dir)
        entries = manifest["videos"]
        if not entries:
            raise ValueError(
                f"cache {self.cache_dir} holds no video (every source failed to decode?); "
                "check the prepare_data.py summary"
            )
        self.manifest = manifest
        self.name = str(self.cache_dir)
        self.keys = [e["key"] for e in entries]
        self.files = [self.cache_dir / e["file"] for e in entries]
        self.frame_counts = np.array([e["frames"] for e in entries], np.int64)
        self.labels = np.array([e["label"] for e in entries], np.int32)
        names = manifest.get("class_names")
        self.class_names = None if names is None else tuple(names)
        self.frame_size = tuple(manifest["settings"]["frame_size"])
        self._arrays: dict[int, np.ndarray] = {}
        self._lock = threading.Lock()

    def _array(self, index: int) -> np.ndarray:
        array = self._arrays.get(index)
        if array is None:
            path = self.files[index]
            try:
                array = np.load(path, mmap_mode="r")
            except ValueError as error:
                raise VideoDecodeError(path, f"corrupt cache array: {error}") from error
            if array.dtype != np.uint8 or array.shape[0] < self.frame_counts[index]:
                raise VideoDecodeError(path, f"cache array has {array.dtype} {array.shape}")
            with self._lock:
                self._arrays[index] = array
        return array

    def read(self, index: int, frame_indices: np.ndarray) -> np.ndarray:
        array = self._array(index)
        steps = np.diff(frame_indices)
        if len(frame_indices) > 1 and steps[0] > 0 and (steps == steps[0]).all():
            # A view, not a copy: the crop and float conversion then touch only what they use.
            first, step = int(frame_indices[0]), int(steps[0])
            return array[first : first + step * (len(frame_indices) - 1) + 1 : step]
        return array[frame_indices]
