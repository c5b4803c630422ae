"""The sprites "judge": a classifier of the ground-truth sprites factors, used to score a generator.

This is the protocol DSVAE and S3VAE use on their Sprites benchmark, adapted to AVLAE's codes. A
small 2D CNN (`SpritesJudge`) is trained on real sprites clips, made exactly like the model's
training clips (the trainer's source and clip sampling: same size, frames, stride and flips), to
predict every factor: shape, colour, background (appearance) and direction, speed, trajectory
(motion). Its held-out accuracy on real clips of another seed says how far it can be trusted.
The judge then labels generated videos (`judge_scores`):

- (a) on random samples G(zA, zM): per factor, the Inception Score exp(H(y) - E_x[H(y|x)]), the
  mean conditional entropy E_x[H(y|x)] and the entropy of the mean prediction H(y), in nats; the
  same numbers on real held-out clips are the reference.
- (b) zA fixed, zM resampled: the fraction of pairs G(zA, zM), G(zA, zM') whose judged appearance
  factors stay the same (should be 1) and whose motion factors change.
- (c) zM fixed, zA resampled: the fraction of pairs G(zA, zM), G(zA', zM) whose motion factors
  stay the same (should be 1) and whose appearance factors change.

A change rate is bounded by that of independent videos, reported for random pairs of real clips
and of generated videos (neither code shared): a generator that makes one video for every latent
keeps every label under every swap, so read the constancies together with the change rates.

Judges are trained on demand and cached per dataset settings as backend-independent
`.weights.h5` files, with a JSON of their held-out results, under `$AVLAE_CACHE_DIR/judges/`
(default `~/.cache/avlae_keras/judges/`). Videos are (batch, time, height, width, 3) floats in
[-1, 1] throughout.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import tempfile
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import keras
import numpy as np
import scipy.special
from keras import ops

from avlae_keras.data import APPEARANCE_FACTORS, MOTION_FACTORS, SPRITE_FACTORS
from avlae_keras.metrics.disentanglement import generate_from_latents
from avlae_keras.metrics.extractors import to_float32_array
from avlae_keras.metrics.host_constant import conv_kwargs

# Bump whenever the architecture, the training recipe or the cached results change: older cached
# judges are then retrained instead of reused.
JUDGE_VERSION = 1
DEFAULT_CACHE_DIR = Path("~/.cache/avlae_keras")
WEIGHTS_FILE = "judge.weights.h5"
RESULTS_FILE = "judge.json"
PREDICT_BATCH = 64  # one compiled shape for every prediction

GenerateFn = Callable[[Any, Any], Any]  # (z_a, z_m) -> videos in [-1, 1]


@keras.saving.register_keras_serializable(package="avlae_keras.metrics")
class SpritesJudge(keras.Model):
    """Classifies every sprites factor of clips (B, `frames`, `resolution`, `resolution`, 3) in
    [-1, 1]; returns a dict of logits, one (B, classes) head per factor.

    Only 2D convolutions (XLA on CPU runs 3D ones an order of magnitude slower). Frames larger
    than `work_size` are first average-pooled down to it (the sprites stay recognisable at 32 px).
    A motion branch stacks all frames and their consecutive differences along the channels, so
    its first convolution sees where the sprite goes; an appearance branch runs a per-frame CNN
    (shared weights, stride 1 first so that small shapes keep their edges) on
    `appearance_frames` frames spread over the clip and averages their max-pooled features.
    """

    def __init__(
        self,
        frames: int,
        resolution: int,
        num_classes: Mapping[str, int] | None = None,
        appearance_frames: int = 2,
        appearance_width: int = 16,
        motion_width: int = 32,
        hidden_units: int = 128,
        work_size: int = 32,
        weight_init: str = "random",
        **kwargs,
    ):
        super().__init__(**kwargs)
        if frames < 2:
            raise ValueError(f"the judge needs clips of at least 2 frames, got {frames}")
        self.frames = int(frames)
        self.resolution = int(resolution)
        self.num_classes = dict(num_classes or {n: len(v) for n, v in SPRITE_FACTORS.items()})
        self.appearance_frames = min(int(appearance_frames), self.frames)
        self.appearance_width = int(appearance_width)
        self.motion_width = int(motion_width)
        self.hidden_units = int(hidden_units)
        self.work_size = int(work_size)
        # Static sizes: TensorFlow may retrace with unknown height and width.
        self._pool_factor = max(1, self.resolution // self.work_size)
        if self.resolution % self._pool_factor:
            raise ValueError(
                f"{self.resolution} px frames do not pool evenly to the judge's {work_size} px"
            )
        self._size = self.resolution // self._pool_factor
        self.weight_init = weight_init
        init = conv_kwargs(weight_init)
        # The centres of `appearance_frames` equal segments of the clip.
        count = self.appearance_frames
        self._appearance_index = [int((k + 0.5) * self.frames / count) for k in range(count)]

        def conv(filters: int, strides: int, name: str) -> keras.layers.Conv2D:
            return keras.layers.Conv2D(
                filters, 3, strides=strides, padding="same", activation="relu", name=name, **init
            )

        width = self.appearance_width
        self.appearance_convs = [
            conv(width, 1, "appearance_conv1"),
            conv(2 * width, 2, "appearance_conv2"),
            conv(2 * width, 1, "appearance_conv3"),
        ]
        width = self.motion_width
        self.motion_convs = [
            conv(width, 2, "motion_conv1"),
            conv(2 * width, 2, "motion_conv2"),
            conv(2 * width, 1, "motion_conv3"),
        ]
        self.hidden = keras.layers.Dense(
            self.hidden_units, activation="relu", name="hidden", **init
        )
        self.heads = [
            keras.layers.Dense(k, name=f"{name}_logits", **init)
            for name, k in self.num_classes.items()
        ]

    @property
    def factors(self) -> list[str]:
        """The factor of each head, in order."""
        return list(self.num_classes)

    def call(self, videos):
        videos = ops.convert_to_tensor(videos, "float32")
        factor, size, channels = self._pool_factor, self._size, 3
        if factor > 1:
            shape = (-1, self.frames, size, factor, size, factor, channels)
            videos = ops.mean(ops.reshape(videos, shape), axis=(3, 5))

        frames = ops.take(videos, self._appearance_index, axis=1)
        x = ops.reshape(frames, (-1, size, size, channels))
        for layer in self.appearance_convs:
            x = layer(x)
        x = ops.reshape(ops.max(x, axis=(1, 2)), (-1, self.appearance_frames, x.shape[-1]))
        appearance = ops.mean(x, axis=1)

        stacked = ops.concatenate([videos, videos[:, 1:] - videos[:, :-1]], axis=1)
        stacked = ops.transpose(stacked, (0, 2, 3, 1, 4))
        x = ops.reshape(stacked, (-1, size, size, (2 * self.frames - 1) * channels))
        for layer in self.motion_convs:
            x = layer(x)
        motion = ops.concatenate([ops.mean(x, axis=(1, 2)), ops.max(x, axis=(1, 2))], axis=-1)

        features = self.hidden(ops.concatenate([appearance, motion], axis=-1))
        return {name: head(features) for name, head in zip(self.factors, self.heads)}

    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        config.update(
            frames=self.frames,
            resolution=self.resolution,
            num_classes=self.num_classes,
            appearance_frames=self.appearance_frames,
            appearance_width=self.appearance_width,
            motion_width=self.motion_width,
            hidden_units=self.hidden_units,
            work_size=self.work_size,
            weight_init=self.weight_init,
        )
        return config


@dataclasses.dataclass(frozen=True)
class JudgeSettings:
    """What a judge is trained on and how; a cached judge is reused only for equal settings.

    `resolution`, `frames`, `frame_stride`, `flip` and `seed` are the run's (its clips and its
    sprites seed); `num_train` sprites videos (one random clip each per epoch) train the judge
    and `num_heldout` videos of another seed measure it.
    """

    resolution: int = 32
    frames: int = 8
    frame_stride: int = 1
    flip: bool = False
    seed: int = 0
    num_train: int = 4096
    num_heldout: int = 1024
    epochs: int = 5
    batch_size: int = 64
    learning_rate: float = 5e-3

    @classmethod
    def from_run_config(cls, run_config: Any, **overrides: Any) -> JudgeSettings:
        """The settings of a sprites run: its `TrainConfig` or `config.json` dict."""
        if not isinstance(run_config, Mapping):
            run_config = run_config.to_dict()
        if run_config.get("dataset") != "sprites":
            raise ValueError(
                f"the sprites judge needs a run trained on --dataset=sprites, "
                f"got --dataset={run_config.get('dataset')}"
            )
        options = {
            key: run_config[key]
            for key in ("resolution", "frames", "frame_stride", "flip", "seed")
            if run_config.get(key) is not None
        }
        return cls(**{**options, **overrides})

    def cache_name(self) -> str:
        """A folder name: the main settings in words, then a hash of all of them."""
        text = json.dumps({**dataclasses.asdict(self), "version": JUDGE_VERSION}, sort_keys=True)
        digest = hashlib.sha1(text.encode()).hexdigest()[:10]
        flip = "-flip" if self.flip else ""
        return (
            f"sprites-{self.resolution}px-{self.frames}x{self.frame_stride}{flip}-seed{self.seed}"
            f"-n{self.num_train}-v{JUDGE_VERSION}-{digest}"
        )


def judge_cache_dir(cache_dir: str | os.PathLike | None = None) -> Path:
    """`cache_dir`, else `$AVLAE_CACHE_DIR/judges`, else `~/.cache/avlae_keras/judges`."""
    if cache_dir is not None:
        return Path(cache_dir)
    root = os.environ.get("AVLAE_CACHE_DIR") or DEFAULT_CACHE_DIR
    return Path(root).expanduser() / "judges"


# --- real clips ----------------------------------------------------------------------------------


def _clip_loader(settings: JudgeSettings, num_videos: int, seed: int):
    """The trainer's sprites source and training clip sampling for `settings`, and the source."""
    from avlae_keras.config import TrainConfig
    from avlae_keras.data import ClipLoader, clip_spec, training_source

    config = TrainConfig(
        workdir="",
        dataset="sprites",
        num_videos=num_videos,
        resolution=settings.resolution,
        frames=settings.frames,
        frame_stride=settings.frame_stride,
        flip=settings.flip,
        seed=seed,
    )
    source = training_source(config)
    return ClipLoader(source, clip_spec(config), training=True, seed=seed), source


