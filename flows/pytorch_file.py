"""Reads PyTorch checkpoints into NumPy without PyTorch and without running code from the file.

Supports the zip format (PyTorch >= 1.6: `archive/data.pkl` plus one raw file per storage) and the
legacy format (a sequence of pickles followed by the raw storages). The unpickler accepts only the
records a tensor `state_dict` is made of; any other global (a class or function to call) makes the
read fail with `UnsafeCheckpointError` before anything from the file is executed.
"""

from __future__ import annotations

import collections
import io
import os
import pickle
import struct
import zipfile
from typing import Any

import numpy as np


class CheckpointError(ValueError):
    """A file is not a readable PyTorch checkpoint of the expected kind."""


class UnsafeCheckpointError(CheckpointError):
    """A checkpoint asks to import or call something a plain tensor state_dict never needs."""


_STORAGE_DTYPES = {
    "DoubleStorage": np.float64,
    "FloatStorage": np.float32,
    "HalfStorage": np.float16,
    "BFloat16Storage": "bfloat16",
    "LongStorage": np.int64,
    "IntStorage": np.int32,
    "ShortStorage": np.int16,
    "CharStorage": np.int8,
    "ByteStorage": np.uint8,
    "BoolStorage": np.bool_,
}


class _StorageType:
    def __init__(self, name: str):
        self.name = name
        dtype = _STORAGE_DTYPES[name]
        if dtype == "bfloat16":
            import ml_dtypes  # shipped with both JAX and TensorFlow

            dtype = ml_dtypes.bfloat16
        self.dtype = np.dtype(dtype)


class _Storage:
    """A storage record; its bytes are attached after unpickling (legacy) or on demand (zip)."""

    def __init__(self, storage_type: _StorageType, key: str, numel: int):
        self.dtype = storage_type.dtype
        self.key = key
        self.numel = numel
        self.array: np.ndarray | None = None


class _TensorRef:
    def __init__(self, storage: _Storage, offset: int, size: tuple, stride: tuple):
        self.storage, self.offset, self.size, self.stride = (
            storage,
            offset,
            tuple(size),
            tuple(stride),
        )

    def to_numpy(self) -> np.ndarray:
        data = self.storage.array
        if data is None:
            raise CheckpointError(f"storage {self.storage.key} has no data")
        itemsize = data.dtype.itemsize
        needed = self.offset + (
            1 + sum((n - 1) * s for n, s in zip(self.size, self.stride)) if all(self.size) else 0
        )
        if needed > data.size:
            raise CheckpointError(
                f"a tensor of shape {self.size} needs {needed} values, storage has {data.size}"
            )
        view = np.lib.stride_tricks.as_strided(
            data[self.offset :],
            shape=self.size,
            strides=tuple(s * itemsize for s in self.stride),
            writeable=False,
        )
        return np.array(view)


def _rebuild_tensor(storage, storage_offset, size, stride, *unused):
    return _TensorRef(storage, storage_offset, size, stride)


def _rebuild_parameter(data, requires_grad=None, backward_hooks=None, *unused):
    return data


_ALLOWED_GLOBALS = {
    ("collections", "OrderedDict"): collections.OrderedDict,
    ("torch._utils", "_rebuild_tensor"): _rebuild_tensor,
    ("torch._utils", "_rebuild_tensor_v2"): _rebuild_tensor,
    ("torch._utils", "_rebuild_parameter"): _rebuild_parameter,
    ("torch.nn.parameter", "_rebuild_parameter"): _rebuild_parameter,
}


class _RestrictedUnpickler(pickle.Unpickler):
    def __init__(self, file, path: str, storages: dict[str, _Storage]):
        super().__init__(file)
        self._path = path
        self._storages = storages

    def find_class(self, module, name):
        if (module, name) in _ALLOWED_GLOBALS:
            return _ALLOWED_GLOBALS[(module, name)]
        if module == "torch" and name in _STORAGE_DTYPES:
            return _StorageType(name)
        raise UnsafeCheckpointError(
            f"{self._path}: refuses to load '{module}.{name}', which a plain tensor state_dict "
            "never contains; the file may run code when loaded. Re-save it with "
            "`torch.save(model.state_dict(), path)` from a trusted source."
        )

    def persistent_load(self, saved_id):
        if not isinstance(saved_id, tuple) or not saved_id or saved_id[0] != "storage":
            raise UnsafeCheckpointError(f"{self._path}: unexpected persistent record {saved_id!r}")
        storage_type, key, _location, numel = saved_id[1:5]
        if not isinstance(storage_type, _StorageType):
            raise UnsafeCheckpointError(f"{self._path}: unexpected storage type {storage_type!r}")
        key = str(key)
        if key not in self._storages:
            self._storages[key] = _Storage(storage_type, key, int(numel))
        return self._storages[key]


