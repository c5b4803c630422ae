"""Disentanglement metrics of a video generator with appearance (zA) and motion (zM) codes.

Three measurements, each taking plain callables so that any generator, encoder, flow or feature
function can be plugged in:

- Motion consistency (`motion_consistency`): the optical flow of videos that share zM but not zA
  should agree (motion is carried by zM). The distance of two videos is the mean end-point error
  (EPE) between their flow fields of consecutive frames, averaged over frame pairs and pixels. We
  report the mean distance of pairs sharing zM (`shared`) and of pairs sharing neither code
  (`neither`) and `ratio = shared / neither`: near 0 when zM alone fixes the motion, near 1 when
  zM has no say in it.
- Appearance consistency (`appearance_consistency`): the same with a frame descriptor, for videos
  sharing zA but not zM; `ratio` near 0 means zA alone fixes the appearance.
- Factor predictability (`factor_predictability`, `encoder_factor_table`): on data with known
  factors (sprites: shape, colour, background, direction, speed, trajectory), the held-out
  accuracy of predicting each factor from the encoders' wA and from their wM with a closed-form
  ridge one-vs-rest classifier on standardised codes; compare each with the chance level (the
  test accuracy of always answering the most frequent training class). Appearance factors should
  be predictable from wA and not from wM, motion factors the other way round.

Every number comes with its standard error (`*_sem`): over pairs for the consistency distances
(the delta method for their ratio), binomial over the test videos for the accuracies.
`auto_size` picks the default sample sizes: a few minutes on a 2-core CPU, more samples (the same
measurement, more precise) where a GPU or TPU is present.

Videos are (batch, time, height, width, 3) floats in [-1, 1] throughout.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import keras
import numpy as np

from avlae_keras import backend
from avlae_keras.metrics.extractors import to_float32_array

GenerateFn = Callable[[Any, Any], Any]  # (z_a, z_m) -> videos in [-1, 1]
EncodeFn = Callable[[Any], tuple[Any, Any]]  # videos -> (w_a, w_m)
FlowFn = Callable[[np.ndarray, np.ndarray], Any]  # frames (N, H, W, 3) x 2 -> flow (N, H, W, 2)
FeatureFn = Callable[[np.ndarray], Any]  # videos (N, T, H, W, 3) -> descriptors (N, D)

# Default sample sizes (`auto_size`). On a 2-core CPU, 32 pairs (672 RAFT-sintel flows of 32 px
# frames enlarged to 128 px, 0.33 CPU s each) and 512 held-out sprites take about 5 CPU-minutes
# in all; with an accelerator the flows cost little and the errors halve.
AUTO_NUM_PAIRS = {"cpu": 32, "accelerator": 256}
AUTO_NUM_FACTOR_VIDEOS = {"cpu": 512, "accelerator": 2048}


def auto_size(value: int | str | None, sizes: Mapping[str, int]) -> int:
    """`value`, or for None / "auto" `sizes["accelerator"]` when `accelerator_present()` and
    `sizes["cpu"]` otherwise (e.g. `AUTO_NUM_PAIRS`)."""
    if value is None or value == "auto":
        return int(sizes["accelerator" if backend.accelerator_present() else "cpu"])
    return int(value)


# --- pluggable flow and appearance descriptors -------------------------------------------------


def flow_scale_factor(height: int, width: int, min_size: int | None) -> int:
    """The integer factor by which `raft_flow_fn` enlarges (height, width) frames: the smallest
    one bringing the shorter side to at least `min_size` (1 when it already is, or when
    `min_size` is None or 0: the model's own resolution)."""
    if not min_size:
        return 1
    return max(1, -(-int(min_size) // min(int(height), int(width))))


def raft_flow_fn(
    raft=None,
    preset: str = "raft_small",
    iters: int = 12,
    min_size: int | None = 64,
    jit_compile: bool = True,
) -> FlowFn:
    """A `FlowFn` running RAFT (`flows.RAFT`, default preset `raft_small`) on frames in [-1, 1].

    Returns the flow in pixels of the given frames, (N, H, W, 2). RAFT works on a 1/8-resolution
    grid and was trained on images of hundreds of pixels; on small frames it underestimates
    motion and sees motion in static texture, so frames under `min_size` pixels are first
    enlarged bilinearly by `flow_scale_factor` (the smallest integer factor reaching it), and the
    flow is average-pooled back to the frames' own size and divided by that factor. On 32 px
    sprites, RAFT at the frames' own size is off by 1.2-1.5 px per pixel against the true flow;
    enlarged to 64 px, 0.6-0.7 px (`min_size=None` keeps the frames' own size).
    `jit_compile` runs RAFT through `flows.jit` (XLA on TensorFlow and JAX; one compilation
    per batch shape, which `video_flows` keeps fixed). The preset's weights come from
    `$FLOWS_WEIGHTS_DIR` or the flows cache (see the README's "RAFT weights offline").
    """
    if raft is None:
        from flows import RAFT

        raft = RAFT.from_preset(preset)

    def compute(images):
        half = images.shape[0] // 2
        return raft.compute_flow(images[:half], images[half:], iters=iters)[1]

    if jit_compile:  # inference only: the weights are traced in as constants
        from flows import jit

        compute = jit(compute)

    def flow(frames_a: np.ndarray, frames_b: np.ndarray):
        frames = np.concatenate([np.asarray(frames_a), np.asarray(frames_b)]).astype(np.float32)
        count, height, width = frames.shape[:3]
        factor = flow_scale_factor(height, width, min_size)
        images = (frames + 1.0) * 127.5
        if factor > 1:
            size = (height * factor, width * factor)
            images = keras.ops.image.resize(images, size, interpolation="bilinear")
        flow_up = to_float32_array(compute(keras.ops.convert_to_tensor(images)))
        if factor > 1:
            pooled = flow_up.reshape(count // 2, height, factor, width, factor, 2)
            flow_up = pooled.mean(axis=(2, 4)) / factor
        return flow_up

    return flow


def colour_histogram_features(bins: int = 4) -> FeatureFn:
    """A `FeatureFn`: the joint RGB histogram (`bins`^3 cells, fractions of pixels) of every
    frame, averaged over time.

    Why this descriptor: it is fixed (nothing learned, so it cannot drift with the model under
    test or share its biases, unlike the model's own EA), it describes what appearance means for
    the datasets we train on (the colours of the subject and of the background, and through the
    pixel counts roughly its size), and it is invariant to where things are in the frame and to
    the order of the frames, so pure motion (the subject moving, at any speed or along any path)
    leaves it unchanged. It ignores fine shape and texture; plug in `raft_encoder_features` (or
    any `FeatureFn`) where those matter.
    """

    def features(videos: np.ndarray) -> np.ndarray:
        videos = np.asarray(videos, np.float32)
        levels = np.clip(((videos + 1.0) * 0.5 * bins).astype(np.int64), 0, bins - 1)
        cells = (levels[..., 0] * bins + levels[..., 1]) * bins + levels[..., 2]
        batch = cells.shape[0]
        flat = cells.reshape(batch, -1) + np.arange(batch)[:, None] * bins**3
        counts = np.bincount(flat.ravel(), minlength=batch * bins**3).reshape(batch, bins**3)
        return (counts / cells[0].size).astype(np.float32)

    return features


def raft_encoder_features(raft=None, preset: str = "raft_small") -> FeatureFn:
    """A `FeatureFn`: RAFT's pretrained feature encoder (fnet) on every frame, average-pooled
    over space and time (128-d for RAFT-small, 256-d for RAFT).

    A fixed, generic descriptor of local structure (edges, shapes, textures) learned on flow
    data, not on the model under test. Its instance normalisation discards most of the absolute
    colour, so prefer `colour_histogram_features` when colour is the appearance of interest.
    """
    if raft is None:
        from flows import RAFT

        raft = RAFT.from_preset(preset)

    def features(videos: np.ndarray) -> np.ndarray:
        videos = np.asarray(videos, np.float32)
        batch, frames = videos.shape[:2]
        # RAFT normalises [0, 255] input to 2 * x / 255 - 1: our [-1, 1] frames exactly.
        maps = to_float32_array(raft.feature_encoder(videos.reshape(-1, *videos.shape[2:])))
        return maps.mean(axis=(1, 2)).reshape(batch, frames, -1).mean(axis=1)

    return features


# --- motion and appearance consistency ---------------------------------------------------------


def video_flows(
    videos: np.ndarray, flow_fn: FlowFn, batch_size: int = 64, progbar=None
) -> np.ndarray:
    """Flow of each consecutive frame pair: (B, T, H, W, 3) -> (B, T - 1, H, W, 2).

    `progbar` (a `keras.utils.Progbar`) is advanced by the frame pairs done."""
    videos = np.asarray(videos, np.float32)
    batch, frames = videos.shape[:2]
    if frames < 2:
        raise ValueError(f"flow needs videos of at least 2 frames, got {frames}")
    first = videos[:, :-1].reshape(-1, *videos.shape[2:])
    second = videos[:, 1:].reshape(-1, *videos.shape[2:])
    parts = []
    for i in range(0, len(first), batch_size):
        a, b = first[i : i + batch_size], second[i : i + batch_size]
        keep = len(a)
        if keep < batch_size and len(first) > batch_size:  # one shape: no recompilation
            a = np.concatenate([a, np.repeat(a[-1:], batch_size - keep, axis=0)])
            b = np.concatenate([b, np.repeat(b[-1:], batch_size - keep, axis=0)])
        parts.append(to_float32_array(flow_fn(a, b))[:keep])
        if progbar is not None:
            progbar.add(keep)
    flows = np.concatenate(parts)
    return flows.reshape(batch, frames - 1, *flows.shape[1:])


def end_point_error(flows_a: np.ndarray, flows_b: np.ndarray) -> np.ndarray:
    """Mean end-point error per video: (B, T-1, H, W, 2) x 2 -> (B,), in pixels."""
    difference = np.asarray(flows_a, np.float64) - np.asarray(flows_b, np.float64)
    return np.sqrt((difference**2).sum(axis=-1)).reshape(len(difference), -1).mean(axis=1)


def standard_error(values) -> float:
    """Standard error of the mean of `values` (sample spread, ddof=1); nan for one value."""
    values = np.asarray(values, np.float64).ravel()
    if len(values) < 2:
        return float("nan")
    return float(np.std(values, ddof=1) / np.sqrt(len(values)))


def ratio_standard_error(numerator, denominator) -> float:
    """Standard error of mean(numerator) / mean(denominator) over paired samples (the delta
    method: the spread of numerator - ratio * denominator, over the mean denominator); accounts
    for the correlation of the two within a pair."""
    numerator = np.asarray(numerator, np.float64).ravel()
    denominator = np.asarray(denominator, np.float64).ravel()
    mean = denominator.mean()
    if len(numerator) < 2 or mean <= 0:
        return float("nan")
    return float(standard_error(numerator - numerator.mean() / mean * denominator) / mean)


def _summary(shared: np.ndarray, neither: np.ndarray, **extra) -> dict[str, Any]:
    shared_mean, neither_mean = float(np.mean(shared)), float(np.mean(neither))
    return {
        "shared": shared_mean,
        "neither": neither_mean,
        "ratio": shared_mean / neither_mean if neither_mean > 0 else float("nan"),
        "shared_sem": standard_error(shared),
        "neither_sem": standard_error(neither),
        "ratio_sem": ratio_standard_error(shared, neither),
        "num_pairs": len(shared),
        **extra,
    }


def _latents(num_pairs: int, latent_dim: int, seed: int) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    return [rng.standard_normal((num_pairs, latent_dim)).astype(np.float32) for _ in range(4)]


def generate_from_latents(
    generate: GenerateFn, z_a, z_m, batch_size: int, progbar=None
) -> np.ndarray:
    """`generate(z_a, z_m)` over rows of the latents, `batch_size` at a time, as one float32
    array clipped to [-1, 1]; advances `progbar` (a keras Progbar) by each batch."""
    parts = []
    for i in range(0, len(z_a), batch_size):
        videos = to_float32_array(generate(z_a[i : i + batch_size], z_m[i : i + batch_size]))
        parts.append(np.clip(videos, -1.0, 1.0))
        if progbar is not None:
            progbar.add(len(videos))
    return np.concatenate(parts)


def latent_swap_consistency(
    generate: GenerateFn,
    latent_dim: int,
    *,
    flow_fn: FlowFn | None = None,
    feature_fn: FeatureFn | None = None,
    num_pairs: int | None = None,
    batch_size: int = 16,
    flow_batch_size: int = 64,
    seed: int = 0,
    verbose: int = 0,
) -> dict[str, dict[str, Any]]:
    """Motion consistency (with `flow_fn`) and appearance consistency (with `feature_fn`) from
    one set of generated videos.

    For i < `num_pairs`, with zA, zA', zM, zM' drawn from N(0, I) (NumPy, from `seed`), the
    reference video is G(zA, zM); it is compared with G(zA', zM) (shares zM: motion pair),
    G(zA, zM') (shares zA: appearance pair) and G(zA', zM') (shares neither). Returns
    `{"motion": {...}, "appearance": {...}}` for the functions given, each with `shared`,
    `neither`, `ratio` (= shared / neither), their standard errors (`*_sem`, over pairs) and
    `num_pairs`; `motion` also has `flow_magnitude` (and its standard error over videos), the
    mean flow length of the reference videos in pixels (a ratio of nearly static videos means
    little). `num_pairs` None: `auto_size(None, AUTO_NUM_PAIRS)`. The flows of all the videos
    are computed together, `flow_batch_size` frame pairs per `flow_fn` call.
    """
    if flow_fn is None and feature_fn is None:
        raise ValueError("pass flow_fn (motion), feature_fn (appearance) or both")
    num_pairs = auto_size(num_pairs, AUTO_NUM_PAIRS)
    z_a, z_a2, z_m, z_m2 = _latents(num_pairs, latent_dim, seed)
    pairs = [("reference", z_a, z_m), ("neither", z_a2, z_m2)]
    if flow_fn is not None:
        pairs.append(("motion", z_a2, z_m))
    if feature_fn is not None:
        pairs.append(("appearance", z_a, z_m2))
    progbar = keras.utils.Progbar(num_pairs * len(pairs), verbose=verbose, unit_name="video")
    videos = {
        name: generate_from_latents(generate, a, m, batch_size, progbar) for name, a, m in pairs
    }
    results: dict[str, dict[str, Any]] = {}
    if flow_fn is not None:
        names = ("reference", "neither", "motion")
        frame_pairs = num_pairs * (videos["reference"].shape[1] - 1)
        flow_progbar = keras.utils.Progbar(
            len(names) * frame_pairs, verbose=verbose, unit_name="flow"
        )
        # One pass over all the videos: full batches of one shape (one compilation).
        every = video_flows(
            np.concatenate([videos[name] for name in names]),
            flow_fn,
            batch_size=flow_batch_size,
            progbar=flow_progbar,
        )
        flows = dict(zip(names, np.split(every, len(names)), strict=True))
        magnitude = np.sqrt((flows["reference"].astype(np.float64) ** 2).sum(axis=-1))
        magnitude = magnitude.reshape(num_pairs, -1).mean(axis=1)
        results["motion"] = _summary(
            end_point_error(flows["reference"], flows["motion"]),
            end_point_error(flows["reference"], flows["neither"]),
            distance="mean end-point error of consecutive-frame flow (pixels)",
            flow_magnitude=float(magnitude.mean()),
            flow_magnitude_sem=standard_error(magnitude),
        )
    if feature_fn is not None:
        features = {
            name: to_float32_array(feature_fn(videos[name])).astype(np.float64)
            for name in ("reference", "neither", "appearance")
        }
        results["appearance"] = _summary(
            np.linalg.norm(features["reference"] - features["appearance"], axis=1),
            np.linalg.norm(features["reference"] - features["neither"], axis=1),
            distance="Euclidean distance of frame descriptors",
        )
    return results


def motion_consistency(
    generate: GenerateFn, latent_dim: int, flow_fn: FlowFn, **kwargs
) -> dict[str, Any]:
    """Flow EPE of videos sharing zM but not zA vs sharing neither (see
    `latent_swap_consistency`); `ratio` low means motion is carried by zM."""
    return latent_swap_consistency(generate, latent_dim, flow_fn=flow_fn, **kwargs)["motion"]


def appearance_consistency(
    generate: GenerateFn, latent_dim: int, feature_fn: FeatureFn | None = None, **kwargs
) -> dict[str, Any]:
    """Descriptor distance of videos sharing zA but not zM vs sharing neither (default
    descriptor `colour_histogram_features()`); `ratio` low means appearance is carried by zA."""
    feature_fn = feature_fn or colour_histogram_features()
    return latent_swap_consistency(generate, latent_dim, feature_fn=feature_fn, **kwargs)[
        "appearance"
    ]


# --- factor predictability ---------------------------------------------------------------------


def _ridge_classifier(
    x_train: np.ndarray, y_train: np.ndarray, x_test: np.ndarray, classes: int, ridge: float
) -> np.ndarray:
    """Closed-form ridge regression onto one-hot targets (one-vs-rest), argmax; predicts x_test."""
    mean, std = x_train.mean(axis=0), x_train.std(axis=0)
    std = np.where(std > 1e-8, std, 1.0)

    def design(x):
        return np.concatenate([(x - mean) / std, np.ones((len(x), 1))], axis=1)

    a = design(x_train)
    targets = np.eye(classes)[y_train]
    penalty = ridge * len(a) * np.eye(a.shape[1])
    penalty[-1, -1] = 0.0  # no penalty on the bias
    weights = np.linalg.solve(a.T @ a + penalty, a.T @ targets)
    return np.argmax(design(x_test) @ weights, axis=1)


def factor_predictability(
    codes: Mapping[str, np.ndarray],
    factors: Mapping[str, np.ndarray],
    *,
    num_classes: Mapping[str, int] | None = None,
    test_fraction: float = 0.5,
    ridge: float = 1e-2,
    seed: int = 0,
) -> dict[str, Any]:
    """Held-out accuracy of predicting each factor from each code.

    `codes` maps a code name (e.g. "wA", "wM") to (N, D) arrays for the same N videos;
    `factors` maps a factor name to (N,) integer labels. The videos are split once (NumPy
    permutation from `seed`) into a training part and a test part of `test_fraction`; each code
    is standardised with the training mean and spread and fed to a closed-form ridge
    (`ridge` times N on the weights, none on the bias) one-vs-rest classifier, deterministic
    and without iterations. Returns `accuracy[factor][code]`, `chance[factor]` (test accuracy of
    the most frequent training label), their binomial standard errors over the test videos
    (`accuracy_sem`, `chance_sem`: sqrt(p (1 - p) / num_test), 0 at p = 0 or 1),
    `classes[factor]` and the split sizes.
    """
    names = list(codes)
    count = {len(np.asarray(codes[n])) for n in names} | {
        len(np.asarray(f)) for f in factors.values()
    }
    if len(count) != 1:
        raise ValueError(f"codes and factors must cover the same videos, got sizes {sorted(count)}")
    total = count.pop()
    num_test = round(total * test_fraction)
    if num_test < 1 or total - num_test < 2:
        raise ValueError(f"too few videos ({total}) for a split with test_fraction={test_fraction}")
    order = np.random.default_rng(seed).permutation(total)
    test, train = order[:num_test], order[num_test:]
    accuracy: dict[str, dict[str, float]] = {}
    chance: dict[str, float] = {}

    def binomial_sem(p: float) -> float:
        return float(np.sqrt(p * (1.0 - p) / num_test))

    classes: dict[str, int] = {}
    for factor, labels in factors.items():
        labels = np.asarray(labels, np.int64)
        k = int((num_classes or {}).get(factor, labels.max() + 1))
        classes[factor] = k
        majority = np.bincount(labels[train], minlength=k).argmax()
        chance[factor] = float(np.mean(labels[test] == majority))
        accuracy[factor] = {}
        for name in names:
            x = np.asarray(codes[name], np.float64).reshape(total, -1)
            predicted = _ridge_classifier(x[train], labels[train], x[test], k, ridge)
            accuracy[factor][name] = float(np.mean(predicted == labels[test]))
    return {
        "codes": names,
        "factors": list(factors),
        "accuracy": accuracy,
        "chance": chance,
        "accuracy_sem": {
            factor: {name: binomial_sem(value) for name, value in row.items()}
            for factor, row in accuracy.items()
        },
        "chance_sem": {factor: binomial_sem(value) for factor, value in chance.items()},
        "classes": classes,
        "num_train": len(train),
        "num_test": len(test),
        "classifier": f"ridge one-vs-rest (lambda={ridge}), standardised codes",
    }


def encode_videos(
    encode: EncodeFn, videos: np.ndarray, batch_size: int = 16, verbose: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """(wA, wM) of `videos` in batches; the last batch is padded so shapes stay fixed."""
    videos = np.asarray(videos, np.float32)
    codes_a, codes_m = [], []
    progbar = keras.utils.Progbar(len(videos), verbose=verbose, unit_name="video")
    for i in range(0, len(videos), batch_size):
        batch = videos[i : i + batch_size]
        keep = len(batch)
        if keep < batch_size and len(videos) > batch_size:
            batch = np.concatenate([batch, np.repeat(batch[-1:], batch_size - keep, axis=0)])
        w_a, w_m = encode(batch)
        codes_a.append(to_float32_array(w_a)[:keep])
        codes_m.append(to_float32_array(w_m)[:keep])
        progbar.add(keep)
    return np.concatenate(codes_a), np.concatenate(codes_m)


def encoder_factor_table(
    encode: EncodeFn,
    videos: np.ndarray,
    factors: Mapping[str, np.ndarray],
    *,
    num_classes: Mapping[str, int] | None = None,
    batch_size: int = 16,
    verbose: int = 0,
    **kwargs,
) -> dict[str, Any]:
    """`factor_predictability` of the codes `encode(videos) -> (wA, wM)` of real videos with
    known `factors` (e.g. sprites' `.factors`)."""
    w_a, w_m = encode_videos(encode, videos, batch_size, verbose)
    return factor_predictability({"wA": w_a, "wM": w_m}, factors, num_classes=num_classes, **kwargs)


def format_factor_table(table: Mapping[str, Any], factor_order: Sequence[str] | None = None) -> str:
    """The accuracy table as Markdown: one row per factor, one column per code, plus chance;
    each cell "accuracy ± standard error" when the table has them."""
    codes = list(table["codes"])
    lines = [
        "| factor | " + " | ".join(codes) + " | chance |",
        "|---" * (len(codes) + 2) + "|",
    ]

    def cell(value: float, sem: float | None) -> str:
        return f"{value:.3f}" if sem is None else f"{value:.3f} ± {sem:.3f}"

    accuracy_sem, chance_sem = table.get("accuracy_sem"), table.get("chance_sem")
    for factor in factor_order or table["factors"]:
        cells = [
            cell(table["accuracy"][factor][c], accuracy_sem and accuracy_sem[factor][c])
            for c in codes
        ]
        chance = cell(table["chance"][factor], chance_sem and chance_sem[factor])
        lines.append(f"| {factor} | " + " | ".join(cells) + f" | {chance} |")
    return "\n".join(lines)
