"""Finding the videos of a dataset on disk, with labels where the layout has them."""

from __future__ import annotations

import logging
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from avlae_keras.data.decode import is_image_file, is_video_file, natural_sort_key

logger = logging.getLogger("avlae_keras.data")

NO_LABEL = -1

WEIZMANN_ACTIONS = (
    "bend",
    "jack",
    "jump",
    "pjump",
    "run",
    "side",
    "skip",
    "walk",
    "wave1",
    "wave2",
)
# Folder names of the MoCoGAN strip copy of Weizmann, as far as they are known.
WEIZMANN_STRIP_ACTIONS = {
    0: "one_hand_wave",
    1: "two_hand_wave",
    3: "jumping_jack",
    4: "bend",
}
WEIZMANN_STRIP_CLIPS_PER_PERSON = 8
UVA_NEMO_CLASSES = ("deliberate", "spontaneous")

_UVA_NEMO_NAME = re.compile(r"^(\d+)_(deliberate|spontaneous)_smile_(\d+)$", re.IGNORECASE)
_UCF_NAME = re.compile(r"^v_(.+)_g(\d+)_c(\d+)$")

LAYOUTS = ("folder", "frames", "strips", "uva_nemo", "weizmann", "weizmann_strips", "ucf101")


@dataclass(frozen=True)
class VideoRecord:
    """One video of a dataset: where it is, its label (NO_LABEL if none) and metadata."""

    path: str
    key: str
    label: int = NO_LABEL
    meta: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class VideoIndex:
    """The videos of a dataset, in a stable order."""

    root: str
    layout: str
    records: tuple[VideoRecord, ...]
    class_names: tuple[str, ...] | None = None
    frame_width: int | None = None  # strip frame width; None means square frames

    def __len__(self) -> int:
        return len(self.records)


def _require_dir(path: str | os.PathLike, layout: str) -> Path:
    root = Path(os.path.abspath(Path(path).expanduser()))
    if not root.exists():
        raise FileNotFoundError(
            f"dataset path {root} does not exist; pass the folder of the {layout!r} dataset"
        )
    if not root.is_dir():
        raise NotADirectoryError(f"dataset path {root} is not a folder; pass the dataset's folder")
    return root


def _walk_files(root: Path) -> list[Path]:
    found = []
    for folder, dirs, files in os.walk(root, followlinks=True):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        found.extend(Path(folder) / f for f in files if not f.startswith("."))
    return sorted(found, key=lambda p: natural_sort_key(str(p.relative_to(root))))


def _key(path: Path, root: Path) -> str:
    return path.relative_to(root).as_posix()


def _empty_error(root: Path, what: str) -> ValueError:
    return ValueError(f"no {what} found under {root}; check the path and the dataset layout")


def _finish(
    root: Path,
    layout: str,
    records: list[VideoRecord],
    what: str,
    class_names=None,
    frame_width=None,
) -> VideoIndex:
    if not records:
        raise _empty_error(root, what)
    return VideoIndex(
        root=str(root),
        layout=layout,
        records=tuple(records),
        class_names=None if class_names is None else tuple(class_names),
        frame_width=frame_width,
    )


def index_folder(path: str | os.PathLike) -> VideoIndex:
    """All video files under `path`, recursively, without labels."""
    root = _require_dir(path, "folder")
    records = [VideoRecord(str(p), _key(p, root)) for p in _walk_files(root) if is_video_file(p)]
    return _finish(root, "folder", records, "video files")


def index_frame_folders(path: str | os.PathLike) -> VideoIndex:
    """Every folder under `path` (itself included) that directly holds image frames."""
    root = _require_dir(path, "frames")
    folders = sorted({p.parent for p in _walk_files(root) if is_image_file(p)})
    folders.sort(key=lambda p: natural_sort_key(p.relative_to(root).as_posix()))
    records = [VideoRecord(str(f), _key(f, root) or ".") for f in folders]
    return _finish(root, "frames", records, "folders of image frames")


