import numpy as np
import pytest
import scipy.linalg

from avlae_keras.metrics import (
    FeatureStatistics,
    RunningStatistics,
    feature_statistics,
    frechet_distance,
)


def scipy_reference(mu1, sigma1, mu2, sigma2):
    covmean = scipy.linalg.sqrtm(sigma1 @ sigma2).real
    diff = mu1 - mu2
    return diff @ diff + np.trace(sigma1) + np.trace(sigma2) - 2 * np.trace(covmean)


def random_gaussian(rng, dim, samples, shift=0.0):
    mixing = rng.standard_normal((dim, dim)) / np.sqrt(dim)
    features = rng.standard_normal((samples, dim)) @ mixing + shift + rng.standard_normal(dim)
    stats = feature_statistics(features)
    return stats.mean, stats.covariance


def test_distance_of_a_set_to_itself_is_zero():
    rng = np.random.default_rng(0)
    mu, sigma = random_gaussian(rng, 64, 500)
    assert abs(frechet_distance(mu, sigma, mu, sigma)) < 1e-9 * np.trace(sigma)
    assert abs(frechet_distance(mu, sigma, mu, sigma, method="sqrtm")) < 1e-6 * np.trace(sigma)


def test_equal_covariances_give_squared_mean_distance():
    rng = np.random.default_rng(1)
    mu, sigma = random_gaussian(rng, 32, 300)
    shift = rng.standard_normal(32)
    expected = shift @ shift
    assert frechet_distance(mu, sigma, mu + shift, sigma) == pytest.approx(expected, rel=1e-9)
    # and it grows with the shift
    distances = [frechet_distance(mu, sigma, mu + s * shift, sigma) for s in (0.5, 1.0, 2.0)]
    assert distances[0] < distances[1] < distances[2]


@pytest.mark.parametrize("dim", [8, 64, 256])
@pytest.mark.parametrize("method", ["eigh", "sqrtm"])
def test_matches_scipy_reference(dim, method):
    rng = np.random.default_rng(dim)
    mu1, sigma1 = random_gaussian(rng, dim, 4 * dim)
    mu2, sigma2 = random_gaussian(rng, dim, 4 * dim, shift=0.3)
    expected = scipy_reference(mu1, sigma1, mu2, sigma2)
    got = frechet_distance(mu1, sigma1, mu2, sigma2, method=method)
    assert got == pytest.approx(expected, rel=1e-6)


def test_rank_deficient_covariances_stay_finite():
    rng = np.random.default_rng(3)
    mu1, sigma1 = random_gaussian(rng, 64, 20)  # 20 samples: rank 19 of 64
    mu2, sigma2 = random_gaussian(rng, 64, 20)
    distance = frechet_distance(mu1, sigma1, mu2, sigma2)
    assert np.isfinite(distance) and distance > 0
    # sqrt of the ~1e-16 eigenvalues of the null space leaves ~1e-8 each
    assert abs(frechet_distance(mu1, sigma1, mu1, sigma1)) < 1e-6 * np.trace(sigma1)


def test_rejects_inconsistent_shapes():
    with pytest.raises(ValueError, match="inconsistent shapes"):
        frechet_distance(np.zeros(3), np.eye(3), np.zeros(4), np.eye(4))
    with pytest.raises(ValueError, match="method"):
        frechet_distance(np.zeros(3), np.eye(3), np.zeros(3), np.eye(3), method="nope")


def test_feature_statistics_and_running_statistics_agree():
    rng = np.random.default_rng(4)
    # A large offset with a small spread: naive sums of squares would lose the covariance.
    features = 1e6 + rng.standard_normal((103, 5)) @ rng.standard_normal((5, 5))
    stats = feature_statistics(features)
    np.testing.assert_allclose(stats.mean, features.mean(axis=0), rtol=1e-12)
    np.testing.assert_allclose(stats.covariance, np.cov(features, rowvar=False), rtol=1e-10)
    assert stats.count == 103
    running = RunningStatistics()
    for start in range(0, 103, 16):
        running.update(features[start : start + 16])
    streamed = running.result()
    assert streamed.count == 103
    np.testing.assert_allclose(streamed.mean, stats.mean, rtol=1e-12)
    np.testing.assert_allclose(streamed.covariance, stats.covariance, rtol=1e-8, atol=1e-10)


def test_statistics_npz_round_trip(tmp_path):
    rng = np.random.default_rng(5)
    stats = feature_statistics(rng.standard_normal((10, 3)))
    path = tmp_path / "sub" / "stats.npz"
    stats.save(path, key="abc")
    loaded, key = FeatureStatistics.load(path)
    assert key == "abc" and loaded.count == 10
    np.testing.assert_array_equal(loaded.mean, stats.mean)
    np.testing.assert_array_equal(loaded.covariance, stats.covariance)
    assert [p.name for p in path.parent.iterdir()] == ["stats.npz"]


def test_statistics_need_two_samples():
    with pytest.raises(ValueError, match="at least 2"):
        feature_statistics(np.zeros((1, 4)))
