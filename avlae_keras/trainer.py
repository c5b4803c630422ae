"""The training job behind `scripts/train.py`: data, model, resume, Algorithm 1 steps, logs,
samples and checkpoints in one work directory.

Every training step t reads a batch that depends only on (seed, t), the model's random latents
come from a seed generator whose state is checkpointed, and checkpoints are written atomically;
so a run killed at any moment and started again with the same command continues exactly where
its newest checkpoint left off.
"""

from __future__ import annotations

import dataclasses
import inspect
import itertools
import json
import logging
import math
import os
import time
from collections import deque
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import keras
import numpy as np

from avlae_keras.checkpoints import CheckpointManager, describe_differences
from avlae_keras.model import ARCHITECTURE_OPTIONS, AVLAE, default_optimizers
from avlae_keras.monitoring import CollapseWatch, MetricsLogger
from avlae_keras.visualization import frame_strip, save_frame_strip, save_gif

logger = logging.getLogger("avlae_keras.trainer")

GENERATED_DATASETS = ("sprites", "moving_mnist")
NUM_SAMPLES = 8


class TrainingDivergedError(RuntimeError):
    """A loss became NaN or infinite; the newest checkpoint is the last good state."""


@dataclasses.dataclass
class TrainConfig:
    """Everything a run depends on; `scripts/train.py` fills it from flags."""

    workdir: str
    dataset: str = "sprites"
    data_path: str | None = None
    ucf_split_dir: str | None = None
    ucf_split: int = 1
    num_videos: int = 512
    resolution: int = 128
    frames: int = 16
    frame_stride: int = 1
    flip: bool = False
    batch_size: int = 16
    learning_rate: float = 2e-4
    steps: int = 100_000
    latent_dim: int = 128
    base_channels: int = 80
    k1: float = 1.0
    k2: float = 1.0
    use_motion_encoder: bool = True
    generator_normalization: str = "instance"
    generator_normalize_each_conv: bool = True
    generator_bias: bool = True
    latent_injection: str = "every_block"
    mapping_lr_multiplier: float = 0.01
    normalize_latents: bool = True
    minibatch_stddev_group: int = 4
    step3_updates_mappings: bool = False
    r1_gamma: float = 0.0
    raft: str = "raft_sintel"
    raft_iters: int = 12
    mixed_precision: bool = False
    jit_compile: bool = True
    seed: int = 0
    log_every: int = 10
    sample_every: int = 500
    checkpoint_every: int = 500
    keep_checkpoints: int = 3
    distribution: str = "none"
    data_workers: int = 2
    collapse_warning_ratio: float = 0.2

    # Options that define the model; a checkpoint trained with others cannot be resumed.
    MODEL_KEYS = ARCHITECTURE_OPTIONS


# The TrainConfig fields passed to AVLAE under the same name.
MODEL_ARGUMENTS = tuple(
    name
    for name in inspect.signature(AVLAE.__init__).parameters
    if name in {field.name for field in dataclasses.fields(TrainConfig)}
)


def validate(config: TrainConfig) -> None:
    """Fails before any work on options that cannot run, naming the flag and the fix."""

    def fail(flag: str, problem: str, fix: str) -> None:
        raise ValueError(f"--{flag}: {problem}; {fix}.")

    if not config.workdir:
        fail("workdir", "is required", "pass a folder for checkpoints, logs and samples")
    if config.dataset not in GENERATED_DATASETS or config.dataset == "moving_mnist":
        if not config.data_path:
            fail("data_path", f"is required for --dataset={config.dataset}", "pass its folder")
        if not os.path.exists(config.data_path):
            fail("data_path", f"{config.data_path} does not exist", "check the path")
    if config.resolution < 16 or config.resolution & (config.resolution - 1):
        fail("resolution", f"{config.resolution} is not a power of two >= 16", "use 64 or 128")
    if config.frames < 2:
        fail("frames", f"{config.frames} frames have no motion", "use 16 (the paper) or >= 2")
    for flag in ("batch_size", "steps", "log_every", "sample_every", "checkpoint_every"):
        if getattr(config, flag) < 1:
            fail(flag, f"must be >= 1, got {getattr(config, flag)}", "pass a positive integer")
    if not config.use_motion_encoder and config.k1 != 0:
        fail("k1", "without the motion encoder there is no wM' to reconstruct", "set --k1=0")
    group = min(config.minibatch_stddev_group, config.batch_size)
    if config.minibatch_stddev_group < 0 or (group and config.batch_size % group):
        fail(
            "minibatch_stddev_group",
            f"{config.minibatch_stddev_group} does not divide --batch_size={config.batch_size}",
            "use a divisor of the batch size per device (4 by default), or 0 to turn it off",
        )
    if config.latent_injection == "split" and not config.generator_normalize_each_conv:
        fail(
            "latent_injection",
            "split modulates the normalisation after each temporal convolution, which needs it",
            "add --generator_normalize_each_conv or use every_block",
        )
    if config.learning_rate <= 0:
        fail("learning_rate", f"must be > 0, got {config.learning_rate}", "use 2e-4 (the paper)")
    if config.mapping_lr_multiplier <= 0:
        fail(
            "mapping_lr_multiplier",
            f"must be > 0, got {config.mapping_lr_multiplier}",
            "use 1 (the paper) or 0.01 (the default)",
        )
    if config.distribution not in ("none", "data_parallel"):
        fail("distribution", f"unknown {config.distribution!r}", "use 'none' or 'data_parallel'")
    if config.use_motion_encoder:
        from flows.raft.raft_presets import resolve_preset

        try:
            resolve_preset(config.raft)
        except (OSError, ValueError) as error:
            fail("raft", str(error), "see the README section 'RAFT weights offline'")


