"""The training job behind `avlae-train`: data, model, resume, Algorithm 1 steps, logs,
samples and checkpoints in one work directory.

Every training step t reads a batch that depends only on (seed, t), the model's random latents
come from a seed generator whose state is checkpointed, and checkpoints are written atomically;
so a run killed at any moment and started again with the same command continues exactly where
its newest checkpoint left off.

A rerun of a work directory with other options (`plan_resume`): the schedule and other run
control apply; --learning_rate applies to the four optimizers; the options that change what
trains (`TRAINING_OPTIONS`) are refused unless --override_resumed_options, then applied to the
loaded model; `RESUME_FIXED_OPTIONS` are always refused. The checkpoint is saved again at the
resumed step with the applied options, and config.json lists every change with its step, so
config.json always describes what the checkpoint holds. One `avlae-train` at a time writes a
work directory (`WorkDirLock`).
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import math
import time
from pathlib import Path
from typing import Any

import keras
import numpy as np

from avlae_keras import backend, distributed
from avlae_keras.config import (
    ARCHITECTURE,
    MODEL,
    RESUME_FIXED_OPTIONS,
    TRAINING_OPTIONS,
    ConfigError,
    TrainConfig,
    flag_value,
    user_cache_dir,
)
from avlae_keras.data import training_batches
from avlae_keras.errors import TrainingDivergedError
from avlae_keras.model import AVLAE
from avlae_keras.monitoring import CollapseWatch, MetricsLogger
from avlae_keras.networks.video_generator import with_initial_frames_of_older_runs
from avlae_keras.optimizer_group import default_optimizers
from avlae_keras.visualization import frame_strip, save_frame_strip, save_gif
from avlae_keras.workdir import (
    Checkpoint,
    CheckpointManager,
    WorkDir,
    WorkDirLock,
    WorkDirLockedError,
    complete_checkpoints,
)

logger = logging.getLogger("avlae_keras.trainer")

NUM_SAMPLES = 8


def build_model(config: TrainConfig) -> AVLAE:
    """The AVLAE of a run, compiled with the paper's optimizers at the run's learning rate."""
    model = AVLAE(**config.model_arguments())
    # None lets the model choose XLA where it can (not under a multi-replica tf.distribute).
    model.compile(
        optimizers=default_optimizers(config.learning_rate),
        jit_compile=None if config.jit_compile else False,
    )
    return model


def steps_of_next_call(step: int, config: TrainConfig) -> int:
    """How many steps the next compiled call trains after `step`: --steps_per_execution, or one
    at a time up to the next sample, checkpoint or the end when that comes sooner (each needs
    the model at its step), so that a run compiles at most two programs."""
    every = (config.sample_every, config.checkpoint_every)
    room = min(config.steps, *((step // n + 1) * n for n in every)) - step
    return config.steps_per_execution if room >= config.steps_per_execution else 1


@dataclasses.dataclass(frozen=True)
class ResumePlan:
    """How a rerun continues the newest checkpoint of its work directory.

    `changes`: the options applied from now on, {step, option, old, new} (learning rate, and
    the training options under --override_resumed_options); `history`: every change of the run
    so far, these included (recorded in state.json and config.json).
    """

    checkpoint: Checkpoint
    state: dict[str, Any]
    saved: TrainConfig
    changes: list[dict[str, Any]]
    history: list[dict[str, Any]]


def _policy_name(policy: Any) -> str | None:
    if isinstance(policy, dict):
        return policy.get("config", {}).get("name")
    return policy


def saved_options(checkpoint: Checkpoint) -> TrainConfig:
    """The options a checkpoint was trained with: the run configuration in its state.json, with
    the values its model itself holds (loss weights, RAFT settings, precision, seed) read from
    model.keras's configuration, without loading the model."""
    state_config = checkpoint.read_state().get("config", {})
    serialized = checkpoint.read_model_config()
    model = with_initial_frames_of_older_runs(serialized.get("config", {}), default_frames=16)
    names = TrainConfig.names_with_role(MODEL, ARCHITECTURE)
    held = {name: model[name] for name in names if name in model}
    held["mixed_precision"] = _policy_name(model.get("dtype")) == "mixed_bfloat16"
    flow = (model.get("flow_estimator") or {}).get("config")
    if flow:  # what RAFT runs with is its own configuration's (AVLAE's applied when built)
        held["raft_dtype"] = _policy_name(flow.get("dtype"))
        held["raft_unroll"] = flow.get("unroll", held.get("raft_unroll"))
    return TrainConfig.from_dict({**state_config, **held})


