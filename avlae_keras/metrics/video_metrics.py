"""Drivers for video FID / FVD and the Inception Score of a video generator.

Generated videos go straight from `generate_fn` to the extractor as floats in [-1, 1]: no
per-batch min-max normalisation and no encoding to a (lossy) video format in between. Every
metric can be computed at the generator's resolution (`None`) and after an area downsampling to
a square size (64 for "AVLAE-64"); real videos get the same treatment.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any

import keras
import numpy as np

from avlae_keras.metrics.extractors import FeatureExtractor, to_float32_array
from avlae_keras.metrics.frechet import (
    FeatureStatistics,
    RunningStatistics,
    frechet_distance_from_statistics,
)
from avlae_keras.metrics.inception_score import inception_score

Resolution = int | None
GenerateFn = Callable[[int], Any]
RealBatches = Iterable[Any] | Callable[[], Iterable[Any]]


def _area_matrix(size_in: int, size_out: int) -> np.ndarray:
    """(size_out, size_in) weights averaging the input cells each output cell covers."""
    edges = np.arange(size_out + 1) * (size_in / size_out)
    starts, ends = edges[:-1, None], edges[1:, None]
    cells = np.arange(size_in)[None, :]
    overlap = np.clip(np.minimum(ends, cells + 1) - np.maximum(starts, cells), 0.0, None)
    return overlap / overlap.sum(axis=1, keepdims=True)


def downsample_videos(videos: np.ndarray, size: int = 64) -> np.ndarray:
    """Area-averages the frames of (batch, time, height, width, channels) videos to size x size.

    For an integer factor this is plain average pooling; otherwise each output pixel averages
    the input pixels it covers, weighted by the covered fraction. Videos already at `size` are
    returned unchanged.
    """
    videos = np.asarray(videos)
    if videos.ndim != 5:
        raise ValueError(f"videos must be (batch, time, height, width, channels): {videos.shape}")
    height, width = videos.shape[2:4]
    if (height, width) == (size, size):
        return videos
    if height % size == 0 and width % size == 0:
        fh, fw = height // size, width // size
        shape = (*videos.shape[:2], size, fh, size, fw, videos.shape[-1])
        return videos.reshape(shape).mean(axis=(3, 5), dtype=np.float64).astype(np.float32)
    rows, cols = _area_matrix(height, size), _area_matrix(width, size)
    out = np.einsum("ih,bthwc,jw->btijc", rows, videos.astype(np.float64), cols, optimize=True)
    return out.astype(np.float32)


def _at_resolution(videos: np.ndarray, resolution: Resolution) -> np.ndarray:
    return videos if resolution is None else downsample_videos(videos, resolution)


def _resolution_label(resolution: Resolution) -> str:
    return "native" if resolution is None else str(resolution)


def _generated_batches(
    generate_fn: GenerateFn, num_samples: int, batch_size: int, clip: bool, verbose: int
) -> Iterator[tuple[np.ndarray, int]]:
    """Yields (full batch, how many of its samples count) until `num_samples` are produced.

    The last batch is generated at full size and cut afterwards, so the generator and the
    extractor always see one batch shape (no recompilation).
    """
    if num_samples < 1 or batch_size < 1:
        raise ValueError(
            f"num_samples and batch_size must be positive: {num_samples}, {batch_size}"
        )
    progbar = keras.utils.Progbar(num_samples, verbose=verbose, unit_name="video")
    done = 0
    while done < num_samples:
        videos = to_float32_array(generate_fn(batch_size))
        if videos.ndim != 5 or videos.shape[0] != batch_size:
            raise ValueError(
                f"generate_fn({batch_size}) must return (batch, time, height, width, 3) videos; "
                f"got shape {videos.shape}"
            )
        if not np.isfinite(videos).all():
            raise ValueError("generate_fn returned non-finite values")
        if clip:
            videos = np.clip(videos, -1.0, 1.0)
        keep = min(batch_size, num_samples - done)
        yield videos, keep
        done += keep
        progbar.update(done)


def generated_feature_statistics(
    generate_fn: GenerateFn,
    extractor: FeatureExtractor,
    num_samples: int,
    batch_size: int,
    resolutions: Sequence[Resolution] = (None,),
    clip: bool = True,
    verbose: int = 1,
) -> dict[Resolution, FeatureStatistics]:
    """Feature statistics of `num_samples` generated videos at each of `resolutions`.

    `generate_fn(n)` returns n videos in [-1, 1], (n, time, height, width, 3), as a NumPy array or
    backend tensor. With `clip`, values outside [-1, 1] are clipped (no rescaling).
    """
    accumulators = {resolution: RunningStatistics() for resolution in resolutions}
    for videos, keep in _generated_batches(generate_fn, num_samples, batch_size, clip, verbose):
        for resolution, accumulator in accumulators.items():
            features = extractor(_at_resolution(videos, resolution))
            accumulator.update(np.asarray(features)[:keep])
    return {resolution: acc.result() for resolution, acc in accumulators.items()}


def _real_cache_key(
    fingerprint: str, extractor: FeatureExtractor, resolution: Resolution, num_samples: int | None
) -> str:
    return (
        f"fingerprint={fingerprint};extractor={extractor.name};"
        f"resolution={_resolution_label(resolution)};num_samples={num_samples}"
    )


def _real_cache_path(cache_dir: str | os.PathLike, extractor_name: str, resolution) -> str:
    safe_name = "".join(c if c.isalnum() or c in "-_." else "_" for c in extractor_name)
    return os.path.join(
        os.fspath(cache_dir), f"real_{safe_name}_{_resolution_label(resolution)}.npz"
    )


def real_feature_statistics(
    real_batches: RealBatches,
    extractor: FeatureExtractor,
    resolutions: Sequence[Resolution] = (None,),
    num_samples: int | None = None,
    cache_dir: str | os.PathLike | None = None,
    fingerprint: str | None = None,
    verbose: int = 1,
) -> dict[Resolution, FeatureStatistics]:
    """Feature statistics of real videos at each of `resolutions`, cached as `.npz`.

    `real_batches` yields batches of videos in [-1, 1], (batch, time, height, width, 3) (or
    tuples whose first element is that); it may be a zero-argument callable returning such an
    iterable, which is then only called when a statistic is not cached. `num_samples` caps the
    videos used (None: all). With `cache_dir`, statistics are stored per extractor and resolution
    together with a key made of `fingerprint` (which the caller must change whenever the real
    data or its preprocessing changes), the extractor's name, the resolution and `num_samples`;
    a cached file with another key is recomputed and overwritten.
    """
    if cache_dir is not None and not fingerprint:
        raise ValueError("a statistics cache needs a fingerprint of the real data")
    results: dict[Resolution, FeatureStatistics] = {}
    if cache_dir is not None:
        for resolution in resolutions:
            path = _real_cache_path(cache_dir, extractor.name, resolution)
            if os.path.isfile(path):
                stats, key = FeatureStatistics.load(path)
                if key == _real_cache_key(fingerprint, extractor, resolution, num_samples):
                    results[resolution] = stats
    missing = [r for r in resolutions if r not in results]
    if not missing:
        return results
    accumulators = {resolution: RunningStatistics() for resolution in missing}
    batches = real_batches() if callable(real_batches) else real_batches
    progbar = keras.utils.Progbar(num_samples, verbose=verbose, unit_name="video")
    done = 0
    for batch in batches:
        if num_samples is not None and done >= num_samples:
            break
        videos = to_float32_array(batch[0] if isinstance(batch, (tuple, list)) else batch)
        if num_samples is not None:
            videos = videos[: num_samples - done]
        for resolution, accumulator in accumulators.items():
            accumulator.update(extractor(_at_resolution(videos, resolution)))
        done += videos.shape[0]
        progbar.update(done)
    if num_samples is not None and done < num_samples:
        raise ValueError(f"real_batches ran out after {done} of {num_samples} videos")
    for resolution, accumulator in accumulators.items():
        results[resolution] = accumulator.result()
        if cache_dir is not None:
            key = _real_cache_key(fingerprint, extractor, resolution, num_samples)
            results[resolution].save(_real_cache_path(cache_dir, extractor.name, resolution), key)
    return {resolution: results[resolution] for resolution in resolutions}


def compute_video_fid(
    generate_fn: GenerateFn,
    real_batches: RealBatches,
    extractor: FeatureExtractor,
    num_samples: int = 5000,
    batch_size: int = 16,
    resolutions: Sequence[Resolution] = (None, 64),
    num_real_samples: int | None = None,
    cache_dir: str | os.PathLike | None = None,
    fingerprint: str | None = None,
    clip: bool = True,
    verbose: int = 1,
) -> dict[Resolution, float]:
    """Frechet distance between features of generated and real videos, per resolution.

    The defaults follow the paper's FID protocol (5,000 samples, at the training resolution and
    at 64x64 for "AVLAE-64"), to be used with a `ResNeXtFeatureExtractor`; `compute_fvd` is the
    same with I3D's 2,048-sample FVD defaults. Returns `{resolution: distance}` where `None` is
    the generator's own resolution. See `real_feature_statistics` for the cache.
    """
    real = real_feature_statistics(
        real_batches,
        extractor,
        resolutions,
        num_samples=num_real_samples,
        cache_dir=cache_dir,
        fingerprint=fingerprint,
        verbose=verbose,
    )
    fake = generated_feature_statistics(
        generate_fn, extractor, num_samples, batch_size, resolutions, clip=clip, verbose=verbose
    )
    return {r: frechet_distance_from_statistics(fake[r], real[r]) for r in resolutions}


def compute_fvd(
    generate_fn: GenerateFn,
    real_batches: RealBatches,
    extractor: FeatureExtractor,
    num_samples: int = 2048,
    batch_size: int = 16,
    resolutions: Sequence[Resolution] = (None, 64),
    num_real_samples: int | None = None,
    cache_dir: str | os.PathLike | None = None,
    fingerprint: str | None = None,
    clip: bool = True,
    verbose: int = 1,
) -> dict[Resolution, float]:
    """`compute_video_fid` with FVD's default of 2,048 samples, for an `I3DFeatureExtractor`."""
    return compute_video_fid(
        generate_fn,
        real_batches,
        extractor,
        num_samples=num_samples,
        batch_size=batch_size,
        resolutions=resolutions,
        num_real_samples=num_real_samples,
        cache_dir=cache_dir,
        fingerprint=fingerprint,
        clip=clip,
        verbose=verbose,
    )


def compute_inception_score(
    generate_fn: GenerateFn,
    classifier: Callable[[np.ndarray], Any],
    num_samples: int = 5000,
    batch_size: int = 16,
    splits: int = 10,
    from_logits: bool = True,
    resolution: Resolution = None,
    clip: bool = True,
    verbose: int = 1,
) -> tuple[float, float]:
    """Inception Score (mean, std over `splits`) of generated videos under `classifier`.

    `classifier` maps videos in [-1, 1] to class logits (or probabilities, with
    `from_logits=False`), (batch, num_classes) — e.g. an `I3DFeatureExtractor`, whose features
    are Kinetics-400 logits.
    """
    predictions = []
    for videos, keep in _generated_batches(generate_fn, num_samples, batch_size, clip, verbose):
        outputs = to_float32_array(classifier(_at_resolution(videos, resolution)))
        predictions.append(outputs[:keep].astype(np.float64))
    return inception_score(np.concatenate(predictions), splits=splits, from_logits=from_logits)
