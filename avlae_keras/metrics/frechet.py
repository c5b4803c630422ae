"""Frechet distance between Gaussians fitted to feature sets (the distance behind FID and FVD).

Everything here runs in NumPy float64: the distance is a difference of large traces, and float32
loses several digits of it for the 400- and 2048-dimensional features of I3D and ResNeXt.
"""

from __future__ import annotations

import dataclasses
import os
from typing import Literal

import numpy as np
import scipy.linalg

from flows.atomic_files import atomic_path


def _psd_sqrt(matrix: np.ndarray) -> np.ndarray:
    """Square root of a symmetric positive semi-definite matrix by eigen-decomposition."""
    eigenvalues, eigenvectors = np.linalg.eigh(matrix)
    # Rounding makes the zero eigenvalues of a rank-deficient covariance slightly negative.
    roots = np.sqrt(np.clip(eigenvalues, 0.0, None))
    return (eigenvectors * roots) @ eigenvectors.T


def trace_sqrt_product(sigma1: np.ndarray, sigma2: np.ndarray) -> float:
    """`tr(sqrtm(sigma1 @ sigma2))` for symmetric positive semi-definite matrices.

    `sigma1 @ sigma2` is not symmetric, so its general square root (Schur-based, as in
    `scipy.linalg.sqrtm`) can pick up imaginary parts and fails on singular products. It has the
    same eigenvalues as the symmetric `sqrt(sigma1) @ sigma2 @ sqrt(sigma1)`, whose square root a
    symmetric eigen-decomposition gives stably.
    """
    root1 = _psd_sqrt(sigma1)
    product = root1 @ sigma2 @ root1
    product = 0.5 * (product + product.T)
    eigenvalues = np.linalg.eigvalsh(product)
    return float(np.sum(np.sqrt(np.clip(eigenvalues, 0.0, None))))


def _trace_sqrt_product_scipy(sigma1: np.ndarray, sigma2: np.ndarray, eps: float) -> float:
    """The classic FID computation: `scipy.linalg.sqrtm`, adding `eps * I` if it is singular."""
    covmean = scipy.linalg.sqrtm(sigma1 @ sigma2)
    if not np.isfinite(covmean).all():
        offset = np.eye(sigma1.shape[0]) * eps
        covmean = scipy.linalg.sqrtm((sigma1 + offset) @ (sigma2 + offset))
    if np.iscomplexobj(covmean):
        covmean = covmean.real
    return float(np.trace(covmean))


def _as_float64(name: str, array, ndim: int) -> np.ndarray:
    array = np.asarray(array, dtype=np.float64)
    if array.ndim != ndim:
        raise ValueError(f"{name} must have {ndim} dimension(s), got shape {array.shape}")
    return array


def frechet_distance(
    mu1: np.ndarray,
    sigma1: np.ndarray,
    mu2: np.ndarray,
    sigma2: np.ndarray,
    method: Literal["eigh", "sqrtm"] = "eigh",
    eps: float = 1e-6,
) -> float:
    """Squared Frechet distance between N(mu1, sigma1) and N(mu2, sigma2).

    `||mu1 - mu2||^2 + tr(sigma1) + tr(sigma2) - 2 tr(sqrtm(sigma1 sigma2))`, in float64.
    `method="eigh"` (default) uses the symmetric eigen-decomposition of `trace_sqrt_product`;
    `method="sqrtm"` reproduces the common scipy-based implementation (with its `eps * I`
    fallback for singular products) for comparison with numbers computed that way.
    """
    mu1 = _as_float64("mu1", mu1, 1)
    mu2 = _as_float64("mu2", mu2, 1)
    sigma1 = _as_float64("sigma1", sigma1, 2)
    sigma2 = _as_float64("sigma2", sigma2, 2)
    dim = mu1.shape[0]
    if mu2.shape != (dim,) or sigma1.shape != (dim, dim) or sigma2.shape != (dim, dim):
        raise ValueError(
            "inconsistent shapes: "
            f"mu1 {mu1.shape}, sigma1 {sigma1.shape}, mu2 {mu2.shape}, sigma2 {sigma2.shape}"
        )
    if method == "eigh":
        trace_covmean = trace_sqrt_product(sigma1, sigma2)
    elif method == "sqrtm":
        trace_covmean = _trace_sqrt_product_scipy(sigma1, sigma2, eps)
    else:
        raise ValueError(f"method must be 'eigh' or 'sqrtm', got {method!r}")
    diff = mu1 - mu2
    return float(diff @ diff + np.trace(sigma1) + np.trace(sigma2) - 2.0 * trace_covmean)