def _differences(saved: TrainConfig, config: TrainConfig, names) -> list[tuple[str, Any, Any]]:
    return [
        (name, getattr(saved, name), getattr(config, name))
        for name in names
        if getattr(saved, name) != getattr(config, name)
    ]


def _describe(differences, checkpoint: Checkpoint) -> str:
    return "; ".join(
        f"--{name}: the checkpoint {checkpoint.path} was trained with {flag_value(old)}, "
        f"this command gives {flag_value(new)}"
        for name, old, new in differences
    )


def _as_flags(differences, use_new: bool) -> str:
    return " ".join(
        f"--{name}={flag_value(new if use_new else old)}" for name, old, new in differences
    )


def plan_resume(config: TrainConfig, workdir: str | Path) -> ResumePlan | None:
    """How `config` continues the newest checkpoint in `workdir` (None when there is none).

    Reads the work directory and writes nothing. Raises `ConfigError` naming each option, the
    checkpoint's value, the new value and the fix when an option cannot change (architecture,
    flow estimator, Step III's variables) or may change only with --override_resumed_options.
    """
    existing = complete_checkpoints(WorkDir(workdir).checkpoints)
    if not existing:
        return None
    checkpoint = existing[-1]
    state = checkpoint.read_state()
    saved = saved_options(checkpoint)
    fixed = _differences(saved, config, RESUME_FIXED_OPTIONS)
    if fixed:
        raise ConfigError(
            f"cannot resume: {_describe(fixed, checkpoint)}. These options are fixed by the "
            f"trained checkpoint; rerun with {_as_flags(fixed, use_new=False)} (or "
            f"--flagfile={WorkDir(workdir).flags_file}), or train from scratch in a new --workdir"
        )
    training = _differences(saved, config, TRAINING_OPTIONS)
    if training and not config.override_resumed_options:
        raise ConfigError(
            f"refusing to resume with other training options: {_describe(training, checkpoint)}. "
            f"Rerun with the checkpoint's values ({_as_flags(training, use_new=False)}, or "
            f"--flagfile={WorkDir(workdir).flags_file}), or add --override_resumed_options to "
            f"train on with {_as_flags(training, use_new=True)} from step {checkpoint.step} "
            f"(recorded in {WorkDir(workdir).config_file})"
        )
    learning_rate = _differences(saved, config, ("learning_rate",))
    changes = [
        {"step": checkpoint.step, "option": name, "old": old, "new": new}
        for name, old, new in (*learning_rate, *training)
    ]
    history = [*state.get("changes", []), *changes]
    return ResumePlan(checkpoint, state, saved, changes, history)


def _load_resumed_model(plan: ResumePlan, config: TrainConfig) -> AVLAE:
    """The checkpoint's model with the plan's changes applied: a model option changed is built
    into a new model from the checkpoint's own configuration (its networks, loss terms and
    metrics follow it; nothing compiled keeps the old value), which then loads every weight and
    optimizer state of the checkpoint. The learning rate is set on each of the four optimizers."""
    changed = {c["option"]: c["new"] for c in plan.changes if c["option"] != "learning_rate"}
    held_by_model = set(TrainConfig.names_with_role(MODEL)) | {"mixed_precision"}
    if not held_by_model & set(changed):
        model = keras.saving.load_model(plan.checkpoint.model_path)
    else:
        serialized = plan.checkpoint.read_model_config()
        model_config = serialized["config"]
        for name, value in changed.items():
            if name in model_config:
                model_config[name] = value
        if "mixed_precision" in changed:
            model_config["dtype"] = "mixed_bfloat16" if changed["mixed_precision"] else "float32"
        flow = (model_config.get("flow_estimator") or {}).get("config")
        if flow is not None:
            flow["dtype"] = changed.get("raft_dtype", flow.get("dtype"))
            flow["unroll"] = changed.get("raft_unroll", flow.get("unroll"))
        model = keras.saving.deserialize_keras_object(serialized)
        model.load_weights(plan.checkpoint.model_path)
    for optimizer in model.optimizers:
        optimizer.learning_rate = config.learning_rate
    _check_model_holds(model, config)
    return model


