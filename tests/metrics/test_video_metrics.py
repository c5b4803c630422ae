import keras
import numpy as np
import pytest
from reference_ops import random_state

from avlae_keras.metrics import (
    KINETICS_MEAN,
    FeatureExtractor,
    I3DFeatureExtractor,
    InceptionI3D,
    ResNeXt3D,
    ResNeXtFeatureExtractor,
    compute_fvd,
    compute_inception_score,
    compute_video_fid,
    downsample_videos,
    frechet_distance_from_statistics,
    generated_feature_statistics,
    i3d_state_dict_shapes,
    load_resnext3d_weights,
    real_feature_statistics,
    resnext3d_state_dict_shapes,
)
from tests.torch_format import write_torch_zip


class MomentExtractor:
    """A cheap stand-in extractor: per-channel means and spreads of each video."""

    name = "moments"

    def __init__(self):
        self.calls = 0
        self.shapes = []

    def __call__(self, videos):
        self.calls += 1
        self.shapes.append(videos.shape)
        videos = np.asarray(videos, np.float64)
        return np.concatenate([videos.mean(axis=(1, 2, 3)), videos.std(axis=(1, 2, 3))], axis=1)


def video_source(seed, shift=0.0, size=16):
    rng = np.random.default_rng(seed)

    def generate(n):
        base = rng.uniform(-0.5, 0.5, (n, 1, 1, 1, 3)) + shift
        return np.clip(base + 0.2 * rng.standard_normal((n, 4, size, size, 3)), -1, 1)

    return generate


def real_batches(seed, count, batch=10, shift=0.0, size=16):
    generate = video_source(seed, shift, size)
    return [generate(min(batch, count - start)) for start in range(0, count, batch)]


def test_downsample_is_area_averaging():
    rng = np.random.default_rng(0)
    videos = rng.standard_normal((2, 3, 128, 128, 3)).astype("float32")
    small = downsample_videos(videos, 64)
    expected = videos.reshape(2, 3, 64, 2, 64, 2, 3).mean(axis=(3, 5))
    np.testing.assert_allclose(small, expected, rtol=1e-5, atol=1e-6)
    # A non-integer factor keeps constants and the frame mean.
    odd = downsample_videos(videos[:, :, :96, :80], 64)
    assert odd.shape == (2, 3, 64, 64, 3)
    np.testing.assert_allclose(
        odd.mean(axis=(2, 3)), videos[:, :, :96, :80].mean(axis=(2, 3)), atol=1e-5
    )
    np.testing.assert_allclose(downsample_videos(np.ones((1, 1, 96, 96, 1)), 64), 1.0, atol=1e-6)
    assert downsample_videos(small, 64) is small


def test_fid_is_small_for_matching_and_large_for_shifted_generators():
    extractor = MomentExtractor()
    assert isinstance(extractor, FeatureExtractor)
    real = real_batches(1, 400)
    same = compute_video_fid(video_source(2), real, extractor, 400, 32, (None, 8), verbose=0)
    shifted = compute_video_fid(
        video_source(3, shift=0.3), real, extractor, 400, 32, (None, 8), verbose=0
    )
    assert set(same) == {None, 8}
    assert same[None] < 0.05 < 0.2 < shifted[None]
    assert shifted[8] > 0.2
    assert (32, 4, 8, 8, 3) in extractor.shapes and (32, 4, 16, 16, 3) in extractor.shapes


def test_generated_statistics_use_exactly_num_samples():
    extractor = MomentExtractor()
    calls = []

    def generate(n):
        calls.append(n)
        return video_source(0)(n)

    stats = generated_feature_statistics(generate, extractor, 50, 16, verbose=0)
    assert stats[None].count == 50
    assert calls == [16, 16, 16, 16]  # the last batch is generated full and cut


def test_generated_videos_are_clipped_not_rescaled():
    extractor = MomentExtractor()
    loud = generated_feature_statistics(
        lambda n: np.full((n, 2, 4, 4, 3), 3.0), extractor, 4, 4, verbose=0
    )
    np.testing.assert_allclose(loud[None].mean[:3], 1.0)
    with pytest.raises(ValueError, match="non-finite"):
        generated_feature_statistics(
            lambda n: np.full((n, 2, 4, 4, 3), np.nan), extractor, 4, 4, verbose=0
        )


def test_real_statistics_are_cached_by_fingerprint(tmp_path):
    extractor = MomentExtractor()
    loads = []

    def load_real():
        loads.append(1)
        return iter(real_batches(4, 60))

    kwargs = {"cache_dir": tmp_path, "verbose": 0, "resolutions": (None, 8)}
    first = real_feature_statistics(load_real, extractor, fingerprint="v1", **kwargs)
    again = real_feature_statistics(load_real, extractor, fingerprint="v1", **kwargs)
    assert len(loads) == 1
    for resolution in (None, 8):
        np.testing.assert_array_equal(first[resolution].covariance, again[resolution].covariance)
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "real_moments_8.npz",
        "real_moments_native.npz",
    ]
    real_feature_statistics(load_real, extractor, fingerprint="v2", **kwargs)
    assert len(loads) == 2
    capped = real_feature_statistics(
        load_real, extractor, fingerprint="v2", num_samples=25, **kwargs
    )
    assert len(loads) == 3 and capped[None].count == 25
    with pytest.raises(ValueError, match="fingerprint"):
        real_feature_statistics(load_real, extractor, cache_dir=tmp_path, verbose=0)
    with pytest.raises(ValueError, match="ran out"):
        real_feature_statistics(real_batches(4, 20), extractor, num_samples=30, verbose=0)


