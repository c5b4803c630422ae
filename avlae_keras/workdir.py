"""The work directory of a run, shared by every application (train, evaluate, figures, export):
its layout, its configuration, its checkpoints and loading its trained model.

    <workdir>/config.json        the run's TrainConfig as its checkpoint holds it, plus the
                                 options changed on resuming ("changes": step, option, old, new)
    <workdir>/flags.txt          the same options as a flagfile: `avlae-train
                                 --flagfile=<workdir>/flags.txt` reruns (resumes) the run
    <workdir>/.lock              held by the `avlae-train` writing the folder (`WorkDirLock`)
    <workdir>/checkpoints/       crash-safe checkpoints, the newest N kept (`CheckpointManager`)
    <workdir>/logs/              metrics.jsonl and TensorBoard events
    <workdir>/samples/           sample GIFs and PNG strips written during training
    <workdir>/figures/           figures of `avlae-sample`
    <workdir>/eval/              reports of `avlae-evaluate`, and real_statistics/, the cached
                                 feature statistics of the run's real clips

Each checkpoint is a folder `ckpt-<step>/` holding `model.keras` (every network and optimizer
state) and `state.json` (step, data position, anything else the trainer needs). It is written
under a temporary name and renamed into place, and a rename is atomic on one filesystem, so a
process killed at any moment leaves either the previous checkpoints or the new complete one, plus
at most a temporary folder that the next run deletes.
"""

from __future__ import annotations

import datetime
import errno
import fcntl
import json
import os
import re
import shutil
import socket
import time
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from avlae_keras.config import ARCHITECTURE_OPTIONS, TrainConfig, user_cache_dir
from flows.atomic_files import atomic_path, atomic_write_text, remove_temporaries

_NAME = re.compile(r"^ckpt-(\d{8,})$")


class WorkDir:
    """The paths of a work directory and its configuration file."""

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)

    def __fspath__(self) -> str:
        return str(self.path)

    @property
    def config_file(self) -> Path:
        return self.path / "config.json"

    @property
    def flags_file(self) -> Path:
        return self.path / "flags.txt"

    @property
    def checkpoints(self) -> Path:
        return self.path / "checkpoints"

    @property
    def logs(self) -> Path:
        return self.path / "logs"

    @property
    def samples(self) -> Path:
        return self.path / "samples"

    @property
    def figures(self) -> Path:
        return self.path / "figures"

    @property
    def evaluations(self) -> Path:
        return self.path / "eval"

    def eval_report(self, step: int) -> Path:
        """The default path of `avlae-evaluate`'s report of the checkpoint of `step`."""
        return self.evaluations / f"metrics_step_{step:08d}.json"

    @property
    def real_statistics(self) -> Path:
        """The cached feature statistics of the run's real clips (FVD, FID)."""
        return self.evaluations / "real_statistics"

    @property
    def lock_file(self) -> Path:
        return self.path / ".lock"

    def write_config(self, config: TrainConfig, changes: list[dict] | None = None) -> None:
        """config.json: `config`, and the options changed on resuming when there were any."""
        self.path.mkdir(parents=True, exist_ok=True)
        record = config.to_dict()
        if changes:
            record["changes"] = list(changes)
        atomic_write_text(self.config_file, json.dumps(record, indent=2))

    def write_flags(self, config: TrainConfig) -> None:
        """flags.txt: a flagfile of `config` (`avlae-train --flagfile=<workdir>/flags.txt`)."""
        self.path.mkdir(parents=True, exist_ok=True)
        atomic_write_text(self.flags_file, "\n".join(config.to_flags()) + "\n")

    def read_config(self) -> TrainConfig | None:
        """The run's configuration, or None when the folder has no config.json."""
        if not self.config_file.is_file():
            return None
        with open(self.config_file) as f:
            return TrainConfig.from_dict(json.load(f))


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

    def read_model_config(self) -> dict[str, Any]:
        """The serialized model of `model.keras` (class, config, compile config), read without
        loading its weights."""
        with zipfile.ZipFile(self.model_path) as archive:
            return json.loads(archive.read("config.json"))


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
        remove_temporaries(self.directory)  # what a killed save left

    def all(self) -> list[Checkpoint]:
        """Complete checkpoints, oldest first."""
        return complete_checkpoints(self.directory)

    def latest(self) -> Checkpoint | None:
        checkpoints = self.all()
        return checkpoints[-1] if checkpoints else None

    def save(self, model, step: int, state: dict[str, Any] | None = None) -> Checkpoint:
        """Writes `model` (with its optimizers) and `state` as the checkpoint of `step`.

        A write that fails leaves the earlier checkpoints as they were and removes its partial
        folder; a full disk raises `CheckpointWriteError` naming the space needed and free and
        the last good checkpoint."""
        final = self.directory / f"ckpt-{step:08d}"
        record = {"step": int(step), "saved_at": time.time(), **(state or {})}
        # A re-save of the same step (e.g. after resuming at it) replaces the folder.
        with atomic_path(final, durable=True) as temporary:
            try:
                temporary.mkdir()
                model.save(temporary / "model.keras")
                (temporary / "state.json").write_text(json.dumps(record, indent=2))
            except Exception as error:
                if _is_disk_full(error):
                    raise self._disk_full_error(step, _folder_bytes(temporary)) from error
                raise
        self._prune()
        return Checkpoint(step, final)

    def _prune(self) -> None:
        for old in self.all()[: -self.max_to_keep]:
            shutil.rmtree(old.path, ignore_errors=True)

    def _disk_full_error(self, step: int, written: int) -> CheckpointWriteError:
        last_good = self.latest()
        # A checkpoint of the same model is about as large as the previous one.
        needed = max(written, _folder_bytes(last_good.path) if last_good else 0)
        free = shutil.disk_usage(self.directory).free
        if last_good is None:
            resume = "there is no earlier checkpoint, so a rerun starts from step 0"
        else:
            resume = (
                f"the last good checkpoint is {last_good.path} (step {last_good.step}), "
                f"and rerunning the same command resumes from it"
            )
        message = (
            f"no space left on the disk of {self.directory} while writing the checkpoint of "
            f"step {step}: it needs about {_size(needed)} and {_size(free)} are free "
            f"({_size(written)} were written before the disk filled up). The partial "
            f"checkpoint was removed and {resume}. Free space on that disk (a run needs room "
            f"for --keep_checkpoints + 1 = {self.max_to_keep + 1} checkpoints, as the oldest is "
            "deleted after the new one is written), or move the work directory to a disk with "
            "room and pass that --workdir."
        )
        return CheckpointWriteError(
            message,
            directory=self.directory,
            step=step,
            bytes_needed=needed,
            bytes_free=free,
            last_checkpoint=last_good,
        )


