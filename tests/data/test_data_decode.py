from __future__ import annotations

import numpy as np
import pytest
from data_test_utils import (
    BAR_STEP,
    CONTAINERS,
    UCF_SAMPLE,
    WEIZMANN_STRIPS,
    bar_frames,
    bar_position,
    encode_video,
    random_bytes_file,
    require,
    truncate_copy,
)
from PIL import Image

from avlae_keras.data import VideoDecodeError, count_frames, iter_video_frames, read_video


@pytest.mark.parametrize(("suffix", "codec", "pix_fmt"), CONTAINERS)
def test_reads_containers_and_codecs(tmp_path, suffix, codec, pix_fmt):
    path = encode_video(tmp_path / f"clip_{codec}{suffix}", frames=10, codec=codec, pix_fmt=pix_fmt)
    video = read_video(path)
    assert video.shape == (10, 32, 32, 3) and video.dtype == np.uint8
    assert count_frames(path) == 10
    # Frame order survives: the bar moves BAR_STEP px per frame (lossy codecs blur edges).
    positions = [bar_position(frame) for frame in video]
    assert all(abs(p - BAR_STEP * t) <= 1 for t, p in enumerate(positions)), positions
    subset = read_video(path, frame_indices=[7, 2, 2])
    np.testing.assert_array_equal(subset, video[[7, 2, 2]])


def test_frame_indices_past_the_end(tmp_path):
    path = encode_video(tmp_path / "short.mp4", frames=6)
    with pytest.raises(VideoDecodeError, match="short.mp4"):
        read_video(path, frame_indices=[0, 9])
    clamped = read_video(path, frame_indices=[0, 9], clamp_to_available=True)
    np.testing.assert_array_equal(clamped[1], read_video(path)[5])


@pytest.mark.parametrize("suffix", [".mp4", ".mkv", ".avi"])
def test_corrupt_files_raise_decode_error_naming_the_path(tmp_path, suffix):
    codec, pix_fmt = ("mjpeg", "yuvj420p") if suffix == ".avi" else ("libx264", "yuv420p")
    good = encode_video(tmp_path / f"good{suffix}", frames=30, codec=codec, pix_fmt=pix_fmt)
    bad_files = [
        truncate_copy(good, tmp_path / f"truncated{suffix}", 0.4),
        random_bytes_file(tmp_path / f"random{suffix}"),
        tmp_path / f"empty{suffix}",
    ]
    bad_files[2].write_bytes(b"")
    for bad in bad_files:
        with pytest.raises(VideoDecodeError) as raised:
            read_video(bad)
        assert str(bad) in str(raised.value) and raised.value.reason
        assert isinstance(raised.value, ValueError)
        with pytest.raises(VideoDecodeError):
            count_frames(bad)


def test_missing_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="nothere.mp4"):
        read_video(tmp_path / "nothere.mp4")


@pytest.mark.parametrize("suffix", [".png", ".jpg"])
def test_frame_folder(tmp_path, suffix):
    frames = bar_frames(11)
    folder = tmp_path / "frames"
    folder.mkdir()
    for t, frame in enumerate(frames):  # natural order: frame_2 before frame_10
        Image.fromarray(frame).save(folder / f"frame_{t}{suffix}")
    video = read_video(folder)
    assert video.shape == (11, 32, 32, 3)
    if suffix == ".png":
        np.testing.assert_array_equal(video, frames)
    assert [bar_position(f) for f in video] == [bar_position(f) for f in frames]
    assert count_frames(folder) == 11
    assert len(list(iter_video_frames(folder))) == 11


def test_strip_image(tmp_path):
    frames = bar_frames(5, 16, 16)
    strip = np.concatenate(list(frames), axis=1)
    rgba = np.concatenate([strip, np.full((*strip.shape[:2], 1), 255, np.uint8)], axis=-1)
    Image.fromarray(rgba).save(tmp_path / "strip.jpg", format="PNG")  # like the Weizmann copy
    np.testing.assert_array_equal(read_video(tmp_path / "strip.jpg"), frames)
    assert count_frames(tmp_path / "strip.jpg") == 5
    # Frames need not be square when the frame width is given.
    wide = np.concatenate([np.pad(f, ((0, 0), (0, 4), (0, 0))) for f in frames], axis=1)
    Image.fromarray(wide).save(tmp_path / "wide.png")
    assert read_video(tmp_path / "wide.png", frame_width=20).shape == (5, 16, 20, 3)
    with pytest.raises(VideoDecodeError, match="multiple of the frame width"):
        read_video(tmp_path / "wide.png")


def test_ucf101_sample():
    path = require(UCF_SAMPLE)
    video = read_video(path)
    assert video.shape == (164, 240, 320, 3) and video.dtype == np.uint8
    assert count_frames(path) == 164
    assert read_video(path, frame_indices=[0, 100]).shape == (2, 240, 320, 3)


def test_weizmann_strips_count():
    root = require(WEIZMANN_STRIPS)
    strips = sorted(root.glob("[0-9]/*.jpg"))
    assert len(strips) == 72
    assert sum(count_frames(p) for p in strips) == 5290
    video = read_video(strips[0])
    assert video.shape[1:] == (64, 64, 3) and len(video) == Image.open(strips[0]).width // 64