def test_cached_fid_equals_direct_computation(tmp_path):
    extractor = MomentExtractor()
    real = real_batches(5, 100)
    direct = compute_fvd(video_source(6), real, extractor, 64, 16, (None,), verbose=0)
    cached = compute_fvd(
        video_source(6),
        real,
        extractor,
        64,
        16,
        (None,),
        cache_dir=tmp_path,
        fingerprint="x",
        verbose=0,
    )
    assert cached[None] == pytest.approx(direct[None], rel=1e-9)


def test_inception_score_driver():
    classes = 4
    counter = iter(range(10**6))

    def generate(n):
        return np.stack(
            [np.full((2, 4, 4, 3), next(counter) % classes, "float32") for _ in range(n)]
        )

    def classifier(videos):  # confident and balanced: the label is the pixel value
        labels = np.round(videos[:, 0, 0, 0, 0] * 1.0).astype(int)
        return 50.0 * np.eye(classes)[labels]

    mean, std = compute_inception_score(
        generate, classifier, num_samples=40, batch_size=8, splits=10, clip=False, verbose=0
    )
    assert mean == pytest.approx(classes, rel=1e-6) and std < 1e-6


# Outputs of PyTorch reference models (the layouts of piergiaj/pytorch-i3d and
# kenshohara/3D-ResNets-PyTorch, narrowed the same way) on the weights and inputs of the two tests
# below, computed once with torch 2.13 (F.interpolate bilinear, align_corners=False, for I3D).
TORCH_I3D_LOGITS = [
    [0.16508231, -0.12256132, 0.71305060, 0.71954978, -0.03093174],
    [0.05746012, -0.16498676, 0.64047462, 0.64894152, -0.08585355],
]
TORCH_RESNEXT_PROJECTED = [  # features @ default_rng(10).standard_normal((128, 3))
    [2995.836934, -2024.302576, -4370.560992],
    [1355.161455, -1510.137692, -2657.905591],
]


@pytest.fixture(scope="module")
def narrow_i3d_weights(tmp_path_factory):
    path = tmp_path_factory.mktemp("i3d_extractor") / "rgb_imagenet.pt"
    write_torch_zip(path, random_state(i3d_state_dict_shapes(num_classes=5, width=1 / 16), 7))
    return path


def test_i3d_extractor_resizes_and_averages_logits(narrow_i3d_weights):
    model = InceptionI3D(
        num_classes=5, width=1 / 16, logits_pool_size=(1, 1, 1), weight_init="constant"
    )
    extractor = I3DFeatureExtractor(narrow_i3d_weights, model=model, num_frames=8, size=32)
    rng = np.random.default_rng(8)
    videos = rng.uniform(-1, 1, (2, 10, 24, 24, 3)).astype("float32")
    features = extractor(videos)
    assert features.shape == (2, 5)
    frames = keras.ops.image.resize(videos[:, :8].reshape(-1, 24, 24, 3), (32, 32))
    frames = keras.ops.convert_to_numpy(frames).reshape(2, 8, 32, 32, 3)
    # Compiled: op-by-op JAX would compile every layer shape separately.
    per_time = model.predict_on_batch(frames)
    assert per_time.shape == (2, 1, 5)
    np.testing.assert_allclose(features, per_time.mean(axis=1), rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(features, TORCH_I3D_LOGITS, rtol=1e-4, atol=1e-4)
    with pytest.raises(ValueError, match="8 frames"):
        extractor(videos[:, :6])


def test_resnext_extractor_normalises_like_hara_et_al():
    narrow = {"layers": (1, 1, 1, 1), "cardinality": 4, "block_planes": (32, 32, 64, 64)}
    state = random_state(resnext3d_state_dict_shapes(stem_channels=8, num_classes=None, **narrow))
    model = ResNeXt3D(
        stem_channels=8,
        sample_size=32,
        sample_duration=8,
        include_top=False,
        weight_init="constant",
        **narrow,
    )
    load_resnext3d_weights(model, state)
    extractor = ResNeXtFeatureExtractor(model=model, num_frames=8, size=32)
    assert extractor.model.scale == 127.5
    np.testing.assert_allclose(
        np.asarray(extractor.model.offset) + np.asarray(KINETICS_MEAN), 127.5
    )
    videos = np.random.default_rng(9).uniform(-1, 1, (2, 8, 32, 32, 3)).astype("float32")
    features = extractor(videos)
    assert features.shape == (2, 128)
    projection = np.random.default_rng(10).standard_normal((128, 3))
    np.testing.assert_allclose(features @ projection, TORCH_RESNEXT_PROJECTED, rtol=1e-4)
    # With the first two videos swapped, features follow (no batch-level normalisation).
    np.testing.assert_allclose(extractor(videos[::-1]), features[::-1], rtol=1e-4, atol=1e-4)
    config = extractor.model.get_config()
    revived = type(extractor.model).from_config(config)
    assert revived.get_config() == config


def test_frechet_from_statistics_is_symmetric():
    extractor = MomentExtractor()
    a = real_feature_statistics(real_batches(10, 50), extractor, verbose=0)[None]
    b = real_feature_statistics(real_batches(11, 50, shift=0.2), extractor, verbose=0)[None]
    assert frechet_distance_from_statistics(a, b) == pytest.approx(
        frechet_distance_from_statistics(b, a), rel=1e-6
    )
