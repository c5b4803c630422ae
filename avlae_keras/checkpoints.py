"""Crash-safe checkpoints in a work directory: written atomically, the newest N kept.

Each checkpoint is a folder `ckpt-<step>/` holding `model.keras` (every network and optimizer
state) and `state.json` (step, data position, anything else the trainer needs). It is written
under a temporary name and renamed into place, and a rename is atomic on one filesystem, so a
process killed at any moment leaves either the previous checkpoints or the new complete one, plus
at most a temporary folder that the next run deletes.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

_NAME = re.compile(r"^ckpt-(\d{8,})$")
_TEMP_PREFIX = ".tmp-ckpt-"


@dataclass(frozen=True)
class Checkpoint:
    step: int
    path: Path

    @property
    def model_path(self) -> Path:
        return self.path / "model.keras"

    def read_state(self) -> dict[str, Any]:
        with open(self.path / "state.json") as f:
            return json.load(f)


def complete_checkpoints(directory: str | os.PathLike) -> list[Checkpoint]:
    """The complete checkpoint folders in `directory`, oldest first (none if it is missing)."""
    directory = Path(directory)
    if not directory.is_dir():
        return []
    found = []
    for entry in directory.iterdir():
        match = _NAME.match(entry.name)
        if match and (entry / "model.keras").is_file() and (entry / "state.json").is_file():
            found.append(Checkpoint(int(match.group(1)), entry))
    return sorted(found, key=lambda c: c.step)


class CheckpointManager:
    """Saves and finds checkpoints of a Keras model under `directory`.

    Args:
        directory: the work directory's checkpoint folder (created if missing).
        max_to_keep: how many of the newest checkpoints survive a save.
    """

    def __init__(self, directory: str | os.PathLike, max_to_keep: int = 3):
        if max_to_keep < 1:
            raise ValueError(f"max_to_keep must be at least 1, got {max_to_keep}")
        self.directory = Path(directory)
        self.max_to_keep = max_to_keep
        self.directory.mkdir(parents=True, exist_ok=True)
        self._remove_partial_writes()

    def _remove_partial_writes(self) -> None:
        for entry in self.directory.iterdir():
            if entry.name.startswith(_TEMP_PREFIX):
                shutil.rmtree(entry, ignore_errors=True)

    def all(self) -> list[Checkpoint]:
        """Complete checkpoints, oldest first."""
        return complete_checkpoints(self.directory)

    def latest(self) -> Checkpoint | None:
        checkpoints = self.all()
        return checkpoints[-1] if checkpoints else None

    def save(self, model, step: int, state: dict[str, Any] | None = None) -> Checkpoint:
        """Writes `model` (with its optimizers) and `state` as the checkpoint of `step`."""
        final = self.directory / f"ckpt-{step:08d}"
        temporary = self.directory / f"{_TEMP_PREFIX}{step:08d}-{os.getpid()}"
        shutil.rmtree(temporary, ignore_errors=True)
        temporary.mkdir()
        model.save(temporary / "model.keras")
        record = {"step": int(step), "saved_at": time.time(), **(state or {})}
        with open(temporary / "state.json", "w") as f:
            json.dump(record, f, indent=2)
            f.flush()
            os.fsync(f.fileno())
        if final.exists():  # a re-save of the same step (e.g. after resuming at it)
            shutil.rmtree(final)
        os.replace(temporary, final)
        self._prune()
        return Checkpoint(step, final)

    def _prune(self) -> None:
        for old in self.all()[: -self.max_to_keep]:
            shutil.rmtree(old.path, ignore_errors=True)


class CheckpointLoadError(RuntimeError):
    """A work directory has no usable checkpoint, or it does not match the run's configuration."""


def describe_differences(
    first: dict[str, Any], second: dict[str, Any], first_name: str, second_name: str
) -> str:
    """ "key: <first_name> a vs <second_name> b, ..." for the keys both have with other values;
    "" when they agree."""
    return ", ".join(
        f"{key}: {first_name} {first[key]!r} vs {second_name} {second[key]!r}"
        for key in first
        if key in second and first[key] != second[key]
    )


def find_checkpoint(workdir: str | os.PathLike, step: int | None = None) -> Checkpoint:
    """The newest complete checkpoint of a training work directory (or the one of `step`).

    Raises `CheckpointLoadError` naming the folder and what to do when there is none.
    """
    workdir = Path(workdir)
    if not workdir.is_dir():
        raise CheckpointLoadError(
            f"work directory {workdir} does not exist; pass the --workdir that "
            "scripts/train.py wrote to"
        )
    folder = workdir / "checkpoints"
    checkpoints = complete_checkpoints(folder)
    if not checkpoints:
        raise CheckpointLoadError(
            f"no complete checkpoint in {folder}; train first "
            f"(python scripts/train.py --workdir={workdir} ...) or pass the right --workdir"
        )
    if step is None:
        return checkpoints[-1]
    for checkpoint in checkpoints:
        if checkpoint.step == step:
            return checkpoint
    steps = ", ".join(str(c.step) for c in checkpoints)
    raise CheckpointLoadError(f"{folder} has no checkpoint of step {step}; it has steps {steps}")


def load_trained_model(workdir: str | os.PathLike, step: int | None = None):
    """Loads the AVLAE of a training work directory: `(model, checkpoint, run_config)`.

    `run_config` is the run's `config.json` (the trainer's options). The checkpoint's model must
    agree with it on the options that define the networks; otherwise, or when `model.keras` is
    unreadable, `CheckpointLoadError` names the file and the mismatch.
    """
    import keras

    # Importing the model also registers AVLAE and its networks for loading.
    from avlae_keras.model import ARCHITECTURE_OPTIONS

    checkpoint = find_checkpoint(workdir, step)
    run_config = checkpoint.read_state().get("config", {})
    config_file = Path(workdir) / "config.json"
    if config_file.is_file():
        with open(config_file) as f:
            run_config = {**run_config, **json.load(f)}
    try:
        model = keras.saving.load_model(checkpoint.model_path)
    except Exception as error:
        raise CheckpointLoadError(
            f"could not load {checkpoint.model_path}: {type(error).__name__}: {error}. "
            "The file is damaged or was written by another model; delete that checkpoint "
            "folder to fall back to an older one, or retrain"
        ) from error
    # The options a checkpoint must agree with (the run's config.json written by training).
    model_options = {key: getattr(model, key) for key in (*ARCHITECTURE_OPTIONS, "raft_iters")}
    details = describe_differences(model_options, run_config, "checkpoint", "config")
    if details:
        raise CheckpointLoadError(
            f"{checkpoint.model_path} does not match {config_file} ({details}); the checkpoint "
            "comes from another run: use that run's work directory"
        )
    return model, checkpoint, run_config