def _convert(obj: Any) -> Any:
    if isinstance(obj, _TensorRef):
        return obj.to_numpy()
    if isinstance(obj, dict):
        return collections.OrderedDict((k, _convert(v)) for k, v in obj.items())
    if isinstance(obj, (list, tuple)):
        return type(obj)(_convert(v) for v in obj)
    return obj


def _read_zip(path: str) -> Any:
    with zipfile.ZipFile(path) as archive:
        names = archive.namelist()
        pickles = [n for n in names if n.endswith("/data.pkl") or n == "data.pkl"]
        if not pickles:
            raise CheckpointError(f"{path}: zip archive without data.pkl; not a PyTorch checkpoint")
        root = pickles[0][: -len("data.pkl")]
        storages: dict[str, _Storage] = {}
        with archive.open(pickles[0]) as f:
            obj = _RestrictedUnpickler(io.BytesIO(f.read()), path, storages).load()
        for key, storage in storages.items():
            member = f"{root}data/{key}"
            if member not in names:
                raise CheckpointError(f"{path}: storage {member} is missing (truncated file?)")
            raw = archive.read(member)
            expected = storage.numel * storage.dtype.itemsize
            if len(raw) < expected:
                raise CheckpointError(
                    f"{path}: storage {member} holds {len(raw)} bytes, needs {expected}"
                )
            storage.array = np.frombuffer(raw[:expected], dtype=storage.dtype)
    return obj


_LEGACY_MAGIC = 0x1950A86A20F9469CFC6C


def _read_legacy(path: str) -> Any:
    with open(path, "rb") as f:
        data = f.read()
    stream = io.BytesIO(data)
    header = _RestrictedUnpickler(stream, path, {})
    if header.load() != _LEGACY_MAGIC:
        raise CheckpointError(f"{path}: not a PyTorch checkpoint (wrong magic number)")
    _protocol_version = _RestrictedUnpickler(stream, path, {}).load()
    _system_info = _RestrictedUnpickler(stream, path, {}).load()
    storages: dict[str, _Storage] = {}
    obj = _RestrictedUnpickler(stream, path, storages).load()
    storage_keys = _RestrictedUnpickler(stream, path, {}).load()
    for key in storage_keys:
        storage = storages.get(str(key))
        if storage is None:
            raise CheckpointError(f"{path}: storage {key} is listed but never used")
        (numel,) = struct.unpack("<q", stream.read(8) or b"\0" * 8)
        nbytes = numel * storage.dtype.itemsize
        raw = stream.read(nbytes)
        if len(raw) != nbytes:
            raise CheckpointError(
                f"{path}: the file ends inside storage {key} ({len(raw)}/{nbytes} bytes): truncated"
            )
        storage.array = np.frombuffer(raw, dtype=storage.dtype)
    return obj


def load_torch_checkpoint(path: str | os.PathLike) -> dict[str, np.ndarray]:
    """Reads a PyTorch checkpoint into a dict of NumPy arrays, in the file's key order.

    A checkpoint that wraps its weights (`{"state_dict": ...}` or `{"model": ...}`) is unwrapped.
    Raises `FileNotFoundError` for a missing path, `UnsafeCheckpointError` for a file that would
    execute code, and `CheckpointError` for anything else that is not a readable tensor dict.
    """
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"checkpoint not found: {path}")
    try:
        if zipfile.is_zipfile(path):
            obj = _read_zip(path)
        else:
            obj = _read_legacy(path)
    except (CheckpointError, FileNotFoundError):
        raise
    except (
        pickle.UnpicklingError,
        EOFError,
        zipfile.BadZipFile,
        struct.error,
        ValueError,
        KeyError,
        IndexError,
        TypeError,
        AttributeError,
    ) as error:
        raise CheckpointError(
            f"{path}: cannot read it as a PyTorch checkpoint ({type(error).__name__}: {error}); "
            "the file may be truncated or of another format"
        ) from error
    for wrapper in ("state_dict", "model"):
        if isinstance(obj, dict) and wrapper in obj and isinstance(obj[wrapper], dict):
            obj = obj[wrapper]
    if not isinstance(obj, dict):
        raise CheckpointError(f"{path}: holds a {type(obj).__name__}, not a state_dict")
    state = _convert(obj)
    arrays = {k: v for k, v in state.items() if isinstance(v, np.ndarray)}
    if not arrays:
        raise CheckpointError(f"{path}: holds no tensors")
    return arrays
