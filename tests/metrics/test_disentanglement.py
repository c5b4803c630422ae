"""Disentanglement metrics separate a generator built to be disentangled from an entangled one."""

import hashlib

import numpy as np
import pytest

from avlae_keras import backend
from avlae_keras.data import APPEARANCE_FACTORS, MOTION_FACTORS, SPRITE_FACTORS, generate_sprites
from avlae_keras.metrics import (
    colour_histogram_features,
    disentanglement,
    encoder_factor_table,
    end_point_error,
    factor_predictability,
    format_factor_table,
    latent_swap_consistency,
    raft_flow_fn,
    video_flows,
)
from avlae_keras.metrics.disentanglement import (
    auto_size,
    flow_scale_factor,
    ratio_standard_error,
    standard_error,
)
from tests.conftest import shared_file

SIZE, FRAMES, LATENT = 32, 4, 8


def blob_videos(colour_code, velocity_code):
    """Videos of a soft disc over a grey background; its RGB colour comes from `colour_code`
    and its velocity (up to 3 px per frame each way) from `velocity_code`."""
    colour = np.tanh(colour_code[:, :3])  # (B, 3) in (-1, 1)
    velocity = 3.0 * np.tanh(velocity_code[:, :2])  # (B, 2) pixels per frame (y, x)
    t = np.arange(FRAMES, dtype=np.float32)
    centre = SIZE / 2 + t[None, :, None] * velocity[:, None, :]  # (B, T, 2)
    grid = np.arange(SIZE, dtype=np.float32)
    dy = (grid[None, None, :, None] - centre[..., 0, None, None] + SIZE / 2) % SIZE - SIZE / 2
    dx = (grid[None, None, None, :] - centre[..., 1, None, None] + SIZE / 2) % SIZE - SIZE / 2
    mask = np.clip(6.0 - np.sqrt(dy**2 + dx**2), 0.0, 1.0)[..., None]  # radius 6, soft edge
    background = np.full(3, -0.2, np.float32)
    return (mask * colour[:, None, None, None] + (1 - mask) * background).astype(np.float32)


def disentangled(z_a, z_m):
    return blob_videos(np.asarray(z_a), np.asarray(z_m))


def entangled(z_a, z_m):
    mixed = (np.asarray(z_a) + np.asarray(z_m)) / np.sqrt(2.0)
    return blob_videos(mixed, mixed[:, ::-1])


@pytest.fixture(scope="module")
def raft_small():
    import os

    folder = shared_file("weights/raft/raft-small.pth").parent
    previous = os.environ.get("FLOWS_WEIGHTS_DIR")
    os.environ["FLOWS_WEIGHTS_DIR"] = str(folder)
    try:
        from flows import RAFT

        yield RAFT.from_preset("raft_small")
    finally:
        if previous is None:
            os.environ.pop("FLOWS_WEIGHTS_DIR", None)
        else:
            os.environ["FLOWS_WEIGHTS_DIR"] = previous


def test_consistency_ratios_separate_disentangled_from_entangled(raft_small):
    flow_fn = raft_flow_fn(raft_small, iters=4, min_size=64)
    options = dict(
        flow_fn=flow_fn, feature_fn=colour_histogram_features(), num_pairs=12, batch_size=12
    )
    good = latent_swap_consistency(disentangled, LATENT, seed=1, **options)
    bad = latent_swap_consistency(entangled, LATENT, seed=1, **options)
    print("disentangled", good)
    print("entangled", bad)
    for result in (good, bad):
        assert result["motion"]["num_pairs"] == result["appearance"]["num_pairs"] == 12
        for kind in ("motion", "appearance"):
            assert 0 < result[kind]["ratio_sem"] < result[kind]["ratio"]
        assert 0 < result["motion"]["flow_magnitude_sem"] < result["motion"]["flow_magnitude"]
        assert result["motion"]["flow_magnitude"] > 0.1  # the blobs do move
        assert result["motion"]["neither"] > 0 and result["appearance"]["neither"] > 0
    # Sharing zM fixes the motion of the disentangled generator, sharing zA its colour.
    assert good["motion"]["ratio"] < 0.3
    assert good["appearance"]["ratio"] < 0.1
    # The entangled one changes both with either code.
    assert bad["motion"]["ratio"] > 0.5
    assert bad["appearance"]["ratio"] > 0.5
    assert bad["motion"]["ratio"] > 2.5 * good["motion"]["ratio"]
    assert bad["appearance"]["ratio"] > 5 * good["appearance"]["ratio"]


def test_flow_of_a_known_translation(raft_small):
    z = np.zeros((1, LATENT), np.float32)
    z_m = z.copy()
    z_m[0, :2] = np.arctanh(2.0 / 3.0)  # 2 px per frame down and right
    videos = disentangled(z + 0.5, z_m)
    flow_fn = raft_flow_fn(raft_small, iters=4, min_size=64)
    flows = video_flows(videos, flow_fn)
    assert flows.shape == (1, FRAMES - 1, SIZE, SIZE, 2)
    disc = np.hypot(*np.meshgrid(np.arange(SIZE) - SIZE / 2, np.arange(SIZE) - SIZE / 2)) < 3
    np.testing.assert_allclose(flows[0, 0][disc].mean(axis=0), [2.0, 2.0], atol=0.5)
    assert end_point_error(flows, flows)[0] == 0.0


