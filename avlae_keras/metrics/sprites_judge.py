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

The verdict (`selectivity`, `verdict_metrics`) folds these into numbers that a collapsed or ignored
factor cannot pass. The selectivity of an appearance factor f is

    S_f = (P[f kept | zM swapped] - P[f kept | zA swapped]) / P[f changes | two real clips]

and of a motion factor the same with zA and zM exchanged: 1 when the right code alone sets the
factor, 0 when the factor is collapsed, ignores both codes or follows both alike, negative when
the wrong code sets it. A second classifier of single frames (`SpritesFrameJudge`: shape,
colour, background, and whether a sprite is in the frame at all) gives the temporal consistency:
the fraction of videos whose per-frame appearance labels are the same in every frame (real
clips, whose factors are constant, score near 1), and how often a frame shows no sprite.

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
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import keras
import numpy as np
import scipy.special
from keras import ops

from avlae_keras.config import user_cache_dir
from avlae_keras.data import APPEARANCE_FACTORS, MOTION_FACTORS, SPRITE_FACTORS
from avlae_keras.metrics.disentanglement import generate_from_latents
from avlae_keras.metrics.extractors import to_float32_array
from avlae_keras.metrics.host_constant import conv_kwargs
from flows.atomic_files import atomic_path, atomic_write_text

# Bump whenever the architecture, the training recipe or the cached results change: older cached
# judges are then retrained instead of reused.
JUDGE_VERSION = 1
WEIGHTS_FILE = "judge.weights.h5"
RESULTS_FILE = "judge.json"
FRAME_WEIGHTS_FILE = "frame_judge.weights.h5"
FRAME_RESULTS_FILE = "frame_judge.json"
# The frame judge's labels: the appearance factors, and whether the frame shows a sprite.
SPRITE_PRESENCE = ("absent", "present")
FRAME_FACTORS = {
    **{name: SPRITE_FACTORS[name] for name in APPEARANCE_FACTORS},
    "sprite": SPRITE_PRESENCE,
}
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
        self._pool_factor = _pool_factor(self.resolution, self.work_size)
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


