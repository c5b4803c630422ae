"""Writing a file or a folder so that readers see the old one or the complete new one, never a
part: write under a temporary name beside it, then rename it into place (atomic on one
filesystem). Shared by `flows` (downloaded weights) and `avlae_keras` (checkpoints, caches,
logs, exports), which builds on `flows`.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import threading
from collections.abc import Iterator
from pathlib import Path

TEMPORARY_PREFIX = ".tmp-"


def temporary_name(path: str | os.PathLike) -> Path:
    """The temporary path `atomic_path` writes `path` under. It keeps `path`'s name at the end
    (writers that choose a format by suffix, such as `np.savez` or `.weights.h5`, still work)
    and is unique to this process and thread."""
    path = Path(path)
    return path.with_name(f"{TEMPORARY_PREFIX}{os.getpid()}-{threading.get_ident()}-{path.name}")


def remove_path(path: str | os.PathLike) -> None:
    """Removes a file or a folder tree; nothing if it is missing."""
    path = Path(path)
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        with contextlib.suppress(FileNotFoundError):
            path.unlink()


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike, *, durable: bool = False) -> Iterator[Path]:
    """Yields a temporary path beside `path` to write a file or a folder at. When the block ends
    without an error it replaces `path` (an existing file, or a folder, which is removed first);
    when it raises, the temporary path is removed and `path` is left as it was.

    `durable=True` also flushes the new file (or a folder's files) to disk before the rename, for
    what must survive a power cut, such as checkpoints.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = temporary_name(path)
    remove_path(temporary)
    try:
        yield temporary
        if not temporary.exists():
            raise FileNotFoundError(f"nothing was written at {temporary} (for {path})")
        if durable:
            _sync_tree(temporary)
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path)  # os.replace cannot replace a folder that is not empty
        os.replace(temporary, path)
    finally:
        remove_path(temporary)


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> None:
    with atomic_path(path) as temporary:
        temporary.write_bytes(data)


def atomic_write_text(path: str | os.PathLike, text: str) -> None:
    with atomic_path(path) as temporary:
        temporary.write_text(text)


def remove_temporaries(folder: str | os.PathLike) -> None:
    """Removes what writes killed midway left in `folder` (names from `temporary_name`); only for
    a folder that one process writes."""
    folder = Path(folder)
    if not folder.is_dir():
        return
    for entry in folder.iterdir():
        if entry.name.startswith(TEMPORARY_PREFIX):
            remove_path(entry)


def _sync_tree(path: Path) -> None:
    files = [path] if path.is_file() else [p for p in path.rglob("*") if p.is_file()]
    for file in files:
        with open(file, "rb") as handle:
            os.fsync(handle.fileno())
