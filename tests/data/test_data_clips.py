from __future__ import annotations

import numpy as np
import pytest

from avlae_keras.data import ClipSpec, clip_frame_indices, frames_to_clip, plan_clips


def test_training_plan_is_deterministic_per_seed_and_epoch():
    counts = np.array([40, 50, 60, 70, 80])
    spec = ClipSpec(
        frames=8, stride=2, size=(16, 16), resize_to=(20, 24), flip=True, random_crop=True
    )
    a = plan_clips(counts, spec, training=True, seed=1, epoch=0, clips_per_video=4)
    b = plan_clips(counts, spec, training=True, seed=1, epoch=0, clips_per_video=4)
    c = plan_clips(counts, spec, training=True, seed=1, epoch=1, clips_per_video=4)
    for name in ("video", "start", "flip", "crop_y", "crop_x"):
        np.testing.assert_array_equal(getattr(a, name), getattr(b, name))
    assert not np.array_equal(a.video, c.video) or not np.array_equal(a.start, c.start)
    assert sorted(a.video.tolist()) == sorted(np.repeat(np.arange(5), 4).tolist())
    assert (a.start >= 0).all() and (a.start + spec.span <= counts[a.video]).all()
    assert a.flip.any() and not a.flip.all()
    assert a.crop_y.max() <= 4 and a.crop_x.max() <= 8


def test_evaluation_plan_is_centred_and_in_order():
    counts = np.array([20, 36])
    spec = ClipSpec(frames=4, size=8, resize_to=(10, 12), flip=True)
    plan = plan_clips(counts, spec, training=False, seed=5, epoch=3)
    assert plan.video.tolist() == [0, 1]
    assert plan.start.tolist() == [8, 16]  # (count - 4) // 2
    assert not plan.flip.any() and plan.crop_y.tolist() == [1, 1] and plan.crop_x.tolist() == [2, 2]
    spread = plan_clips(counts, spec, training=False, clips_per_video=3)
    assert spread.start.tolist() == [4, 8, 12, 8, 16, 24]


def test_short_videos_loop_or_skip():
    counts = np.array([3, 20])
    loop = ClipSpec(frames=8, size=8)
    plan = plan_clips(counts, loop, training=False)
    assert plan.video.tolist() == [0, 1]
    assert clip_frame_indices(loop, 0, 3).tolist() == [0, 1, 2, 0, 1, 2, 0, 1]
    skip = ClipSpec(frames=8, size=8, short_videos="skip")
    assert plan_clips(counts, skip, training=False).video.tolist() == [1]
    with pytest.raises(ValueError, match="no usable clip in /data/x"):
        plan_clips(np.array([3, 5]), skip, training=True, name="/data/x")


def test_frames_to_clip_scales_crops_and_flips():
    frames = np.zeros((2, 10, 12, 3), np.uint8)
    frames[:, :, :6] = 255
    spec = ClipSpec(frames=2, size=(8, 8), resize_to=(10, 12))
    clip = frames_to_clip(frames, spec, flip=False, crop_y=1, crop_x=2)
    assert clip.shape == (2, 8, 8, 3) and clip.dtype == np.float32
    assert clip.min() == -1.0 and clip.max() == 1.0
    assert (clip[:, :, :4] == 1).all() and (clip[:, :, 4:] == -1).all()
    flipped = frames_to_clip(frames, spec, flip=True, crop_y=1, crop_x=2)
    np.testing.assert_array_equal(flipped, clip[:, :, ::-1])


def test_resize_then_crop_follows_the_ucf101_recipe():
    spec = ClipSpec.ucf101(frames=4)
    assert spec.stored_size == (128, 170) and spec.size == (128, 128)
    frames = np.random.default_rng(0).integers(0, 256, (4, 240, 320, 3), dtype=np.uint8)
    plan = plan_clips(np.array([4]), spec, training=False)
    clip = frames_to_clip(
        frames, spec, flip=False, crop_y=int(plan.crop_y[0]), crop_x=int(plan.crop_x[0])
    )
    assert clip.shape == (4, 128, 128, 3) and plan.crop_x[0] == 21


def test_spec_validation():
    with pytest.raises(ValueError, match="short_videos"):
        ClipSpec(short_videos="pad")
    with pytest.raises(ValueError, match="smaller than the crop"):
        ClipSpec(size=128, resize_to=(100, 170))