@keras.saving.register_keras_serializable(package="avlae_keras.metrics")
class SpritesFrameJudge(keras.Model):
    """Classifies single frames (B, `resolution`, `resolution`, 3) in [-1, 1]: their appearance
    factors (shape, colour, background) and whether a sprite is in the frame (`sprite`: absent,
    present); returns a dict of logits, one (B, classes) head per label of `FRAME_FACTORS`.

    The same per-frame CNN as `SpritesJudge`'s appearance branch (frames pooled to `work_size`,
    stride 1 first), on its own weights: one frame has to be enough.
    """

    def __init__(
        self,
        resolution: int,
        num_classes: Mapping[str, int] | None = None,
        width: int = 16,
        hidden_units: int = 64,
        work_size: int = 32,
        weight_init: str = "random",
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.resolution = int(resolution)
        self.num_classes = dict(num_classes or {n: len(v) for n, v in FRAME_FACTORS.items()})
        self.width = int(width)
        self.hidden_units = int(hidden_units)
        self.work_size = int(work_size)
        self._pool_factor = _pool_factor(self.resolution, self.work_size)
        self._size = self.resolution // self._pool_factor
        self.weight_init = weight_init
        init = conv_kwargs(weight_init)
        self.convs = [
            keras.layers.Conv2D(
                filters, 3, strides=strides, padding="same", activation="relu", name=name, **init
            )
            for filters, strides, name in (
                (width, 1, "conv1"),
                (2 * width, 2, "conv2"),
                (2 * width, 1, "conv3"),
            )
        ]
        self.hidden = keras.layers.Dense(hidden_units, activation="relu", name="hidden", **init)
        self.heads = [
            keras.layers.Dense(k, name=f"{name}_logits", **init)
            for name, k in self.num_classes.items()
        ]

    @property
    def factors(self) -> list[str]:
        """The label of each head, in order."""
        return list(self.num_classes)

    def call(self, frames):
        x = ops.convert_to_tensor(frames, "float32")
        factor, size = self._pool_factor, self._size
        if factor > 1:
            x = ops.mean(ops.reshape(x, (-1, size, factor, size, factor, 3)), axis=(2, 4))
        for layer in self.convs:
            x = layer(x)
        features = ops.concatenate([ops.mean(x, axis=(1, 2)), ops.max(x, axis=(1, 2))], axis=-1)
        features = self.hidden(features)
        return {name: head(features) for name, head in zip(self.factors, self.heads)}

    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        config.update(
            resolution=self.resolution,
            num_classes=self.num_classes,
            width=self.width,
            hidden_units=self.hidden_units,
            work_size=self.work_size,
            weight_init=self.weight_init,
        )
        return config


def _pool_factor(resolution: int, work_size: int) -> int:
    """How much frames of side `resolution` are average-pooled to reach `work_size`."""
    factor = max(1, resolution // work_size)
    if resolution % factor:
        raise ValueError(f"{resolution} px frames do not pool evenly to the judge's {work_size} px")
    return factor


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
    return user_cache_dir("judges")


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


def _heldout_loader(settings: JudgeSettings):
    """The held-out real clips of `settings` (another seed): loader, source and positions."""
    from avlae_keras.data.run_data import HELDOUT_SEED_OFFSET

    seed = settings.seed + HELDOUT_SEED_OFFSET
    loader, source = _clip_loader(settings, settings.num_heldout, seed)
    return loader, source, np.arange(loader.num_clips), seed


def _heldout_results(judge: SpritesJudge, settings: JudgeSettings) -> dict[str, Any]:
    loader, source, positions, seed = _heldout_loader(settings)
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


def frame_labels(
    frame_judge: SpritesFrameJudge, videos: np.ndarray, batch_size: int = 4 * PREDICT_BATCH
) -> dict[str, np.ndarray]:
    """The frame judge's label of every frame of `videos` (N, T, H, W, 3): name -> (N, T)."""
    videos = np.asarray(videos, np.float32)
    count, frames = videos.shape[:2]
    probabilities = predict_factors(frame_judge, videos.reshape(-1, *videos.shape[2:]), batch_size)
    return {name: p.argmax(axis=1).reshape(count, frames) for name, p in probabilities.items()}


def temporal_consistency(labels: Mapping[str, np.ndarray]) -> dict[str, Any]:
    """From per-frame labels (name -> (N, T), `frame_labels`): `consistent`, the fraction of
    videos that show a sprite in every frame with the same shape, colour and background labels
    in every frame (`consistent_per_factor`: each factor alone; shape and colour count only with
    a sprite in every frame, since a frame without one has neither), and `sprite_absent_frames` /
    `videos_with_absent_frame`: how often a frame, and a video in at least one frame, shows no
    sprite (`sprite_absent_by_frame`: per frame index)."""
    absent = labels["sprite"] == SPRITE_PRESENCE.index("absent")
    present_throughout = ~absent.any(axis=1)
    same = {}
    for name in APPEARANCE_FACTORS:
        same[name] = np.all(labels[name] == labels[name][:, :1], axis=1)
        if name != "background":
            same[name] &= present_throughout
    return {
        "consistent": _fraction(np.all(np.stack(list(same.values())), axis=0)),
        "consistent_per_factor": {name: _fraction(value) for name, value in same.items()},
        "sprite_absent_frames": _fraction(absent.ravel()),
        "videos_with_absent_frame": _fraction(absent.any(axis=1)),
        "sprite_absent_by_frame": [float(f) for f in absent.mean(axis=0)],
    }


def _frame_heldout_results(
    frame_judge: SpritesFrameJudge, settings: JudgeSettings
) -> dict[str, Any]:
    """The frame judge on held-out real clips (accuracy per label over all frames, temporal
    consistency) and on sprite-free frames (how often it calls them `absent`)."""
    loader, source, positions, seed = _heldout_loader(settings)
    parts: dict[str, list[np.ndarray]] = {name: [] for name in frame_judge.factors}
    for first in range(0, len(positions), 256):
        clips, _ = loader.load_batch(0, positions[first : first + 256])
        for name, labels in frame_labels(frame_judge, clips).items():
            parts[name].append(labels)
    labels = {name: np.concatenate(p) for name, p in parts.items()}
    truth = _clip_factors(loader, source, 0, positions)
    accuracy = {
        name: float(np.mean(labels[name] == truth[name][:, None])) for name in APPEARANCE_FACTORS
    }
    accuracy["sprite"] = float(np.mean(labels["sprite"] == SPRITE_PRESENCE.index("present")))
    empty, _ = _sprite_free_frames(settings, np.random.default_rng([seed, 1]), 256)
    called_absent = predict_factors(frame_judge, empty)["sprite"].argmax(axis=1) == 0
    return {
        "seed": seed,
        "clips": len(positions),
        "accuracy": accuracy,
        "sprite_free_frames_called_absent": _fraction(called_absent),
        "temporal": temporal_consistency(labels),
    }


# --- training and the cache ----------------------------------------------------------------------


def _sparse_cross_entropy(labels, logits):
    return keras.losses.sparse_categorical_crossentropy(labels, logits, from_logits=True)


def _built(model_class, config: Mapping[str, Any], input_shape: tuple) -> keras.Model:
    """A judge of `config` with host-made placeholder weights, built by a symbolic call: run
    eagerly, JAX would compile every initializer and layer one by one (about 10 s)."""
    judge = model_class.from_config({**config, "weight_init": "constant"})
    judge(keras.KerasTensor(input_shape))
    return judge


def _built_judge(config: Mapping[str, Any], settings: JudgeSettings) -> SpritesJudge:
    shape = (1, settings.frames, settings.resolution, settings.resolution, 3)
    return _built(SpritesJudge, config, shape)


def _built_frame_judge(config: Mapping[str, Any], settings: JudgeSettings) -> SpritesFrameJudge:
    return _built(SpritesFrameJudge, config, (1, settings.resolution, settings.resolution, 3))


def _initialise(judge: keras.Model, seed: int) -> None:
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


def _compiled(judge: keras.Model, settings: JudgeSettings, steps_per_epoch: int) -> keras.Model:
    """`judge` initialised from the seed and compiled with Adam on a cosine schedule and one
    cross-entropy per head."""
    _initialise(judge, settings.seed)
    schedule = keras.optimizers.schedules.CosineDecay(
        settings.learning_rate, settings.epochs * steps_per_epoch
    )
    judge.compile(
        optimizer=keras.optimizers.Adam(schedule),
        loss={name: _sparse_cross_entropy for name in judge.factors},
    )
    return judge


def _training_batches(settings: JudgeSettings, verbose: int):
    """Yields (epoch, clips, factors) of the judge's training clips, with a progress bar; each
    epoch draws new clip windows and flips, as the trainer does."""
    keras.utils.set_random_seed(settings.seed)
    loader, source = _clip_loader(settings, settings.num_train, settings.seed)
    steps_per_epoch = loader.num_clips // settings.batch_size
    if steps_per_epoch == 0:
        raise ValueError(
            f"num_train={settings.num_train} is smaller than one batch of {settings.batch_size}"
        )
    progbar = keras.utils.Progbar(settings.epochs * steps_per_epoch, verbose=verbose)
    for epoch in range(settings.epochs):
        for step in range(steps_per_epoch):
            positions = np.arange(step * settings.batch_size, (step + 1) * settings.batch_size)
            clips, _ = loader.load_batch(epoch, positions)
            yield steps_per_epoch, clips, _clip_factors(loader, source, epoch, positions), progbar


def train_judge(settings: JudgeSettings, verbose: int = 0) -> tuple[SpritesJudge, dict[str, Any]]:
    """Trains a judge for `settings` (deterministic for `settings.seed` on a given backend) and
    measures it on held-out clips. Returns the judge and its results (settings, held-out accuracy
    and real-clip scores per factor, training time)."""
    started = time.perf_counter()
    config = SpritesJudge(frames=settings.frames, resolution=settings.resolution).get_config()
    judge = None
    for steps_per_epoch, clips, labels, progbar in _training_batches(settings, verbose):
        if judge is None:
            judge = _compiled(_built_judge(config, settings), settings, steps_per_epoch)
        loss = judge.train_on_batch(clips, {name: labels[name] for name in judge.factors})
        progbar.add(1, [("loss", float(np.ravel(loss)[0]))])
    return judge, _results(judge, settings, started, _heldout_results(judge, settings))


# Per training clip, the frame judge sees this many of its frames, and per batch a quarter as
# many sprite-free frames as clips.
FRAMES_PER_CLIP = 2


def _sprite_free_frames(settings: JudgeSettings, rng: np.random.Generator, count: int):
    """`count` frames of background only, (count, H, W, 3) in [-1, 1] (mirrored at random when
    the run flips clips), and their background labels."""
    from avlae_keras.data import background_image

    size = settings.resolution
    kinds = rng.integers(len(SPRITE_FACTORS["background"]), size=count)
    frames = np.stack([np.round(background_image(k, size, size)) for k in kinds])
    if settings.flip:
        mirrored = rng.random(count) < 0.5
        frames[mirrored] = frames[mirrored, :, ::-1]
    return (frames / 127.5 - 1.0).astype(np.float32), kinds


def train_frame_judge(
    settings: JudgeSettings, verbose: int = 0
) -> tuple[SpritesFrameJudge, dict[str, Any]]:
    """Trains the frame judge of `settings` on frames of the same training clips as
    `train_judge` (each labelled with its clip's appearance factors, sprite present) and on
    sprite-free frames (sprite absent; their shape and colour are not scored). Deterministic for
    `settings.seed` on a given backend. Returns the judge and its held-out results."""
    started = time.perf_counter()
    rng = np.random.default_rng([settings.seed, 2])
    config = SpritesFrameJudge(resolution=settings.resolution).get_config()
    judge = None
    present = SPRITE_PRESENCE.index("present")
    for steps_per_epoch, clips, factors, progbar in _training_batches(settings, verbose):
        if judge is None:
            judge = _compiled(_built_frame_judge(config, settings), settings, steps_per_epoch)
        count = len(clips)
        chosen = rng.integers(settings.frames, size=(count, FRAMES_PER_CLIP))
        frames = clips[np.arange(count)[:, None], chosen].reshape(-1, *clips.shape[2:])
        empty, empty_background = _sprite_free_frames(settings, rng, count // 4)

        def joined(with_sprite, without_sprite):
            return np.concatenate([with_sprite, without_sprite])

        # A sprite-free frame has a background but no shape or colour: those are not scored.
        labels, weights = {}, {}
        for name in APPEARANCE_FACTORS:
            without = empty_background if name == "background" else np.zeros(len(empty), int)
            labels[name] = joined(np.repeat(factors[name], FRAMES_PER_CLIP), without)
            scored = np.ones(len(empty)) if name == "background" else np.zeros(len(empty))
            weights[name] = joined(np.ones(len(frames)), scored)
        labels["sprite"] = joined(np.full(len(frames), present), np.full(len(empty), 1 - present))
        weights["sprite"] = np.ones(len(frames) + len(empty))
        loss = judge.train_on_batch(
            joined(frames, empty),
            {name: labels[name] for name in judge.factors},
            sample_weight={name: weights[name].astype(np.float32) for name in judge.factors},
        )
        progbar.add(1, [("loss", float(np.ravel(loss)[0]))])
    return judge, _results(judge, settings, started, _frame_heldout_results(judge, settings))


def _results(judge: keras.Model, settings: JudgeSettings, started: float, heldout) -> dict:
    return {
        "version": JUDGE_VERSION,
        "settings": dataclasses.asdict(settings),
        "model": judge.get_config(),
        "trained_on_backend": keras.backend.backend(),
        "training_seconds": time.perf_counter() - started,
        "heldout": heldout,
    }


def _load_or_train(
    settings: JudgeSettings,
    cache_dir: str | os.PathLike | None,
    files: tuple[str, str],
    build: Callable[[Mapping[str, Any], JudgeSettings], keras.Model],
    train: Callable[..., tuple[keras.Model, dict[str, Any]]],
    verbose: int,
) -> tuple[keras.Model, dict[str, Any]]:
    folder = judge_cache_dir(cache_dir) / settings.cache_name()
    weights, results_file = (folder / name for name in files)
    if weights.is_file() and results_file.is_file():
        results = json.loads(results_file.read_text())
        judge = build(results["model"], settings)
        judge.load_weights(weights)
        return judge, {**results, "path": os.fspath(folder), "cached": True}
    if verbose:
        print(f"training {files[0].split('.')[0]} into {folder}", flush=True)
    judge, results = train(settings, verbose=verbose)
    folder.mkdir(parents=True, exist_ok=True)
    # Weights first: a results file marks a complete entry.
    with atomic_path(weights) as temporary:
        judge.save_weights(temporary)
    atomic_write_text(results_file, json.dumps(results, indent=2) + "\n")
    return judge, {**results, "path": os.fspath(folder), "cached": False}


def load_or_train_judge(
    settings: JudgeSettings, cache_dir: str | os.PathLike | None = None, verbose: int = 0
) -> tuple[SpritesJudge, dict[str, Any]]:
    """The cached judge of `settings` (loads on either backend), else a newly trained one, saved
    to the cache. Returns the judge and its results (see `train_judge`), plus `path` (its cache
    folder) and `cached` (whether it was loaded)."""
    files = (WEIGHTS_FILE, RESULTS_FILE)
    return _load_or_train(settings, cache_dir, files, _built_judge, train_judge, verbose)


def load_or_train_frame_judge(
    settings: JudgeSettings, cache_dir: str | os.PathLike | None = None, verbose: int = 0
) -> tuple[SpritesFrameJudge, dict[str, Any]]:
    """`load_or_train_judge` for the frame judge (`train_frame_judge`), in the same folder."""
    files = (FRAME_WEIGHTS_FILE, FRAME_RESULTS_FILE)
    return _load_or_train(
        settings, cache_dir, files, _built_frame_judge, train_frame_judge, verbose
    )


# --- scoring a generator -------------------------------------------------------------------------


def _pair_changes(labels: Mapping[str, np.ndarray], other: Mapping[str, np.ndarray]):
    return {name: labels[name] != other[name] for name in labels}


def selectivity(
    kept_zm: Mapping[str, np.ndarray],
    kept_za: Mapping[str, np.ndarray],
    real_changed: Mapping[str, float],
) -> dict[str, dict[str, float]]:
    """S_f per factor from per-pair 0/1 outcomes: `kept_zm[f]` (f's label kept when only zM
    changes), `kept_za[f]` (kept when only zA changes) and the change rate of f between two
    independent real clips. Appearance factors: S = (kept_zm - kept_za) / real_changed; motion
    factors: (kept_za - kept_zm) / real_changed. The standard error is over the pairs (both
    outcomes share each pair's reference video)."""
    result = {}
    for name in kept_zm:
        sign = 1.0 if name in APPEARANCE_FACTORS else -1.0
        difference = sign * (kept_zm[name].astype(np.float64) - kept_za[name].astype(np.float64))
        scale = max(float(real_changed[name]), 1e-6)
        n = len(difference)
        se = float(difference.std(ddof=1) / np.sqrt(n)) / scale if n > 1 else 0.0
        result[name] = {"selectivity": float(difference.mean()) / scale, "se": se, "n": n}
    return result


def judge_scores(
    generate: GenerateFn,
    latent_dim: int,
    judge: SpritesJudge,
    *,
    frame_judge: SpritesFrameJudge | None = None,
    real_changed: Mapping[str, float] | None = None,
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
      share neither code (the change rate of independent generated videos);
    - `selectivity` (with `real_changed`, each factor's change rate between independent real
      clips): S_f of every factor (`selectivity()`);
    - `temporal` (with `frame_judge`): `temporal_consistency` of all 4 * `num_pairs` videos.
    """
    rng = np.random.default_rng(seed)
    z_a, z_a2, z_m, z_m2 = (
        rng.standard_normal((num_pairs, latent_dim)).astype(np.float32) for _ in range(4)
    )
    progbar = keras.utils.Progbar(4 * num_pairs, verbose=verbose, unit_name="video")
    labels: dict[str, dict[str, np.ndarray]] = {}
    samples: dict[str, dict[str, float]] = {}
    per_frame: dict[str, list[np.ndarray]] = {}
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
        if frame_judge is not None:
            for name, value in frame_labels(frame_judge, videos).items():
                per_frame.setdefault(name, []).append(value)
    changed_zm = _pair_changes(labels["samples"], labels["motion_kept"])
    changed_za = _pair_changes(labels["samples"], labels["appearance_kept"])
    neither = _pair_changes(labels["samples"], labels["neither"])
    appearance = [n for n in APPEARANCE_FACTORS if n in changed_za]
    motion = [n for n in MOTION_FACTORS if n in changed_za]
    scores = {
        "num_pairs": num_pairs,
        "seed": seed,
        "samples": samples,
        "fixed_appearance": {
            "appearance_kept": {n: _fraction(~changed_za[n]) for n in appearance},
            "motion_changed": {n: _fraction(changed_za[n]) for n in motion},
            "appearance_kept_mean": _mean_fraction([~changed_za[n] for n in appearance]),
            "motion_changed_mean": _mean_fraction([changed_za[n] for n in motion]),
        },
        "fixed_motion": {
            "motion_kept": {n: _fraction(~changed_zm[n]) for n in motion},
            "appearance_changed": {n: _fraction(changed_zm[n]) for n in appearance},
            "motion_kept_mean": _mean_fraction([~changed_zm[n] for n in motion]),
            "appearance_changed_mean": _mean_fraction([changed_zm[n] for n in appearance]),
        },
        "random_pairs_changed": {n: _fraction(neither[n]) for n in neither},
    }
    if real_changed is not None:
        kept_zm = {n: ~changed_za[n] for n in changed_za}  # zA kept, only zM changed
        kept_za = {n: ~changed_zm[n] for n in changed_zm}  # zM kept, only zA changed
        scores["selectivity"] = selectivity(kept_zm, kept_za, real_changed)
    if frame_judge is not None:
        scores["temporal"] = temporal_consistency(
            {name: np.concatenate(parts) for name, parts in per_frame.items()}
        )
    return scores


def verdict_metrics(result: Mapping[str, Any]) -> dict[str, float]:
    """The verdict's headline numbers from a `judge_trained_model` result:

    - `judge_selectivity_appearance`, `judge_selectivity_motion`: the mean S_f of each group,
      and `judge_selectivity_min`, the lowest S_f;
    - `judge_temporal_consistency` of generated videos and `judge_temporal_consistency_real`;
    - `judge_sprite_absent_frames` (and `_real`): the fraction of frames showing no sprite;
    - `judge_is_ratio_min`: the lowest, over the factors, of generated over real Inception Score;
    - `judge_neither_kept_appearance`, `judge_neither_kept_motion`: how often a label stays the
      same between generated videos that share neither code (the baseline of every "kept")."""
    values: dict[str, float] = {}
    chosen = result.get("selectivity")
    if chosen:
        for group, names in (("appearance", APPEARANCE_FACTORS), ("motion", MOTION_FACTORS)):
            values[f"judge_selectivity_{group}"] = float(
                np.mean([chosen[n]["selectivity"] for n in names])
            )
        values["judge_selectivity_min"] = min(v["selectivity"] for v in chosen.values())
    if "temporal" in result:
        values["judge_temporal_consistency"] = result["temporal"]["consistent"]["fraction"]
        values["judge_sprite_absent_frames"] = result["temporal"]["sprite_absent_frames"][
            "fraction"
        ]
    if "real_temporal" in result:
        real = result["real_temporal"]
        values["judge_temporal_consistency_real"] = real["consistent"]["fraction"]
        values["judge_sprite_absent_frames_real"] = real["sprite_absent_frames"]["fraction"]
    if "real_samples" in result:
        values["judge_is_ratio_min"] = min(
            score["inception_score"] / result["real_samples"][name]["inception_score"]
            for name, score in result["samples"].items()
        )
    neither = result["random_pairs_changed"]
    for group, names in (("appearance", APPEARANCE_FACTORS), ("motion", MOTION_FACTORS)):
        values[f"judge_neither_kept_{group}"] = float(
            np.mean([1.0 - neither[n]["fraction"] for n in names])
        )
    return values


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
    (`run_config`: its `TrainConfig` or `config.json` dict), with the run's judges (clips and
    frames) from the cache or trained now.

    Returns the scores of `judge_scores` (selectivity and temporal consistency included) beside
    their real-clip references: `real_samples` (the `label_scores` of held-out real clips),
    `real_random_pairs_changed` (the judge's label change rate between independent real clips,
    the denominator of the selectivity; `..._truth`: that of the true factors) and
    `real_temporal` (`temporal_consistency` of held-out real clips); `classifier` and
    `frame_classifier`: each judge's settings, held-out accuracy, cache folder and training.
    `num_train` overrides the judges' number of training videos (default `JudgeSettings`').
    """
    overrides = {} if num_train is None else {"num_train": num_train}
    settings = JudgeSettings.from_run_config(run_config, **overrides)
    judge, results = load_or_train_judge(settings, cache_dir, verbose=verbose)
    frame_judge, frame_results = load_or_train_frame_judge(settings, cache_dir, verbose=verbose)
    heldout = results["heldout"]
    real_changed = {
        name: value["fraction"] for name, value in heldout["random_pairs_changed"].items()
    }
    scores = judge_scores(
        lambda z_a, z_m: model.generate(z_a=z_a, z_m=z_m),
        model.latent_dim,
        judge,
        frame_judge=frame_judge,
        real_changed=real_changed,
        num_pairs=num_pairs,
        batch_size=batch_size,
        seed=seed,
        verbose=verbose,
    )
    classifier = {key: value for key, value in results.items() if key != "heldout"}
    classifier["heldout"] = {key: heldout[key] for key in ("seed", "clips", "accuracy")}
    frame_heldout = frame_results["heldout"]
    frame_classifier = {key: value for key, value in frame_results.items() if key != "heldout"}
    frame_classifier["heldout"] = {
        key: frame_heldout[key]
        for key in ("seed", "clips", "accuracy", "sprite_free_frames_called_absent")
    }
    return {
        "classifier": classifier,
        "frame_classifier": frame_classifier,
        **scores,
        "real_samples": heldout["scores"],
        "real_random_pairs_changed": heldout["random_pairs_changed"],
        "real_random_pairs_changed_truth": heldout["random_pairs_changed_truth"],
        "real_temporal": frame_heldout["temporal"],
    }


def format_verdict(result: Mapping[str, Any]) -> str:
    """The verdict of a `judge_trained_model` result as a few lines of text."""
    values = verdict_metrics(result)
    kept_zm = {**result["fixed_appearance"]["appearance_kept"]}
    kept_zm.update(
        {
            n: {"fraction": 1 - v["fraction"]}
            for n, v in result["fixed_appearance"]["motion_changed"].items()
        }
    )
    kept_za = {**result["fixed_motion"]["motion_kept"]}
    kept_za.update(
        {
            n: {"fraction": 1 - v["fraction"]}
            for n, v in result["fixed_motion"]["appearance_changed"].items()
        }
    )
    lines = [
        "verdict: factor, kept when zM is swapped / when zA is swapped, changed between real "
        "clips, selectivity S (1: the right code alone sets it; 0: collapsed, ignored or shared)"
    ]
    for name in SPRITE_FACTORS:
        if name not in kept_zm:
            continue
        s = result.get("selectivity", {}).get(name)
        chosen = f"{s['selectivity']:+.2f} ± {s['se']:.2f}" if s else "n/a"
        lines.append(
            f"  {name:<10} {kept_zm[name]['fraction']:.2f} / {kept_za[name]['fraction']:.2f}"
            f"  real {result['real_random_pairs_changed'][name]['fraction']:.2f}  S {chosen}"
        )
    lines.append(
        "  " + ", ".join(f"{key[len('judge_') :]} {value:.3f}" for key, value in values.items())
    )
    return "\n".join(lines)