@dataclasses.dataclass(frozen=True)
class FeatureStatistics:
    """Mean, covariance (unbiased, `ddof=1`) and sample count of a feature set."""

    mean: np.ndarray
    covariance: np.ndarray
    count: int

    def save(self, path: str | os.PathLike, key: str = "") -> None:
        """Writes the statistics (and a cache key) to `.npz`, atomically."""
        with atomic_path(path) as temporary, open(temporary, "wb") as handle:
            np.savez(
                handle,
                mean=self.mean,
                covariance=self.covariance,
                count=np.int64(self.count),
                key=np.str_(key),
            )

    @classmethod
    def load(cls, path: str | os.PathLike) -> tuple[FeatureStatistics, str]:
        """Reads statistics written by `save`; returns them with the stored cache key."""
        with np.load(os.fspath(path), allow_pickle=False) as data:
            stats = cls(
                mean=np.asarray(data["mean"], dtype=np.float64),
                covariance=np.asarray(data["covariance"], dtype=np.float64),
                count=int(data["count"]),
            )
            key = str(data["key"]) if "key" in data else ""
        return stats, key


class RunningStatistics:
    """Accumulates mean and covariance over batches of features in float64.

    Sums are taken around a shift (the first batch's mean) so that features with a large mean and
    small spread do not lose their covariance to cancellation.
    """

    def __init__(self) -> None:
        self._shift: np.ndarray | None = None
        self._sum: np.ndarray | None = None
        self._outer: np.ndarray | None = None
        self.count = 0

    def update(self, features: np.ndarray) -> None:
        features = np.asarray(features, dtype=np.float64)
        if features.ndim != 2:
            raise ValueError(f"features must be (batch, dim), got shape {features.shape}")
        if features.shape[0] == 0:
            return
        if self._shift is None:
            self._shift = features.mean(axis=0)
            dim = features.shape[1]
            self._sum = np.zeros(dim)
            self._outer = np.zeros((dim, dim))
        elif features.shape[1] != self._shift.shape[0]:
            raise ValueError(
                f"feature dimension changed from {self._shift.shape[0]} to {features.shape[1]}"
            )
        centered = features - self._shift
        self._sum += centered.sum(axis=0)
        self._outer += centered.T @ centered
        self.count += features.shape[0]

    def result(self) -> FeatureStatistics:
        if self.count < 2:
            raise ValueError(f"a covariance needs at least 2 samples, got {self.count}")
        mean_centered = self._sum / self.count
        covariance = (self._outer - self.count * np.outer(mean_centered, mean_centered)) / (
            self.count - 1
        )
        covariance = 0.5 * (covariance + covariance.T)
        return FeatureStatistics(self._shift + mean_centered, covariance, self.count)


def feature_statistics(features: np.ndarray) -> FeatureStatistics:
    """Mean and unbiased covariance of `features` of shape (num_samples, dim), in float64."""
    features = np.asarray(features, dtype=np.float64)
    if features.ndim != 2:
        raise ValueError(f"features must be (num_samples, dim), got shape {features.shape}")
    if features.shape[0] < 2:
        raise ValueError(f"a covariance needs at least 2 samples, got {features.shape[0]}")
    return FeatureStatistics(
        features.mean(axis=0),
        np.atleast_2d(np.cov(features, rowvar=False)),
        int(features.shape[0]),
    )


def frechet_distance_from_statistics(
    stats1: FeatureStatistics, stats2: FeatureStatistics, **kwargs
) -> float:
    """`frechet_distance` between two `FeatureStatistics`."""
    return frechet_distance(
        stats1.mean, stats1.covariance, stats2.mean, stats2.covariance, **kwargs
    )