_MIRRORED_DIRECTION = np.array(
    [
        SPRITE_FACTORS["direction"].index({"right": "left", "left": "right"}.get(name, name))
        for name in SPRITE_FACTORS["direction"]
    ]
)


def _clip_factors(loader, source, epoch: int, positions: np.ndarray) -> dict[str, np.ndarray]:
    """Ground truth of clips `positions` of `epoch`. Factors are per video and constant over
    time, so any window keeps them; a mirrored clip moves the other way left/right."""
    plan = loader.plan(epoch)
    video = plan.video[positions]
    factors = {name: np.asarray(values)[video] for name, values in source.factors.items()}
    flipped = plan.flip[positions]
    factors["direction"] = np.where(
        flipped, _MIRRORED_DIRECTION[factors["direction"]], factors["direction"]
    )
    return factors


def predict_factors(
    judge: SpritesJudge, videos: np.ndarray, batch_size: int = PREDICT_BATCH
) -> dict[str, np.ndarray]:
    """The judge's class probabilities of `videos`: factor -> (N, classes) float64. Batches are
    padded to `batch_size` so that one compiled shape serves every call."""
    videos = np.asarray(videos, np.float32)
    parts: dict[str, list[np.ndarray]] = {name: [] for name in judge.factors}
    for first in range(0, len(videos), batch_size):
        batch = videos[first : first + batch_size]
        keep = len(batch)
        if keep < batch_size:
            batch = np.concatenate([batch, np.repeat(batch[-1:], batch_size - keep, axis=0)])
        logits = judge.predict_on_batch(batch)
        for name in parts:
            parts[name].append(to_float32_array(logits[name])[:keep].astype(np.float64))
    return {name: scipy.special.softmax(np.concatenate(p), axis=1) for name, p in parts.items()}