def test_colour_histogram_ignores_motion():
    rng = np.random.default_rng(0)
    z_a = rng.standard_normal((3, LATENT))
    still = disentangled(z_a, np.zeros((3, LATENT)))
    moving = disentangled(z_a, rng.standard_normal((3, LATENT)))
    features = colour_histogram_features()
    np.testing.assert_allclose(features(still), features(moving), atol=0.02)
    np.testing.assert_allclose(features(still).sum(axis=1), 1.0, atol=1e-6)


def _lookup_encoder(videos, factors, appearance, motion, noise=0.3, dim=12):
    """An encoder of known videos: wA embeds `appearance` factors, wM `motion` factors, each a
    fixed random vector per factor value plus noise."""
    rng = np.random.default_rng(0)
    tables = {n: rng.standard_normal((len(v), dim)) for n, v in SPRITE_FACTORS.items()}
    index = {hashlib.sha1(v.tobytes()).hexdigest(): i for i, v in enumerate(videos)}

    def code(i, names):
        vector = sum(tables[n][factors[n][i]] for n in names)
        return vector + noise * rng.standard_normal(dim)

    def encode(batch):
        ids = [index[hashlib.sha1(np.asarray(v).tobytes()).hexdigest()] for v in batch]
        return np.stack([code(i, appearance) for i in ids]), np.stack(
            [code(i, motion) for i in ids]
        )

    return encode


def test_factor_table_of_a_disentangled_and_an_entangled_encoder():
    data = generate_sprites(240, frames=4, size=16, seed=3)
    videos = data.videos.astype(np.float32) / 127.5 - 1.0
    classes = {n: len(v) for n, v in SPRITE_FACTORS.items()}
    encode = _lookup_encoder(videos, data.factors, APPEARANCE_FACTORS, MOTION_FACTORS)
    table = encoder_factor_table(encode, videos, data.factors, num_classes=classes, batch_size=32)
    print(format_factor_table(table))
    assert table["codes"] == ["wA", "wM"] and table["num_train"] + table["num_test"] == 240
    for factor in APPEARANCE_FACTORS:
        assert table["accuracy"][factor]["wA"] > 0.9
        assert table["accuracy"][factor]["wM"] < table["chance"][factor] + 0.2
    for factor in MOTION_FACTORS:
        assert table["accuracy"][factor]["wM"] > 0.9
        assert table["accuracy"][factor]["wA"] < table["chance"][factor] + 0.2
    # Entangled: both codes carry both kinds of factor.
    mixed = _lookup_encoder(videos, data.factors, list(SPRITE_FACTORS), list(SPRITE_FACTORS))
    table = encoder_factor_table(mixed, videos, data.factors, num_classes=classes, batch_size=32)
    for factor in ("colour", "direction"):
        assert min(table["accuracy"][factor].values()) > 0.6
    markdown = format_factor_table(table)
    assert markdown.splitlines()[0] == "| factor | wA | wM | chance |"
    assert len(markdown.splitlines()) == 2 + len(SPRITE_FACTORS)


def test_factor_predictability_is_deterministic_and_checks_sizes():
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 3, 90)
    codes = {
        "good": np.eye(3)[labels] + 0.1 * rng.standard_normal((90, 3)),
        "noise": rng.random((90, 5)),
    }
    first = factor_predictability(codes, {"f": labels}, seed=4)
    assert first == factor_predictability(codes, {"f": labels}, seed=4)
    assert first["accuracy"]["f"]["good"] == 1.0
    assert first["accuracy_sem"]["f"]["good"] == 0.0  # binomial: none at p = 1
    noise = first["accuracy"]["f"]["noise"]
    assert first["num_test"] == 45
    assert first["accuracy_sem"]["f"]["noise"] == pytest.approx(np.sqrt(noise * (1 - noise) / 45))
    assert " ± " in format_factor_table(first)
    assert first["accuracy"]["f"]["noise"] < 0.7
    assert 0.2 < first["chance"]["f"] < 0.6
    with pytest.raises(ValueError, match="same videos"):
        factor_predictability({"a": codes["good"][:10]}, {"f": labels})


def test_appearance_wrapper_and_raft_encoder_features(raft_small):
    from avlae_keras.metrics import appearance_consistency, raft_encoder_features

    good = appearance_consistency(disentangled, LATENT, num_pairs=6, seed=2)
    bad = appearance_consistency(entangled, LATENT, num_pairs=6, seed=2)
    assert good["ratio"] < 0.1 < 0.5 < bad["ratio"]
    features = raft_encoder_features(raft_small)
    rng = np.random.default_rng(0)
    videos = disentangled(rng.standard_normal((2, LATENT)), rng.standard_normal((2, LATENT)))
    values = features(videos)
    assert values.shape == (2, 128) and np.isfinite(values).all()
    np.testing.assert_allclose(features(videos[:1]), values[:1], rtol=1e-4, atol=1e-5)