def build_source(config: TrainConfig):
    from avlae_keras.data import make_source

    size = config.resolution
    if config.dataset == "sprites":
        return make_source(
            "sprites",
            num_videos=config.num_videos,
            frames=max(config.frames * config.frame_stride, 16),
            size=size,
            seed=config.seed,
        )
    options: dict[str, Any] = {}
    if config.dataset == "ucf101":
        options.update(split_dir=config.ucf_split_dir, split=config.ucf_split, subset="train")
    return make_source(config.dataset, config.data_path, **options)


def clip_spec(config: TrainConfig):
    from avlae_keras.data import ClipSpec

    common = {"frames": config.frames, "stride": config.frame_stride, "flip": config.flip}
    if config.dataset == "ucf101" and config.resolution == 128:
        return ClipSpec.ucf101(**common)
    return ClipSpec(size=(config.resolution, config.resolution), **common)


class StepBatches:
    """The batch of every global step: step t reads positions [b*B, (b+1)*B) of data epoch
    t // steps_per_epoch, where b = t % steps_per_epoch. Loaded ahead in the background with
    tf.data when TensorFlow is installed, else with threads."""

    def __init__(self, loader, batch_size: int, workers: int = 2):
        self.loader = loader
        self.batch_size = batch_size
        self.workers = workers
        self.steps_per_epoch = loader.num_clips // batch_size
        if self.steps_per_epoch == 0:
            raise ValueError(
                f"the dataset has {loader.num_clips} clips, fewer than one batch of {batch_size}; "
                "lower --batch_size or add videos"
            )

    def load(self, step: int) -> np.ndarray:
        epoch, index = divmod(int(step), self.steps_per_epoch)
        first = index * self.batch_size
        clips, _ = self.loader.load_batch(epoch, range(first, first + self.batch_size))
        return clips

    def iterate(self, start: int, stop: int) -> Iterator[np.ndarray]:
        from avlae_keras.data import tensorflow_available

        if tensorflow_available() and keras.backend.backend() == "tensorflow":
            yield from self._iterate_tf_data(start, stop)
        else:
            yield from self._iterate_threads(start, stop)

    def _iterate_tf_data(self, start, stop):
        import tensorflow as tf

        shape = (self.batch_size, self.loader.spec.frames, *self.loader.spec.size, 3)

        def load(step):
            clips = tf.numpy_function(self.load, [step], tf.float32)
            clips.set_shape(shape)
            return clips

        steps = tf.data.Dataset.range(start, stop)
        dataset = steps.map(load, num_parallel_calls=self.workers, deterministic=True)
        yield from dataset.prefetch(2)

    def _iterate_threads(self, start, stop):
        steps = iter(range(start, stop))
        with ThreadPoolExecutor(self.workers) as pool:
            window = deque(
                pool.submit(self.load, s) for s in itertools.islice(steps, self.workers + 1)
            )
            while window:
                clips = window.popleft().result()
                following = next(steps, None)
                if following is not None:
                    window.append(pool.submit(self.load, following))
                yield clips


def build_model(config: TrainConfig) -> AVLAE:
    model = AVLAE(
        flow_estimator=config.raft if config.use_motion_encoder else None,
        **{name: getattr(config, name) for name in MODEL_ARGUMENTS},
    )
    # None lets the model choose XLA where it can (not under a multi-replica tf.distribute).
    model.compile(
        optimizers=default_optimizers(config.learning_rate),
        jit_compile=None if config.jit_compile else False,
    )
    return model


def _check_resumable(config: TrainConfig, saved: dict[str, Any], workdir: Path) -> None:
    flags = {key: getattr(config, key) for key in TrainConfig.MODEL_KEYS}
    details = describe_differences(saved, flags, "checkpoint", "flags")
    if details:
        raise ValueError(
            f"the checkpoint in {workdir} was trained with other model options ({details}); "
            "use a new --workdir or the flags it was trained with"
        )


def _seed_state(model) -> list:
    return np.asarray(model.seed_generator.state).tolist()