def label_scores(probabilities: np.ndarray) -> dict[str, float]:
    """Inception Score exp(H(y) - E_x[H(y|x)]) of one factor's predictions (N, classes), with
    E_x[H(y|x)] (`conditional_entropy`: low when the judge is sure of each video), H(y)
    (`marginal_entropy`: high when the labels are diverse) and the ceiling log(classes), in nats."""
    probabilities = np.asarray(probabilities, np.float64)
    conditional = float(scipy.special.entr(probabilities).sum(axis=1).mean())
    marginal = float(scipy.special.entr(probabilities.mean(axis=0)).sum())
    return {
        "inception_score": float(np.exp(marginal - conditional)),
        "conditional_entropy": conditional,
        "marginal_entropy": marginal,
        "max_entropy": float(np.log(probabilities.shape[1])),
    }


def _fraction(indicator: np.ndarray) -> dict[str, float]:
    """Mean of 0/1 outcomes with its binomial standard error."""
    indicator = np.asarray(indicator, np.float64)
    p, n = float(indicator.mean()), len(indicator)
    return {"fraction": p, "se": float(np.sqrt(p * (1 - p) / n)), "n": n}


def _mean_fraction(indicators: list[np.ndarray]) -> dict[str, float]:
    """The mean over factors of per-pair 0/1 outcomes; its standard error is that of the
    per-pair means, so the factors' correlation is accounted for."""
    per_pair = np.mean(np.stack(indicators).astype(np.float64), axis=0)
    n = len(per_pair)
    return {
        "fraction": float(per_pair.mean()),
        "se": float(per_pair.std(ddof=1) / np.sqrt(n)) if n > 1 else 0.0,
        "n": n,
    }