class CheckpointWriteError(OSError):
    """A checkpoint could not be written for want of disk space; the earlier checkpoints are
    intact. `bytes_needed` is an estimate (the previous checkpoint's size, or what was written
    before the failure if more), `bytes_free` the free space after removing the partial write,
    `last_checkpoint` the newest complete checkpoint (None if there is none)."""

    def __init__(
        self,
        message: str,
        *,
        directory: Path,
        step: int,
        bytes_needed: int,
        bytes_free: int,
        last_checkpoint: Checkpoint | None,
    ):
        super().__init__(message)
        self.errno = errno.ENOSPC
        self.directory = directory
        self.step = step
        self.bytes_needed = bytes_needed
        self.bytes_free = bytes_free
        self.last_checkpoint = last_checkpoint


def _is_disk_full(error: BaseException | None) -> bool:
    """Whether `error`, or an error it was raised from, says the disk (or quota) is full."""
    seen = set()
    while error is not None and id(error) not in seen:
        seen.add(id(error))
        if isinstance(error, OSError) and error.errno in (errno.ENOSPC, errno.EDQUOT):
            return True
        if "No space left on device" in str(error):  # libraries that drop the errno (h5py)
            return True
        error = error.__cause__ or error.__context__
    return False


def _folder_bytes(folder: Path) -> int:
    """The total size of the files under `folder` (0 when it is missing)."""
    if not folder.is_dir():
        return 0
    return sum(entry.stat().st_size for entry in folder.rglob("*") if entry.is_file())