def train(config: TrainConfig) -> dict[str, Any]:
    """Runs (or resumes) training to `config.steps`; returns a summary."""
    validate(config)
    if config.mixed_precision:
        keras.config.set_dtype_policy("mixed_bfloat16")
    if config.distribution == "data_parallel":
        from avlae_keras.backend import data_parallel_scope

        with data_parallel_scope() as replicas:
            if config.batch_size % replicas:
                raise ValueError(
                    f"--batch_size: {config.batch_size} does not split over {replicas} devices; "
                    f"use a multiple of {replicas}."
                )
            print(f"data parallel over {replicas} devices", flush=True)
            return _train(config)
    return _train(config)


def _train(config: TrainConfig) -> dict[str, Any]:
    workdir = Path(config.workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    checkpoints = CheckpointManager(workdir / "checkpoints", config.keep_checkpoints)
    metrics = MetricsLogger(workdir / "logs")

    from avlae_keras.data import ClipLoader

    loader = ClipLoader(build_source(config), clip_spec(config), training=True, seed=config.seed)
    batches = StepBatches(loader, config.batch_size, config.data_workers)

    latest = checkpoints.latest()
    if latest is not None:
        state = latest.read_state()
        _check_resumable(config, state.get("config", {}), workdir)
        model = keras.saving.load_model(latest.model_path)
        model.seed_generator.state.assign(np.asarray(state["seed_state"], dtype="uint32"))
        start = latest.step
        print(f"resuming from step {start} ({latest.path})", flush=True)
        metrics.truncate_after(start)
    else:
        keras.utils.set_random_seed(config.seed)  # the initial weights depend on the seed only
        model = build_model(config)
        start = 0
        print(f"starting a new run in {workdir}", flush=True)
    with open(workdir / "config.json", "w") as f:
        json.dump(dataclasses.asdict(config), f, indent=2)

    rng = np.random.default_rng(config.seed + 1)
    fixed_z_a = rng.standard_normal((NUM_SAMPLES, config.latent_dim)).astype("float32")
    fixed_z_m = rng.standard_normal((NUM_SAMPLES, config.latent_dim)).astype("float32")

    def save(step: int) -> None:
        checkpoints.save(
            model,
            step,
            {
                "config": dataclasses.asdict(config),
                "seed_state": _seed_state(model),
                "data_epoch": step // batches.steps_per_epoch,
            },
        )

    def write_samples(step: int) -> None:
        videos = np.asarray(model.generate(z_a=fixed_z_a, z_m=fixed_z_m))
        folder = workdir / "samples"
        save_gif(videos, folder / f"step_{step:08d}.gif")
        save_frame_strip(videos, folder / f"step_{step:08d}.png")
        metrics.log_image(step, "samples/frame_strip", frame_strip(videos))

    collapse_watch = CollapseWatch(config.collapse_warning_ratio)
    # Every value is shown as logged at that step (Progbar would average them since the start).
    shown_as_is = ["steps/s", *(metric.name for metric in model.metrics)]
    progress = keras.utils.Progbar(config.steps, stateful_metrics=shown_as_is, unit_name="step")
    progress.update(start)
    interval_start, interval_steps = time.perf_counter(), 0
    step = start
    for videos in batches.iterate(start, config.steps):
        logs = model.train_on_batch(videos, return_dict=True)
        step += 1
        interval_steps += 1
        bad = [name for name, value in logs.items() if not math.isfinite(float(value))]
        if bad:
            metrics.log_scalars(step, logs)
            newest = checkpoints.latest()
            last_good = newest.path if newest else "none (none saved yet)"
            raise TrainingDivergedError(
                f"non-finite loss ({', '.join(bad)}) at step {step}; stopped without saving. "
                f"The last good checkpoint is {last_good}; "
                "lower the learning rate or enable --r1_gamma, then rerun to resume from it."
            )
        if step % config.log_every == 0 or step == config.steps:
            elapsed = time.perf_counter() - interval_start
            rate = interval_steps / elapsed if elapsed > 0 else 0.0
            metrics.log_scalars(step, {**logs, "steps_per_second": rate})
            progress.update(step, [("steps/s", rate), *((k, float(v)) for k, v in logs.items())])
            warning = collapse_watch.update(step, float(logs["diversity_ratio"]))
            if warning:
                print(f"\n{warning}", flush=True)
            interval_start, interval_steps = time.perf_counter(), 0
        if step % config.sample_every == 0 or step == config.steps:
            write_samples(step)
        if step % config.checkpoint_every == 0 or step == config.steps:
            save(step)
    summary = loader.epoch_summary(step // batches.steps_per_epoch)
    metrics.close()
    newest = checkpoints.latest()
    return {
        "step": step,
        "checkpoint": str(newest.path) if newest else None,
        "samples": str(workdir / "samples"),
        "data": summary,
    }