def _heldout_results(judge: SpritesJudge, settings: JudgeSettings) -> dict[str, Any]:
    from avlae_keras.data.run_data import HELDOUT_SEED_OFFSET

    seed = settings.seed + HELDOUT_SEED_OFFSET
    loader, source = _clip_loader(settings, settings.num_heldout, seed)
    positions = np.arange(loader.num_clips)
    probabilities: dict[str, list[np.ndarray]] = {name: [] for name in judge.factors}
    for first in range(0, len(positions), 256):
        clips, _ = loader.load_batch(0, positions[first : first + 256])
        for name, p in predict_factors(judge, clips).items():
            probabilities[name].append(p)
    truth = _clip_factors(loader, source, 0, positions)
    # Random pairs of independent real clips: first half against second half.
    half = len(positions) // 2
    results: dict[str, Any] = {
        "seed": seed,
        "clips": len(positions),
        "accuracy": {},
        "scores": {},
        "random_pairs_changed": {},
        "random_pairs_changed_truth": {},
    }
    for name, parts in probabilities.items():
        p = np.concatenate(parts)
        labels = p.argmax(axis=1)
        results["accuracy"][name] = float(np.mean(labels == truth[name]))
        results["scores"][name] = label_scores(p)
        results["random_pairs_changed"][name] = _fraction(labels[:half] != labels[half : 2 * half])
        results["random_pairs_changed_truth"][name] = _fraction(
            truth[name][:half] != truth[name][half : 2 * half]
        )
    return results


# --- training and the cache ----------------------------------------------------------------------


def _sparse_cross_entropy(labels, logits):
    return keras.losses.sparse_categorical_crossentropy(labels, logits, from_logits=True)


def _built_judge(config: Mapping[str, Any], settings: JudgeSettings) -> SpritesJudge:
    """A judge of `config` with host-made placeholder weights, built by a symbolic call: run
    eagerly, JAX would compile every initializer and layer one by one (about 10 s)."""
    judge = SpritesJudge.from_config({**config, "weight_init": "constant"})
    judge(keras.KerasTensor((1, settings.frames, settings.resolution, settings.resolution, 3)))
    return judge


def _initialise(judge: SpritesJudge, seed: int) -> None:
    """Keras' default initialisation (Glorot-uniform kernels, zero biases) drawn by NumPy from
    `seed`: the same starting weights on every backend."""
    rng = np.random.default_rng(seed)
    for weight in judge.weights:
        shape = tuple(weight.shape)
        if len(shape) < 2:
            weight.assign(np.zeros(shape, np.float32))
            continue
        receptive_field = int(np.prod(shape[:-2]))
        limit = np.sqrt(6.0 / (receptive_field * (shape[-2] + shape[-1])))
        weight.assign(rng.uniform(-limit, limit, shape).astype(np.float32))