def index_strips(path: str | os.PathLike, frame_width: int | None = None) -> VideoIndex:
    """Every image under `path` is one video: frames of equal width side by side."""
    root = _require_dir(path, "strips")
    records = [VideoRecord(str(p), _key(p, root)) for p in _walk_files(root) if is_image_file(p)]
    return _finish(root, "strips", records, "strip images", frame_width=frame_width)


def index_uva_nemo(path: str | os.PathLike) -> VideoIndex:
    """UvA-NEMO smiles: `NNN_{deliberate,spontaneous}_smile_K.mp4`, labelled by smile kind."""
    root = _require_dir(path, "uva_nemo")
    records = []
    for p in _walk_files(root):
        if p.suffix.lower() != ".mp4":
            continue
        match = _UVA_NEMO_NAME.match(p.stem)
        if match:
            kind = match.group(2).lower()
            meta = {"subject": int(match.group(1)), "smile": kind, "take": int(match.group(3))}
            records.append(VideoRecord(str(p), _key(p, root), UVA_NEMO_CLASSES.index(kind), meta))
        else:
            records.append(VideoRecord(str(p), _key(p, root)))
    return _finish(root, "uva_nemo", records, "UvA-NEMO .mp4 files", UVA_NEMO_CLASSES)


def parse_weizmann_name(stem: str) -> tuple[str, str] | None:
    """`denis_jack` -> ("denis", "jack"); `lena_run2` -> ("lena", "run"); else None."""
    person, sep, action = stem.partition("_")
    if not sep or not person:
        return None
    action = action.lower()
    if action in WEIZMANN_ACTIONS:
        return person.lower(), action
    # Repeated takes (lena_run1, lena_walk2) carry a digit that is not part of the action;
    # wave1/wave2 are two different actions and were matched above.
    stripped = action.rstrip("0123456789")
    if stripped in WEIZMANN_ACTIONS:
        return person.lower(), stripped
    return None


def index_weizmann(path: str | os.PathLike) -> VideoIndex:
    """Weizmann actions as the original `person_action.avi` files (any folder depth)."""
    root = _require_dir(path, "weizmann")
    records = []
    for p in _walk_files(root):
        if p.suffix.lower() != ".avi":
            continue
        parsed = parse_weizmann_name(p.stem)
        if parsed is None:
            logger.warning("ignoring %s: not a Weizmann person_action.avi name", p)
            continue
        person, action = parsed
        meta = {"person": person, "action": action}
        label = WEIZMANN_ACTIONS.index(action)
        records.append(VideoRecord(str(p), _key(p, root), label, meta))
    return _finish(root, "weizmann", records, "Weizmann person_action.avi files", WEIZMANN_ACTIONS)


def index_weizmann_strips(path: str | os.PathLike, frame_width: int | None = None) -> VideoIndex:
    """The MoCoGAN strip copy of Weizmann: `<action id>/<N>.jpg`, person = N // 8."""
    root = _require_dir(path, "weizmann_strips")
    folders = sorted(
        (d for d in root.iterdir() if d.is_dir() and d.name.isdigit()), key=lambda d: int(d.name)
    )
    class_names = [WEIZMANN_STRIP_ACTIONS.get(int(d.name), f"action_{d.name}") for d in folders]
    records = []
    for label, folder in enumerate(folders):
        for p in sorted(folder.iterdir(), key=lambda p: natural_sort_key(p.name)):
            if not (p.is_file() and is_image_file(p)):
                continue
            meta = {"action": class_names[label], "action_id": int(folder.name)}
            if p.stem.isdigit():
                meta["person"] = int(p.stem) // WEIZMANN_STRIP_CLIPS_PER_PERSON
            records.append(VideoRecord(str(p), _key(p, root), label, meta))
    return _finish(
        root,
        "weizmann_strips",
        records,
        "strip images in numbered action folders",
        class_names,
        frame_width,
    )


def _read_lines(path: Path) -> list[str]:
    return [line.strip() for line in path.read_text().splitlines() if line.strip()]


