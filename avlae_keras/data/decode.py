"""Decoding videos, frame folders and frame strips into uint8 RGB arrays."""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Iterator
from pathlib import Path

import numpy as np
from PIL import Image

VIDEO_EXTENSIONS = frozenset(
    {".avi", ".mp4", ".m4v", ".mkv", ".webm", ".mov", ".mpg", ".mpeg", ".wmv", ".flv", ".ogv"}
)
IMAGE_EXTENSIONS = frozenset({".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp", ".tif", ".tiff"})

# A container whose header promises N frames but yields fewer than this fraction of N is
# treated as truncated rather than as a short video.
_TRUNCATION_RATIO = 0.9


def _pyav():
    """PyAV, imported on first use so that everything but decoding video files works without
    it."""
    try:
        import av
    except ImportError as error:
        raise ImportError(
            "decoding video files needs PyAV, which is not installed: run `pip install av` "
            "(or convert the videos to frame folders or a cache with scripts/prepare_data.py "
            "on a machine that has it)"
        ) from error
    return av


class VideoDecodeError(ValueError):
    """A video, frame folder or strip image could not be decoded."""

    def __init__(self, path: str | os.PathLike, reason: str):
        self.path = str(path)
        self.reason = reason
        super().__init__(f"cannot decode {self.path}: {reason}")


def is_video_file(path: str | os.PathLike) -> bool:
    return Path(path).suffix.lower() in VIDEO_EXTENSIONS


def is_image_file(path: str | os.PathLike) -> bool:
    return Path(path).suffix.lower() in IMAGE_EXTENSIONS


def natural_sort_key(name: str) -> list:
    """Sort key that orders `frame2` before `frame10`."""
    return [int(part) if part.isdigit() else part.lower() for part in re.split(r"(\d+)", name)]


def list_frame_files(folder: str | os.PathLike) -> list[Path]:
    """Image files directly inside `folder`, in natural order."""
    files = [p for p in Path(folder).iterdir() if p.is_file() and is_image_file(p)]
    return sorted(files, key=lambda p: natural_sort_key(p.name))


def read_video(
    path: str | os.PathLike,
    *,
    frame_indices: Iterable[int] | None = None,
    frame_width: int | None = None,
    clamp_to_available: bool = False,
) -> np.ndarray:
    """Decodes a video into a uint8 RGB array of shape (frames, H, W, 3).

    `path` may be a video file (any container/codec PyAV's FFmpeg reads), a folder of
    image frames (sorted naturally), or a strip image: frames of equal width laid side
    by side. `frame_width` is the strip's frame width (default: the image height, i.e.
    square frames). With `frame_indices`, only those frames are returned, in that order,
    and decoding stops after the largest one; indices past the end raise
    `VideoDecodeError`, or with `clamp_to_available` repeat the last frame that exists
    (for containers whose packet count overstates the decodable frames).

    Raises:
        FileNotFoundError: `path` does not exist.
        VideoDecodeError: the file exists but holds no decodable frames.
    """
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"video {path} does not exist")
    wanted = None if frame_indices is None else np.asarray(list(frame_indices), dtype=np.int64)
    if wanted is not None and wanted.size and wanted.min() < 0:
        raise ValueError(f"negative frame index in {wanted.tolist()} for {path}")
    if path.is_dir():
        return _read_frame_folder(path, wanted)
    if is_image_file(path):
        return _read_strip(path, wanted, frame_width)
    return _read_container(path, wanted, clamp_to_available)