def _check_model_holds(model: AVLAE, config: TrainConfig) -> None:
    """The resumed model runs with the run's options (config.json is written from them)."""
    held = {name: getattr(model, name) for name in TrainConfig.names_with_role(MODEL, ARCHITECTURE)}
    held["mixed_precision"] = model.dtype_policy.name == "mixed_bfloat16"
    if model.motion_encoder is not None:
        flow_estimator = model.motion_encoder.flow_estimator
        held["raft_iters"] = model.motion_encoder.raft_iters
        held["raft_dtype"] = flow_estimator.dtype_policy.name
        held["raft_unroll"] = flow_estimator.unroll
    rates = {_float32(o.learning_rate) for o in model.optimizers}
    held["learning_rate"] = rates.pop() if len(rates) == 1 else sorted(rates)
    wanted = {
        **{name: getattr(config, name) for name in held},
        "learning_rate": _float32(config.learning_rate),
    }
    differences = [name for name in held if held[name] != wanted[name]]
    if differences:
        raise RuntimeError(
            "the resumed model does not hold the run's options: "
            + ", ".join(f"{n}: model {held[n]!r} vs run {wanted[n]!r}" for n in differences)
        )


def _diverged(step: int, bad: list[str], workdir: WorkDir) -> TrainingDivergedError:
    existing = complete_checkpoints(workdir.checkpoints)
    last_good = existing[-1].path if existing else "none (none saved yet)"
    return TrainingDivergedError(
        f"non-finite loss ({', '.join(bad)}) at step {step}; stopped without saving. "
        f"The last good checkpoint is {last_good}; "
        "lower the learning rate or enable --r1_gamma, then rerun to resume from it."
    )


def _float32(value) -> float:
    return float(np.asarray(keras.ops.convert_to_numpy(value), dtype="float32"))


def _seed_state(model) -> list:
    return np.asarray(model.seed_generator.state).tolist()