def difference_flow(frames_a, frames_b):
    """A deterministic stand-in for RAFT: per-pixel colour change, (N, H, W, 2)."""
    return (np.asarray(frames_b) - np.asarray(frames_a))[..., :2] * 3.0


def test_batched_flows_equal_one_by_one(raft_small):
    rng = np.random.default_rng(0)
    videos = disentangled(rng.standard_normal((5, LATENT)), rng.standard_normal((5, LATENT)))
    calls = []

    def counted(a, b):
        calls.append(len(a))
        return difference_flow(a, b)

    one = video_flows(videos, counted, batch_size=1)
    assert calls == [1] * 15
    calls.clear()
    batched = video_flows(videos, counted, batch_size=4)  # 15 frame pairs: the last batch padded
    assert calls == [4] * 4
    np.testing.assert_array_equal(batched, one)
    assert batched.shape == (5, FRAMES - 1, SIZE, SIZE, 2)
    # RAFT itself: a batch gives each frame pair the flow it gets alone.
    flow_fn = raft_flow_fn(raft_small, iters=2, min_size=None, jit_compile=False)
    alone = video_flows(videos[:1], flow_fn, batch_size=1)
    together = video_flows(videos[:1], flow_fn, batch_size=8)
    np.testing.assert_allclose(together, alone, atol=1e-3)
    # The consistency metrics batch the flows of all their videos together.
    options = dict(flow_fn=difference_flow, num_pairs=5, batch_size=2, seed=3)
    small = latent_swap_consistency(disentangled, LATENT, flow_batch_size=1, **options)
    large = latent_swap_consistency(disentangled, LATENT, flow_batch_size=7, **options)
    assert small == large


class ConstantRAFT:
    """Reports a flow of (1, 2) pixels at whatever size it is given, and that size."""

    def __init__(self):
        self.sizes = []

    def compute_flow(self, image1, image2, iters):
        batch, height, width = image1.shape[:3]
        self.sizes.append((height, width))
        flow = np.broadcast_to(np.float32([1.0, 2.0]), (batch, height, width, 2))
        return None, flow


def test_flow_resolution_choice():
    assert flow_scale_factor(32, 32, 64) == 2
    assert flow_scale_factor(32, 48, 64) == 2
    assert flow_scale_factor(20, 30, 64) == 4  # the smallest integer factor reaching 64
    assert flow_scale_factor(64, 64, 64) == flow_scale_factor(128, 96, 64) == 1
    assert flow_scale_factor(32, 32, None) == flow_scale_factor(32, 32, 0) == 1
    frames = np.zeros((3, 20, 30, 3), np.float32)
    for min_size, factor in ((64, 4), (None, 1)):
        raft = ConstantRAFT()
        flow = raft_flow_fn(raft, min_size=min_size, jit_compile=False)(frames, frames)
        assert raft.sizes == [(20 * factor, 30 * factor)]
        # Back at the frames' own size, in their pixels.
        assert flow.shape == (3, 20, 30, 2)
        np.testing.assert_allclose(flow[..., 0], 1.0 / factor)
        np.testing.assert_allclose(flow[..., 1], 2.0 / factor)


def test_standard_errors_match_the_bootstrap():
    rng = np.random.default_rng(0)
    common = rng.gamma(2.0, 1.0, 400)  # a shared reference makes the two distances correlated
    shared = 0.5 * common + rng.gamma(1.0, 0.3, 400)
    neither = common + rng.gamma(1.0, 0.5, 400)
    assert standard_error(shared) == pytest.approx(shared.std(ddof=1) / 20)
    assert np.isnan(standard_error([1.0])) and np.isnan(ratio_standard_error([1.0], [2.0]))
    draws = rng.integers(0, 400, (2000, 400))
    bootstrap = (shared[draws].mean(axis=1) / neither[draws].mean(axis=1)).std()
    assert ratio_standard_error(shared, neither) == pytest.approx(bootstrap, rel=0.1)
    # Ignoring the correlation (independent errors) would overstate it.
    ratio = shared.mean() / neither.mean()
    independent = ratio * np.hypot(
        standard_error(shared) / shared.mean(), standard_error(neither) / neither.mean()
    )
    assert ratio_standard_error(shared, neither) < 0.8 * independent


def test_auto_sizes_follow_the_device(monkeypatch):
    sizes = {"cpu": 3, "accelerator": 5}
    assert auto_size(7, sizes) == 7
    monkeypatch.setattr(backend, "accelerator_present", lambda: True)
    assert auto_size(None, sizes) == auto_size("auto", sizes) == 5
    monkeypatch.setattr(backend, "accelerator_present", lambda: False)
    assert auto_size(None, sizes) == 3
    result = latent_swap_consistency(disentangled, LATENT, feature_fn=colour_histogram_features())
    assert result["appearance"]["num_pairs"] == disentanglement.AUTO_NUM_PAIRS["cpu"]
