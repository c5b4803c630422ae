import numpy as np
import pytest
from PIL import Image

from avlae_keras.visualization import (
    enlarge,
    frame_strip,
    save_frame_strip,
    save_gif,
    side_by_side,
    to_uint8,
    video_grid_frames,
)


def ramp_videos(batch=3, frames=16, size=8):
    """Videos whose frame t is uniformly grey level t / (frames - 1) in [-1, 1]."""
    levels = np.linspace(-1, 1, frames, dtype=np.float32)
    return np.broadcast_to(levels[None, :, None, None, None], (batch, frames, size, size, 3)).copy()


def test_to_uint8_range_and_rounding():
    values = to_uint8(np.array([-1.5, -1.0, 0.0, 1.0, 2.0]))
    np.testing.assert_array_equal(values, [0, 0, 128, 255, 255])
    assert to_uint8(np.zeros(3, np.uint8)).dtype == np.uint8


def test_frame_strip_picks_paper_frames():
    videos = ramp_videos()
    strip = frame_strip(videos)
    # 3 rows of 8 px with 4 px gaps; 3 columns of 8 px with 2 px gaps.
    assert strip.shape == (3 * 8 + 2 * 4, 3 * 8 + 2 * 2, 3)
    expected = to_uint8(np.linspace(-1, 1, 16)[[0, 9, 15]])
    np.testing.assert_array_equal(strip[0, [0, 10, 20], 0], expected)


def test_gif_and_png_files(tmp_path):
    videos = ramp_videos(batch=4, frames=5)
    gif = Image.open(save_gif(videos, tmp_path / "samples.gif"))
    assert gif.n_frames == 5
    assert gif.size == video_grid_frames(enlarge(videos)).shape[2:0:-1]
    png = Image.open(save_frame_strip(videos, tmp_path / "sub" / "strip.png"))
    # 8-pixel frames are enlarged 8 times; frames 1, 3 and 5 of 5.
    assert png.size == (3 * 64 + 2 * 2, 4 * 64 + 3 * 4)


def test_enlarge_repeats_pixels():
    videos = ramp_videos(batch=1, frames=2, size=8)
    big = enlarge(videos, min_size=20)
    assert big.shape == (1, 2, 24, 24, 3)
    np.testing.assert_array_equal(big[:, :, ::3, ::3], to_uint8(videos))
    assert enlarge(ramp_videos(size=64)).shape[2] == 64


def test_paper_frames_scale_to_short_videos():
    from avlae_keras.visualization import paper_frames

    assert paper_frames(16) == (1, 10, 16)
    assert paper_frames(8) == (1, 5, 8)
    assert paper_frames(2) == (1, 2)


def test_side_by_side_and_shape_errors():
    a, b = ramp_videos(batch=2), ramp_videos(batch=2)
    assert side_by_side(a, b).shape == (2, 16, 8, 18, 3)
    with pytest.raises(ValueError, match=r"\(B, T, H, W, 3\)"):
        frame_strip(np.zeros((2, 3, 4)))