def train(config: TrainConfig) -> dict[str, Any]:
    """Runs (or resumes) training to `config.steps`; returns the report: the final `step`, the
    newest `checkpoint`, the `samples` folder and the data epochs' summary (`data`).

    Everything that can refuse the run without the model (options, resume checks, another
    `avlae-train` in the work directory) does so before anything is written there. Raises
    `ConfigError` (options refused), `WorkDirLockedError`, `TrainingDivergedError` and
    `CheckpointWriteError`; `avlae_keras.cli` maps them to exit statuses.
    """
    config.validate()
    plan_resume(config, config.workdir)
    backend.enable_compilation_cache(user_cache_dir("compiled"))
    if config.mixed_precision:
        keras.config.set_dtype_policy("mixed_bfloat16")
    if config.distribution == "data_parallel":
        from avlae_keras.backend import data_parallel_scope

        with data_parallel_scope() as replicas:
            if config.batch_size % replicas:
                raise ConfigError(
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


# The application's entry point under the name every application shares (`avlae_keras.cli`).
run = train


def _lock_workdir(workdir: WorkDir, chief: bool) -> WorkDirLock | None:
    """Process 0's lock on the work directory; every process fails when it is held."""
    lock = error = None
    if chief:
        try:
            lock = WorkDirLock(workdir.path).acquire()
        except WorkDirLockedError as locked:
            error = locked
    if distributed.process_count() > 1:
        try:
            distributed.check_same(int(error is None), f"taking {workdir.lock_file} (process 0)")
        except RuntimeError:
            if error is None:
                raise
    if error is not None:
        raise error
    return lock


def _train(config: TrainConfig) -> dict[str, Any]:
    workdir = WorkDir(config.workdir)
    # With several processes, process 0 writes the work directory; all of them read it.
    chief = distributed.is_chief()
    lock = _lock_workdir(workdir, chief)
    try:
        return _train_locked(config, workdir, chief)
    finally:
        if lock is not None:
            lock.release()


def _train_locked(config: TrainConfig, workdir: WorkDir, chief: bool) -> dict[str, Any]:
    # Again now that no other run can write: a run that just ended may have added a checkpoint.
    plan = plan_resume(config, workdir.path)
    # What config.json, flags.txt and state.json record (the override is for this rerun only).
    recorded = config.replace(override_resumed_options=False)
    checkpoints = metrics = None
    if chief:
        workdir.path.mkdir(parents=True, exist_ok=True)
        checkpoints = CheckpointManager(workdir.checkpoints, config.keep_checkpoints)
        metrics = MetricsLogger(workdir.logs)
    batches = training_batches(config)
    if distributed.process_count() > 1:  # this process feeds its rows of each global batch
        batches = batches.shard(distributed.local_rows(config.batch_size))

    distributed.check_same(plan.checkpoint.step if plan else -1, "the checkpoint to resume from")
    # The initial weights depend on the seed only. A resumed model is built from its config
    # before the checkpoint's weights replace them: every process must build the same values
    # (JAX refuses replicated variables whose values differ between processes).
    keras.utils.set_random_seed(config.seed)
    history: list[dict[str, Any]] = []
    if plan is not None:
        model = _load_resumed_model(plan, config)
        model.seed_generator.state.assign(np.asarray(plan.state["seed_state"], dtype="uint32"))
        start = plan.checkpoint.step
        history = plan.history
        print(f"resuming from step {start} ({plan.checkpoint.path})", flush=True)
        for change in plan.changes:
            print(
                f"--{change['option']}: {flag_value(change['old'])} -> "
                f"{flag_value(change['new'])} from step {start}",
                flush=True,
            )
        if chief:
            metrics.truncate_after(start)
    else:
        model = build_model(config)
        start = 0
        print(f"starting a new run in {workdir.path}", flush=True)
    distributed.prepare_model(model)
    if config.steps_per_execution > 1 and not backend.accelerator_present():
        print(
            f"note: --steps_per_execution={config.steps_per_execution} on a CPU: XLA runs "
            "convolutions slower inside a loop, so at the demo's size a step costs 3-5x as much "
            "as with one step per call; it helps only tiny models there (benchmarks/RESULTS.md)",
            flush=True,
        )

    rng = np.random.default_rng(config.seed + 1)
    fixed_z_a = rng.standard_normal((NUM_SAMPLES, config.latent_dim)).astype("float32")
    fixed_z_m = rng.standard_normal((NUM_SAMPLES, config.latent_dim)).astype("float32")

    def save(step: int) -> None:
        if chief:
            checkpoints.save(
                model,
                step,
                {
                    "config": recorded.to_dict(),
                    "seed_state": _seed_state(model),
                    "data_epoch": batches.epoch_of(step),
                    "changes": history,
                },
            )
        else:
            distributed.save_model_elsewhere(model)  # saving has collectives
        distributed.barrier(f"checkpoint {step}")  # no process leaves while process 0 writes

    if plan is not None and plan.changes:
        save(start)  # the checkpoint holds the changed options before config.json says so
    if chief:
        workdir.write_config(recorded, history)
        workdir.write_flags(recorded)

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
    interval_seconds, interval_steps = 0.0, 0
    step = start
    stream = batches.iterate(start, config.steps, workers=config.data_workers)
    with contextlib.closing(stream):
        last_call_end = time.perf_counter()
        while step < config.steps:
            count = steps_of_next_call(step, config)
            videos = np.stack([next(stream) for _ in range(count)])
            logs_of_steps = backend.train_on_batches(model, videos)
            now = time.perf_counter()
            seconds_per_step, last_call_end = (now - last_call_end) / count, now
            for logs in logs_of_steps:
                step += 1
                interval_steps += 1
                interval_seconds += seconds_per_step
                bad = [name for name, value in logs.items() if not math.isfinite(value)]
                if bad:
                    if chief:
                        metrics.log_scalars(step, logs)
                    raise _diverged(step, bad, workdir)
                if step % config.log_every == 0 or step == config.steps:
                    rate = interval_steps / interval_seconds if interval_seconds > 0 else 0.0
                    if chief:
                        metrics.log_scalars(step, {**logs, "steps_per_second": rate})
                    progress.update(step, [("steps/s", rate), *logs.items()])
                    warning = collapse_watch.update(step, logs["diversity_ratio"])
                    if warning:
                        print(f"\n{warning}", flush=True)
                    interval_seconds, interval_steps = 0.0, 0
            # (Calls end at every sample and checkpoint step: `steps_of_next_call`.)
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