def train_judge(settings: JudgeSettings, verbose: int = 0) -> tuple[SpritesJudge, dict[str, Any]]:
    """Trains a judge for `settings` (deterministic for `settings.seed` on a given backend) and
    measures it on held-out clips. Returns the judge and its results (settings, held-out accuracy
    and real-clip scores per factor, training time)."""
    keras.utils.set_random_seed(settings.seed)
    started = time.perf_counter()
    loader, source = _clip_loader(settings, settings.num_train, settings.seed)
    steps_per_epoch = loader.num_clips // settings.batch_size
    if steps_per_epoch == 0:
        raise ValueError(
            f"num_train={settings.num_train} is smaller than one batch of {settings.batch_size}"
        )
    config = SpritesJudge(frames=settings.frames, resolution=settings.resolution).get_config()
    judge = _built_judge(config, settings)
    _initialise(judge, settings.seed)
    schedule = keras.optimizers.schedules.CosineDecay(
        settings.learning_rate, settings.epochs * steps_per_epoch
    )
    judge.compile(
        optimizer=keras.optimizers.Adam(schedule),
        loss={name: _sparse_cross_entropy for name in judge.factors},
    )
    progbar = keras.utils.Progbar(settings.epochs * steps_per_epoch, verbose=verbose)
    for epoch in range(settings.epochs):
        # Each epoch draws new clip windows and flips, as the trainer does.
        for step in range(steps_per_epoch):
            positions = np.arange(step * settings.batch_size, (step + 1) * settings.batch_size)
            clips, _ = loader.load_batch(epoch, positions)
            labels = _clip_factors(loader, source, epoch, positions)
            loss = judge.train_on_batch(clips, {name: labels[name] for name in judge.factors})
            progbar.add(1, [("loss", float(np.ravel(loss)[0]))])
    training_seconds = time.perf_counter() - started
    heldout = _heldout_results(judge, settings)
    results = {
        "version": JUDGE_VERSION,
        "settings": dataclasses.asdict(settings),
        "model": judge.get_config(),
        "trained_on_backend": keras.backend.backend(),
        "training_seconds": training_seconds,
        "heldout": heldout,
    }
    return judge, results


def _write_atomically(path: Path, write: Callable[[str], None]) -> None:
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=".tmp-", suffix=path.name)
    os.close(handle)
    try:
        write(temporary)
        os.replace(temporary, path)
    finally:
        if os.path.exists(temporary):
            os.remove(temporary)


def load_or_train_judge(
    settings: JudgeSettings, cache_dir: str | os.PathLike | None = None, verbose: int = 0
) -> tuple[SpritesJudge, dict[str, Any]]:
    """The cached judge of `settings` (loads on either backend), else a newly trained one, saved
    to the cache. Returns the judge and its results (see `train_judge`), plus `path` (its cache
    folder) and `cached` (whether it was loaded)."""
    folder = judge_cache_dir(cache_dir) / settings.cache_name()
    weights, results_file = folder / WEIGHTS_FILE, folder / RESULTS_FILE
    if weights.is_file() and results_file.is_file():
        results = json.loads(results_file.read_text())
        judge = _built_judge(results["model"], settings)
        judge.load_weights(weights)
        return judge, {**results, "path": os.fspath(folder), "cached": True}
    if verbose:
        print(f"training the sprites judge into {folder}", flush=True)
    judge, results = train_judge(settings, verbose=verbose)
    folder.mkdir(parents=True, exist_ok=True)
    # Weights first: a results file marks a complete entry.
    _write_atomically(weights, judge.save_weights)
    text = json.dumps(results, indent=2) + "\n"
    _write_atomically(results_file, lambda path: Path(path).write_text(text))
    return judge, {**results, "path": os.fspath(folder), "cached": False}


# --- scoring a generator -------------------------------------------------------------------------


def _pair_changes(labels: Mapping[str, np.ndarray], other: Mapping[str, np.ndarray]):
    return {name: labels[name] != other[name] for name in labels}