def _size(num_bytes: int) -> str:
    """e.g. "6.3 MB (6,291,456 bytes)"."""
    for unit, scale in (("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if num_bytes >= scale:
            return f"{num_bytes / scale:.1f} {unit} ({num_bytes:,} bytes)"
    return f"{num_bytes:,} bytes"


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
            "avlae-train (scripts/train.py) wrote to"
        )
    folder = workdir / "checkpoints"
    checkpoints = complete_checkpoints(folder)
    if not checkpoints:
        raise CheckpointLoadError(
            f"no complete checkpoint in {folder}; train first "
            f"(avlae-train --workdir={workdir} ...) or pass the right --workdir"
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

    `run_config` is the run's `TrainConfig` (its `config.json`, else the checkpoint's copy). The
    checkpoint's model must agree with it on the options that define the networks; otherwise,
    or when `model.keras` is unreadable, `CheckpointLoadError` names the file and the mismatch.
    """
    import keras

    import avlae_keras.model  # noqa: F401  (registers AVLAE and its networks for loading)
    from avlae_keras import backend

    checkpoint = find_checkpoint(workdir, step)
    backend.enable_compilation_cache(user_cache_dir("compiled"))
    run_config = WorkDir(workdir).read_config()
    if run_config is None:
        run_config = TrainConfig.from_dict(checkpoint.read_state().get("config", {}))
    try:
        model = keras.saving.load_model(checkpoint.model_path)
    except Exception as error:
        raise CheckpointLoadError(
            f"could not load {checkpoint.model_path}: {type(error).__name__}: {error}. "
            "The file is damaged or was written by another model; delete that checkpoint "
            "folder to fall back to an older one, or retrain"
        ) from error
    model_options = {key: getattr(model, key) for key in (*ARCHITECTURE_OPTIONS, "raft_iters")}
    details = describe_differences(model_options, {**run_config.to_dict()}, "checkpoint", "config")
    if details:
        raise CheckpointLoadError(
            f"{checkpoint.model_path} does not match {WorkDir(workdir).config_file} ({details}); "
            "the checkpoint comes from another run: use that run's work directory"
        )
    return model, checkpoint, run_config


class WorkDirLockedError(RuntimeError):
    """Another live `avlae-train` writes this work directory."""


class WorkDirLock:
    """One writer per work directory: an exclusive `flock` on `<workdir>/.lock`, which holds the
    holder's pid, host and start time for the message of a refused second writer.

    The kernel releases a flock when its process dies, so a lock left by a killed run does not
    block. A lock still held although its recorded holder is not alive on this host (a child
    that inherited the descriptor) is stale too: the file is replaced.
    """

    def __init__(self, workdir: str | os.PathLike):
        self.path = WorkDir(workdir).lock_file
        self._file = None

    def acquire(self) -> WorkDirLock:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        for _ in range(3):
            handle = open(self.path, "a+")
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                holder = _read_holder(handle)
                handle.close()
                if _dead_on_this_host(holder):
                    self.path.unlink(missing_ok=True)
                    continue
                raise WorkDirLockedError(_locked_message(self.path.parent, holder)) from None
            # The file may have been replaced (stale) between opening and locking it.
            if not _same_file(self.path, handle):
                handle.close()
                continue
            handle.seek(0)
            handle.truncate()
            started = datetime.datetime.now().astimezone().isoformat(timespec="seconds")
            handle.write(
                json.dumps({"pid": os.getpid(), "host": socket.gethostname(), "since": started})
            )
            handle.flush()
            self._file = handle
            return self
        raise WorkDirLockedError(
            f"could not take {self.path}: it keeps being replaced by other processes; "
            "make sure no other avlae-train uses this --workdir, then rerun"
        )

    def release(self) -> None:
        if self._file is None:
            return
        self._file.seek(0)
        self._file.truncate()
        self._file.flush()
        fcntl.flock(self._file, fcntl.LOCK_UN)
        self._file.close()
        self._file = None

    def __enter__(self) -> WorkDirLock:
        return self.acquire()

    def __exit__(self, *exc_info) -> None:
        self.release()


def _same_file(path: Path, handle) -> bool:
    try:
        return os.stat(path).st_ino == os.fstat(handle.fileno()).st_ino
    except FileNotFoundError:
        return False


def _read_holder(handle) -> dict[str, Any]:
    handle.seek(0)
    try:
        return json.loads(handle.read() or "{}")
    except json.JSONDecodeError:
        return {}


def _dead_on_this_host(holder: dict[str, Any]) -> bool:
    pid = holder.get("pid")
    if holder.get("host") != socket.gethostname() or not isinstance(pid, int):
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:  # alive, another user's
        return False
    return False


def _locked_message(workdir: Path, holder: dict[str, Any]) -> str:
    who = (
        f"avlae-train process {holder.get('pid', '?')} on host {holder.get('host', '?')} "
        f"(since {holder.get('since', '?')})"
    )
    return (
        f"work directory {workdir} is being written by {who}; two runs in one folder would "
        "interleave their checkpoints and logs. Wait for it to finish (or stop it: kill "
        f"{holder.get('pid', '<pid>')} on {holder.get('host', 'its host')}), then rerun to "
        "resume, or pass another --workdir"
    )
