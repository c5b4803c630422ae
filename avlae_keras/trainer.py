"""The training job behind `avlae-train`: data, model, resume, Algorithm 1 steps, logs,
samples and checkpoints in one work directory.

Every training step t reads a batch that depends only on (seed, t), the model's random latents
come from a seed generator whose state is checkpointed, and checkpoints are written atomically;
so a run killed at any moment and started again with the same command continues exactly where
its newest checkpoint left off.
"""

from __future__ import annotations

import logging
import math
import time
from pathlib import Path
from typing import Any

import keras
import numpy as np

from avlae_keras import backend, distributed
from avlae_keras.config import TrainConfig, user_cache_dir
from avlae_keras.data import training_batches
from avlae_keras.model import AVLAE
from avlae_keras.monitoring import CollapseWatch, MetricsLogger
from avlae_keras.optimizer_group import default_optimizers
from avlae_keras.visualization import frame_strip, save_frame_strip, save_gif
from avlae_keras.workdir import (
    CheckpointManager,
    WorkDir,
    architecture_differences,
    complete_checkpoints,
)

logger = logging.getLogger("avlae_keras.trainer")

NUM_SAMPLES = 8


class TrainingDivergedError(RuntimeError):
    """A loss became NaN or infinite; the newest checkpoint is the last good state."""


def build_model(config: TrainConfig) -> AVLAE:
    """The AVLAE of a run, compiled with the paper's optimizers at the run's learning rate."""
    model = AVLAE(**config.model_arguments())
    # None lets the model choose XLA where it can (not under a multi-replica tf.distribute).
    model.compile(
        optimizers=default_optimizers(config.learning_rate),
        jit_compile=None if config.jit_compile else False,
    )
    return model


def _check_resumable(config: TrainConfig, saved: dict[str, Any], workdir: Path) -> None:
    details = architecture_differences(saved, config, "checkpoint", "flags")
    if details:
        raise ValueError(
            f"the checkpoint in {workdir} was trained with other model options ({details}); "
            "use a new --workdir or the flags it was trained with"
        )


def _seed_state(model) -> list:
    return np.asarray(model.seed_generator.state).tolist()


def train(config: TrainConfig) -> dict[str, Any]:
    """Runs (or resumes) training to `config.steps`; returns a summary."""
    config.validate()
    backend.enable_compilation_cache(user_cache_dir("compiled"))
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
    if config.distribution == "multi_process":
        # Before the model is built: every process joins the cluster first.
        with distributed.multi_process_scope(config) as cluster:
            print(
                f"process {cluster.process_index} of {cluster.process_count}, "
                f"data parallel over {cluster.num_replicas} devices",
                flush=True,
            )
            return _train(config)
    return _train(config)


def _train(config: TrainConfig) -> dict[str, Any]:
    workdir = WorkDir(config.workdir)
    # With several processes, process 0 writes the work directory; all of them read it.
    chief = distributed.is_chief()
    checkpoints = metrics = None
    if chief:
        workdir.path.mkdir(parents=True, exist_ok=True)
        checkpoints = CheckpointManager(workdir.checkpoints, config.keep_checkpoints)
        metrics = MetricsLogger(workdir.logs)
    batches = training_batches(config)
    if distributed.process_count() > 1:  # this process feeds its rows of each global batch
        batches = batches.shard(distributed.local_rows(config.batch_size))

    existing = complete_checkpoints(workdir.checkpoints)
    latest = existing[-1] if existing else None
    distributed.check_same(latest.step if latest else -1, "the checkpoint to resume from")
    # The initial weights depend on the seed only. A resumed model is built from its config
    # before the checkpoint's weights replace them: every process must build the same values
    # (JAX refuses replicated variables whose values differ between processes).
    keras.utils.set_random_seed(config.seed)
    if latest is not None:
        state = latest.read_state()
        _check_resumable(config, state.get("config", {}), workdir.path)
        model = keras.saving.load_model(latest.model_path)
        model.seed_generator.state.assign(np.asarray(state["seed_state"], dtype="uint32"))
        start = latest.step
        print(f"resuming from step {start} ({latest.path})", flush=True)
        if chief:
            metrics.truncate_after(start)
    else:
        model = build_model(config)
        start = 0
        print(f"starting a new run in {workdir.path}", flush=True)
    distributed.prepare_model(model)
    if chief:
        workdir.write_config(config)

    rng = np.random.default_rng(config.seed + 1)
    fixed_z_a = rng.standard_normal((NUM_SAMPLES, config.latent_dim)).astype("float32")
    fixed_z_m = rng.standard_normal((NUM_SAMPLES, config.latent_dim)).astype("float32")

    def save(step: int) -> None:
        if chief:
            checkpoints.save(
                model,
                step,
                {
                    "config": config.to_dict(),
                    "seed_state": _seed_state(model),
                    "data_epoch": batches.epoch_of(step),
                },
            )
        else:
            distributed.save_model_elsewhere(model)  # saving has collectives
        distributed.barrier(f"checkpoint {step}")  # no process leaves while process 0 writes

    def write_samples(step: int) -> None:
        videos = np.asarray(model.generate(z_a=fixed_z_a, z_m=fixed_z_m))  # in every process
        if not chief:
            return
        folder = workdir.samples
        save_gif(videos, folder / f"step_{step:08d}.gif")
        save_frame_strip(videos, folder / f"step_{step:08d}.png")
        metrics.log_image(step, "samples/frame_strip", frame_strip(videos))

    collapse_watch = CollapseWatch(config.collapse_warning_ratio)
    # Every value is shown as logged at that step (Progbar would average them since the start).
    shown_as_is = ["steps/s", *(metric.name for metric in model.metrics)]
    progress = keras.utils.Progbar(
        config.steps, stateful_metrics=shown_as_is, unit_name="step", verbose=1 if chief else 0
    )
    progress.update(start)
    interval_start, interval_steps = time.perf_counter(), 0
    step = start
    for videos in batches.iterate(start, config.steps, workers=config.data_workers):
        logs = backend.train_on_batch(model, videos)
        step += 1
        interval_steps += 1
        bad = [name for name, value in logs.items() if not math.isfinite(float(value))]
        if bad:
            if chief:
                metrics.log_scalars(step, logs)
            existing = complete_checkpoints(workdir.checkpoints)
            newest = existing[-1] if existing else None
            last_good = newest.path if newest else "none (none saved yet)"
            raise TrainingDivergedError(
                f"non-finite loss ({', '.join(bad)}) at step {step}; stopped without saving. "
                f"The last good checkpoint is {last_good}; "
                "lower the learning rate or enable --r1_gamma, then rerun to resume from it."
            )
        if step % config.log_every == 0 or step == config.steps:
            elapsed = time.perf_counter() - interval_start
            rate = interval_steps / elapsed if elapsed > 0 else 0.0
            if chief:
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
    summary = batches.loader.epoch_summary(batches.epoch_of(step))
    if chief:
        metrics.close()
    existing = complete_checkpoints(workdir.checkpoints)
    newest = existing[-1] if existing else None
    return {
        "step": step,
        "checkpoint": str(newest.path) if newest else None,
        "samples": str(workdir.samples),
        "data": summary,
    }