def judge_scores(
    generate: GenerateFn,
    latent_dim: int,
    judge: SpritesJudge,
    *,
    num_pairs: int = 128,
    batch_size: int = 16,
    seed: int = 0,
    verbose: int = 0,
) -> dict[str, Any]:
    """The judge's verdict on a generator `generate(z_a, z_m) -> videos` (batched, NumPy in).

    For i < `num_pairs`, zA, zA', zM, zM' ~ N(0, I) (NumPy, from `seed`); the judge labels (argmax)
    G(zA, zM) (the samples), G(zA, zM') (zA kept), G(zA', zM) (zM kept) and G(zA', zM') (neither).
    Returns, per factor:

    - `samples`: `label_scores` of the samples (a);
    - `fixed_appearance` (b): `appearance_kept` and `motion_changed` between the samples and the
      zA-kept videos, each a fraction with its binomial standard error, and their means over the
      factors (`appearance_kept_mean`, `motion_changed_mean`);
    - `fixed_motion` (c): `motion_kept` and `appearance_changed` between the samples and the
      zM-kept videos, and their means;
    - `random_pairs_changed`: how often a label differs between the samples and the videos that
      share neither code (the change rate of independent generated videos).
    """
    rng = np.random.default_rng(seed)
    z_a, z_a2, z_m, z_m2 = (
        rng.standard_normal((num_pairs, latent_dim)).astype(np.float32) for _ in range(4)
    )
    progbar = keras.utils.Progbar(4 * num_pairs, verbose=verbose, unit_name="video")
    labels: dict[str, dict[str, np.ndarray]] = {}
    samples: dict[str, dict[str, float]] = {}
    for kind, codes in (
        ("samples", (z_a, z_m)),
        ("appearance_kept", (z_a, z_m2)),
        ("motion_kept", (z_a2, z_m)),
        ("neither", (z_a2, z_m2)),
    ):
        videos = generate_from_latents(generate, *codes, batch_size, progbar)
        probabilities = predict_factors(judge, videos)
        labels[kind] = {name: p.argmax(axis=1) for name, p in probabilities.items()}
        if kind == "samples":
            samples = {name: label_scores(p) for name, p in probabilities.items()}
    kept_zm = _pair_changes(labels["samples"], labels["motion_kept"])
    kept_za = _pair_changes(labels["samples"], labels["appearance_kept"])
    neither = _pair_changes(labels["samples"], labels["neither"])
    appearance = [n for n in APPEARANCE_FACTORS if n in kept_za]
    motion = [n for n in MOTION_FACTORS if n in kept_za]
    return {
        "num_pairs": num_pairs,
        "seed": seed,
        "samples": samples,
        "fixed_appearance": {
            "appearance_kept": {n: _fraction(~kept_za[n]) for n in appearance},
            "motion_changed": {n: _fraction(kept_za[n]) for n in motion},
            "appearance_kept_mean": _mean_fraction([~kept_za[n] for n in appearance]),
            "motion_changed_mean": _mean_fraction([kept_za[n] for n in motion]),
        },
        "fixed_motion": {
            "motion_kept": {n: _fraction(~kept_zm[n]) for n in motion},
            "appearance_changed": {n: _fraction(kept_zm[n]) for n in appearance},
            "motion_kept_mean": _mean_fraction([~kept_zm[n] for n in motion]),
            "appearance_changed_mean": _mean_fraction([kept_zm[n] for n in appearance]),
        },
        "random_pairs_changed": {n: _fraction(neither[n]) for n in neither},
    }


def judge_trained_model(
    model: Any,
    run_config: Any,
    *,
    num_pairs: int = 128,
    batch_size: int = 16,
    seed: int = 0,
    num_train: int | None = None,
    cache_dir: str | os.PathLike | None = None,
    verbose: int = 0,
) -> dict[str, Any]:
    """`judge_scores` of a trained AVLAE (`model.generate`, `model.latent_dim`) of a sprites run
    (`run_config`: its `TrainConfig` or `config.json` dict), with the run's judge from the
    cache or trained now.

    Returns the scores of `judge_scores` beside their real-clip references, `real_samples` (the
    `label_scores` of held-out real clips) and `real_random_pairs_changed` (the judge's label
    change rate between independent real clips; `..._truth`: that of the true factors), and
    `classifier`: the judge's settings, held-out accuracy per factor, cache folder and training.
    `num_train` overrides the judge's number of training videos (default `JudgeSettings`').
    """
    overrides = {} if num_train is None else {"num_train": num_train}
    settings = JudgeSettings.from_run_config(run_config, **overrides)
    judge, results = load_or_train_judge(settings, cache_dir, verbose=verbose)
    scores = judge_scores(
        lambda z_a, z_m: model.generate(z_a=z_a, z_m=z_m),
        model.latent_dim,
        judge,
        num_pairs=num_pairs,
        batch_size=batch_size,
        seed=seed,
        verbose=verbose,
    )
    heldout = results["heldout"]
    classifier = {key: value for key, value in results.items() if key != "heldout"}
    classifier["heldout"] = {key: heldout[key] for key in ("seed", "clips", "accuracy")}
    return {
        "classifier": classifier,
        **scores,
        "real_samples": heldout["scores"],
        "real_random_pairs_changed": heldout["random_pairs_changed"],
        "real_random_pairs_changed_truth": heldout["random_pairs_changed_truth"],
    }