def index_ucf101(
    path: str | os.PathLike,
    split_dir: str | os.PathLike | None = None,
    split: int = 1,
    subset: str = "train",
) -> VideoIndex:
    """UCF-101: one folder per class of `v_<Class>_gNN_cMM.avi`.

    With `split_dir` (the folder holding `classInd.txt`, `trainlist0N.txt` and
    `testlist0N.txt`), only the videos of official split `split` and `subset`
    ("train" or "test") are listed and labels follow `classInd.txt`; without it, every
    video is listed and labels follow the sorted class folder names.
    """
    root = _require_dir(path, "ucf101")
    class_dirs = sorted(d for d in root.iterdir() if d.is_dir() and not d.name.startswith("."))
    if split_dir is None:
        class_names = [d.name for d in class_dirs]
        records = []
        for label, folder in enumerate(class_dirs):
            for p in _walk_files(folder):
                if is_video_file(p):
                    records.append(_ucf_record(p, root, label, folder.name))
        return _finish(root, "ucf101", records, "UCF-101 videos in class folders", class_names)

    split_root = Path(split_dir).expanduser()
    if subset not in ("train", "test"):
        raise ValueError(f"subset must be 'train' or 'test', got {subset!r}")
    list_file = split_root / f"{subset}list{split:02d}.txt"
    class_file = split_root / "classInd.txt"
    for required in (list_file, class_file):
        if not required.is_file():
            raise FileNotFoundError(
                f"UCF-101 split file {required} does not exist; pass split_dir as the "
                "ucfTrainTestlist folder holding classInd.txt and the train/test lists"
            )
    class_names = []
    for line in _read_lines(class_file):
        number, name = line.split(maxsplit=1)
        if int(number) != len(class_names) + 1:
            raise ValueError(f"{class_file}: class numbers must run 1, 2, ...; got {line!r}")
        class_names.append(name)
    label_of = {name.lower(): i for i, name in enumerate(class_names)}

    # Class folders and split entries disagree in capitalisation in the official release
    # (HandstandPushups vs HandStandPushups), so match paths case-insensitively.
    on_disk = {
        _key(p, root).lower(): p for p in _walk_files(root) if is_video_file(p) and p.parent != root
    }
    records, missing = [], []
    for line in _read_lines(list_file):
        entry = line.split()[0]
        video = on_disk.get(entry.lower())
        if video is None:
            missing.append(entry)
            continue
        class_name = entry.split("/")[0]
        if class_name.lower() not in label_of:
            raise ValueError(f"{list_file}: class {class_name!r} is not in {class_file}")
        records.append(_ucf_record(video, root, label_of[class_name.lower()], class_name))
    if missing:
        logger.warning(
            "%d videos listed in %s are not under %s (first: %s)",
            len(missing),
            list_file,
            root,
            missing[0],
        )
    return _finish(root, "ucf101", records, f"videos of {list_file.name}", class_names)


def _ucf_record(path: Path, root: Path, label: int, class_name: str) -> VideoRecord:
    meta: dict[str, Any] = {"class": class_name}
    match = _UCF_NAME.match(path.stem)
    if match:
        meta["group"] = int(match.group(2))
        meta["clip"] = int(match.group(3))
    return VideoRecord(str(path), _key(path, root), label, meta)


def index_videos(layout: str, path: str | os.PathLike, **options: Any) -> VideoIndex:
    """Lists a dataset's videos. `layout` is one of `LAYOUTS`; options go to its indexer.

    - "folder": video files, recursively, unlabelled.
    - "frames": folders of image frames, recursively, unlabelled.
    - "strips": strip images, recursively, unlabelled (`frame_width`).
    - "uva_nemo": UvA-NEMO .mp4 files, labelled deliberate/spontaneous.
    - "weizmann": original `person_action.avi` files, labelled by action.
    - "weizmann_strips": the MoCoGAN strip copy, labelled by action folder.
    - "ucf101": class folders, optionally an official split (`split_dir`, `split`, `subset`).
    """
    indexers = {
        "folder": index_folder,
        "frames": index_frame_folders,
        "strips": index_strips,
        "uva_nemo": index_uva_nemo,
        "weizmann": index_weizmann,
        "weizmann_strips": index_weizmann_strips,
        "ucf101": index_ucf101,
    }
    if layout not in indexers:
        raise ValueError(f"unknown dataset layout {layout!r}; choose one of {', '.join(LAYOUTS)}")
    return indexers[layout](path, **options)