def iter_video_frames(
    path: str | os.PathLike, *, frame_width: int | None = None
) -> Iterator[np.ndarray]:
    """Yields a video's uint8 RGB frames one at a time (same inputs and errors as
    `read_video`; an empty or truncated video raises after its last good frame)."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"video {path} does not exist")
    if path.is_dir():
        files = list_frame_files(path)
        if not files:
            raise VideoDecodeError(path, "folder holds no image frames")
        first_shape = None
        for file in files:
            frame = _load_rgb(file)
            first_shape = first_shape or frame.shape
            if frame.shape != first_shape:
                raise VideoDecodeError(path, f"{file.name} differs in size from the first frame")
            yield frame
        return
    if is_image_file(path):
        yield from _read_strip(path, None, frame_width)
        return
    count = 0
    av = _pyav()
    try:
        with av.open(str(path)) as container:
            stream = _video_stream(container, path)
            stream.thread_type = "AUTO"
            declared = stream.frames
            for frame in container.decode(stream):
                count += 1
                yield frame.to_ndarray(format="rgb24")
    except (av.FFmpegError, OSError, EOFError, IndexError) as error:
        raise VideoDecodeError(path, _describe(error)) from error
    _check_count(path, count, declared)


def count_frames(path: str | os.PathLike, *, frame_width: int | None = None) -> int:
    """Number of frames without decoding pictures (demuxes packets for video files).

    Raises the same errors as `read_video` for unreadable inputs.
    """
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"video {path} does not exist")
    if path.is_dir():
        count = len(list_frame_files(path))
        if count == 0:
            raise VideoDecodeError(path, "folder holds no image frames")
        return count
    if is_image_file(path):
        width, height = _image_size(path)
        return _strip_layout(path, width, height, frame_width)
    av = _pyav()
    try:
        with av.open(str(path)) as container:
            stream = _video_stream(container, path)
            declared = stream.frames
            count = sum(1 for packet in container.demux(stream) if packet.size)
    except (av.FFmpegError, OSError, EOFError, IndexError) as error:
        raise VideoDecodeError(path, _describe(error)) from error
    _check_count(path, count, declared)
    return count


def _describe(error: BaseException) -> str:
    text = str(error) or type(error).__name__
    return f"{type(error).__name__}: {text}"


def _video_stream(container, path: Path):
    if not container.streams.video:
        raise VideoDecodeError(path, "no video stream in the container")
    return container.streams.video[0]


def _check_count(path: Path, count: int, declared: int) -> None:
    if count == 0:
        raise VideoDecodeError(path, "no frames could be decoded (empty or truncated file)")
    if declared > 0 and count < _TRUNCATION_RATIO * declared:
        raise VideoDecodeError(
            path, f"truncated: the header declares {declared} frames but only {count} are present"
        )


def _read_container(path: Path, wanted: np.ndarray | None, clamp: bool) -> np.ndarray:
    stop = None if wanted is None else (int(wanted.max()) + 1 if wanted.size else 0)
    needed = None if wanted is None else set(wanted.tolist())
    frames: dict[int, np.ndarray] = {}
    count = 0
    last_frame = None
    av = _pyav()
    try:
        with av.open(str(path)) as container:
            stream = _video_stream(container, path)
            stream.thread_type = "AUTO"
            declared = stream.frames
            for index, frame in enumerate(container.decode(stream)):
                if stop is not None and index >= stop:
                    break
                if needed is None or index in needed:
                    frames[index] = frame.to_ndarray(format="rgb24")
                last_frame = frame
                count = index + 1
            if clamp and count and (count - 1) not in frames:
                frames[count - 1] = last_frame.to_ndarray(format="rgb24")
    except (av.FFmpegError, OSError, EOFError, IndexError) as error:
        raise VideoDecodeError(path, _describe(error)) from error
    if stop is None:
        _check_count(path, count, declared)
        return np.stack([frames[i] for i in range(count)])
    if count == 0 and stop > 0:
        raise VideoDecodeError(path, "no frames could be decoded (empty or truncated file)")
    if count < stop and not clamp:
        raise VideoDecodeError(path, f"frame {stop - 1} requested but the video has {count}")
    return _stack(path, [frames[min(i, count - 1)] for i in wanted.tolist()])


def _stack(path: Path, frames: list[np.ndarray]) -> np.ndarray:
    if not frames:
        return np.zeros((0, 0, 0, 3), np.uint8)
    if any(f.shape != frames[0].shape for f in frames):
        raise VideoDecodeError(path, "frames differ in size")
    return np.stack(frames)


def _load_rgb(path: Path) -> np.ndarray:
    try:
        with Image.open(path) as image:
            return np.asarray(image.convert("RGB"))
    except (OSError, ValueError, Image.DecompressionBombError) as error:
        raise VideoDecodeError(path, _describe(error)) from error


def _image_size(path: Path) -> tuple[int, int]:
    try:
        with Image.open(path) as image:
            return image.size
    except (OSError, ValueError) as error:
        raise VideoDecodeError(path, _describe(error)) from error


def _read_frame_folder(path: Path, wanted: np.ndarray | None) -> np.ndarray:
    files = list_frame_files(path)
    if not files:
        raise VideoDecodeError(path, "folder holds no image frames")
    if wanted is None:
        wanted = np.arange(len(files))
    if wanted.size and wanted.max() >= len(files):
        raise VideoDecodeError(
            path, f"frame {int(wanted.max())} requested but the folder has {len(files)}"
        )
    return _stack(path, [_load_rgb(files[i]) for i in wanted.tolist()])


def _strip_layout(path: Path, width: int, height: int, frame_width: int | None) -> int:
    frame_width = frame_width or height
    if width < frame_width or width % frame_width:
        raise VideoDecodeError(
            path, f"strip width {width} is not a multiple of the frame width {frame_width}"
        )
    return width // frame_width


def _read_strip(path: Path, wanted: np.ndarray | None, frame_width: int | None) -> np.ndarray:
    strip = _load_rgb(path)
    height, width = strip.shape[:2]
    count = _strip_layout(path, width, height, frame_width)
    frame_width = width // count
    # (H, count*W, 3) -> (count, H, W, 3)
    frames = strip.reshape(height, count, frame_width, 3).transpose(1, 0, 2, 3)
    if wanted is None:
        return np.ascontiguousarray(frames)
    if wanted.size and wanted.max() >= count:
        raise VideoDecodeError(
            path, f"frame {int(wanted.max())} requested but the strip has {count}"
        )
    return np.ascontiguousarray(frames[wanted])
