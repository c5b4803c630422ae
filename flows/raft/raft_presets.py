"""RAFT presets: the official checkpoints, where to find them, and how to fetch them."""

from __future__ import annotations

import dataclasses
import hashlib
import os
import shutil
import tempfile
import urllib.request
import zipfile
from pathlib import Path

from flows.atomic_files import atomic_path

# The archive the RAFT authors' `download_models.sh` fetches; it holds `models/<file>`.
MODELS_ZIP_URL = "https://www.dropbox.com/s/npt24nvhoojdr0n/models.zip?dl=1"

RAFT_PRESETS = {
    "raft_sintel": {
        "file": "raft-sintel.pth",
        "md5": "cc69e5da1f38673ab10d1849859ebe91",
        "variant": "large",
        "padding_mode": "sintel",
        "description": "RAFT, FlyingChairs+Things, fine-tuned on Sintel (the one AVLAE uses).",
    },
    "raft_things": {
        "file": "raft-things.pth",
        "md5": None,
        "variant": "large",
        "padding_mode": "sintel",
        "description": "RAFT, trained on FlyingChairs then FlyingThings3D.",
    },
    "raft_kitti": {
        "file": "raft-kitti.pth",
        "md5": None,
        "variant": "large",
        "padding_mode": "kitti",
        "description": "RAFT, fine-tuned on KITTI 2015.",
    },
    "raft_small": {
        "file": "raft-small.pth",
        "md5": "925642262acc623b3996690eac7d14c9",
        "variant": "small",
        "padding_mode": "sintel",
        "description": "RAFT-small, trained on FlyingChairs+Things.",
    },
}

WEIGHTS_DIR_ENV = "FLOWS_WEIGHTS_DIR"
CACHE_DIR_ENV = "FLOWS_CACHE_DIR"


class PresetUnavailableError(FileNotFoundError):
    """A preset's weights are neither on disk nor downloadable."""


@dataclasses.dataclass(frozen=True)
class ResolvedPreset:
    checkpoint_path: Path | None
    keras_preset_dir: Path | None
    padding_mode: str = "sintel"


def cache_dir() -> Path:
    """`$FLOWS_CACHE_DIR`, else `$XDG_CACHE_HOME/flows/raft`, else `~/.cache/flows/raft`."""
    if os.environ.get(CACHE_DIR_ENV):
        return Path(os.environ[CACHE_DIR_ENV])
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "flows" / "raft"


def md5sum(path: str | os.PathLike, chunk: int = 1 << 20) -> str:
    digest = hashlib.md5()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def _candidates(file_name: str) -> list[Path]:
    places = []
    if os.environ.get(WEIGHTS_DIR_ENV):
        root = Path(os.environ[WEIGHTS_DIR_ENV])
        places += [root / file_name, root / "models" / file_name, root / "raft" / file_name]
    places.append(cache_dir() / file_name)
    return places


def _check_md5(path: Path, expected: str | None) -> None:
    if expected is not None and md5sum(path) != expected:
        raise ValueError(
            f"{path}: md5 {md5sum(path)} differs from the official {expected}; the file is "
            "corrupt or not the official checkpoint. Delete it and fetch it again."
        )


def download_official_models(destination: Path, url: str = MODELS_ZIP_URL) -> None:
    """Downloads `models.zip` and extracts every `.pth` in it into `destination`."""
    destination.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=destination) as tmp:
        archive = Path(tmp) / "models.zip"
        with urllib.request.urlopen(url, timeout=60) as response, open(archive, "wb") as out:
            shutil.copyfileobj(response, out)
        extract_models_zip(archive, destination)


def extract_models_zip(archive: Path, destination: Path) -> list[Path]:
    """Extracts the official checkpoints from `models.zip`, md5-checking those with known sums."""
    known = {spec["file"]: spec["md5"] for spec in RAFT_PRESETS.values()}
    written = []
    with zipfile.ZipFile(archive) as z:
        for member in z.namelist():
            name = os.path.basename(member)
            if name not in known:
                continue
            target = destination / name
            with atomic_path(target) as partial:
                with z.open(member) as src, open(partial, "wb") as dst:
                    shutil.copyfileobj(src, dst)
                _check_md5(partial, known[name])
            written.append(target)
    if not written:
        raise ValueError(f"{archive}: holds none of the official RAFT checkpoints {sorted(known)}")
    return written


def resolve_preset(name: str, download: bool = True) -> ResolvedPreset:
    """Finds the weights of preset `name` (or a checkpoint / converted-preset path)."""
    path = Path(os.path.expanduser(name))
    if path.is_dir() and (path / "config.json").is_file():
        return ResolvedPreset(None, path)
    if path.is_file():
        return ResolvedPreset(path, None)
    if name not in RAFT_PRESETS:
        raise ValueError(
            f"Unknown RAFT preset {name!r}: expected one of {sorted(RAFT_PRESETS)}, a .pth "
            "checkpoint path, or a folder written by `python -m flows.convert`."
        )
    spec = RAFT_PRESETS[name]
    for candidate in _candidates(spec["file"]):
        if candidate.is_file():
            _check_md5(candidate, spec["md5"])
            return ResolvedPreset(candidate, None, spec["padding_mode"])
    target = cache_dir() / spec["file"]
    if download:
        try:
            download_official_models(target.parent)
        except OSError as error:
            raise PresetUnavailableError(_offline_message(name, spec["file"], error)) from error
        if target.is_file():
            return ResolvedPreset(target, None, spec["padding_mode"])
    raise PresetUnavailableError(_offline_message(name, spec["file"], None))


def _offline_message(name: str, file_name: str, error: Exception | None) -> str:
    reason = f" (download failed: {error})" if error else ""
    return (
        f"RAFT preset '{name}' needs the official checkpoint '{file_name}', which is not on this "
        f"machine and could not be downloaded from {MODELS_ZIP_URL}{reason}. Place '{file_name}' "
        f"(from the RAFT authors' models.zip) in a folder and set {WEIGHTS_DIR_ENV} to that "
        f"folder, or put it in {cache_dir()}."
    )
