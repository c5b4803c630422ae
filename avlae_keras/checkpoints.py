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
        found = []
        for entry in self.directory.iterdir():
            match = _NAME.match(entry.name)
            if match and (entry / "model.keras").is_file() and (entry / "state.json").is_file():
                found.append(Checkpoint(int(match.group(1)), entry))
        return sorted(found, key=lambda c: c.step)

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
