"""Writes PyTorch checkpoint files without PyTorch, so that tests can make official-format weights.

A PyTorch checkpoint is a protocol-2 pickle in which every tensor is the reduce call
`torch._utils._rebuild_tensor_v2(storage, offset, size, stride, requires_grad, hooks)` and every
storage is a persistent id `("storage", torch.<Type>Storage, key, "cpu", numel)`; the storages'
bytes live outside the pickle. The zip format (PyTorch >= 1.6) stores the pickle as
`<root>/data.pkl` and storage `key` as `<root>/data/<key>`; the legacy format appends to the
pickled object the sorted storage keys and then, per storage, its element count and bytes.

This writes exactly those records with the pure-Python pickler: references to `torch` names are
emitted as GLOBAL opcodes, so nothing here imports torch.
"""

from __future__ import annotations

import collections
import io
import os
import pickle
import struct
import zipfile
from typing import Any, ClassVar

import numpy as np

_STORAGE_TYPES = {
    np.dtype(np.float32): "FloatStorage",
    np.dtype(np.float64): "DoubleStorage",
    np.dtype(np.float16): "HalfStorage",
    np.dtype(np.int64): "LongStorage",
    np.dtype(np.int32): "IntStorage",
    np.dtype(np.int16): "ShortStorage",
    np.dtype(np.int8): "CharStorage",
    np.dtype(np.uint8): "ByteStorage",
    np.dtype(np.bool_): "BoolStorage",
}
_LEGACY_MAGIC = 0x1950A86A20F9469CFC6C
_LEGACY_PROTOCOL_VERSION = 1001


class _Global:
    """A module attribute that exists only in the reader's world (e.g. `torch.FloatStorage`)."""

    def __init__(self, module: str, name: str):
        self.module, self.name = module, name

    def __call__(self, *args):  # pickle's save_reduce requires a callable
        raise TypeError(f"{self.module}.{self.name} is a pickle reference, not callable here")


class _Storage:
    def __init__(self, key: str, array: np.ndarray):
        self.key = key
        self.array = np.ascontiguousarray(array).reshape(-1)
        self.type_name = _STORAGE_TYPES[self.array.dtype]


class _Tensor:
    def __init__(self, storage: _Storage, shape: tuple[int, ...]):
        self.storage = storage
        self.shape = shape
        stride, step = [], 1
        for size in reversed(shape):
            stride.append(step)
            step *= max(size, 1)
        self.stride = tuple(reversed(stride))

    def __reduce_ex__(self, protocol):
        rebuild = _Global("torch._utils", "_rebuild_tensor_v2")
        return (
            rebuild,
            (self.storage, 0, self.shape, self.stride, False, collections.OrderedDict()),
        )


class _TorchPickler(pickle._Pickler):  # the pure-Python pickler lets us add a dispatch entry
    dispatch: ClassVar[dict] = dict(pickle._Pickler.dispatch)

    def __init__(self, file, legacy: bool):
        super().__init__(file, protocol=2)
        self.legacy = legacy

    def _save_global_reference(self, obj: _Global) -> None:
        self.write(pickle.GLOBAL + f"{obj.module}\n{obj.name}\n".encode("ascii"))
        self.memoize(obj)

    dispatch[_Global] = _save_global_reference

    def persistent_id(self, obj):
        if not isinstance(obj, _Storage):
            return None
        record = ("storage", _Global("torch", obj.type_name), obj.key, "cpu", obj.array.size)
        # The legacy format adds view metadata (None for a whole storage).
        return (*record, None) if self.legacy else record


def _wrap_tensors(obj: Any, storages: list[_Storage]) -> Any:
    if isinstance(obj, np.ndarray):
        storage = _Storage(str(len(storages)), obj)
        storages.append(storage)
        return _Tensor(storage, tuple(int(n) for n in obj.shape))
    if isinstance(obj, dict):
        wrapped = collections.OrderedDict()
        for key, value in obj.items():
            wrapped[key] = _wrap_tensors(value, storages)
        return wrapped if isinstance(obj, collections.OrderedDict) else dict(wrapped)
    if isinstance(obj, (list, tuple)):
        return type(obj)(_wrap_tensors(v, storages) for v in obj)
    return obj


def _little_endian_bytes(array: np.ndarray) -> bytes:
    return array.astype(array.dtype.newbyteorder("<")).tobytes()


def _pickle(obj: Any, legacy: bool) -> bytes:
    buffer = io.BytesIO()
    _TorchPickler(buffer, legacy=legacy).dump(obj)
    return buffer.getvalue()


def write_torch_zip(path: str | os.PathLike, obj: Any, root: str = "archive") -> None:
    """Writes `obj` (dicts/lists of NumPy arrays and plain values) as `torch.save` does."""
    storages: list[_Storage] = []
    data = _pickle(_wrap_tensors(obj, storages), legacy=False)
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_STORED) as archive:
        archive.writestr(f"{root}/data.pkl", data)
        archive.writestr(f"{root}/byteorder", "little")
        for storage in storages:
            archive.writestr(f"{root}/data/{storage.key}", _little_endian_bytes(storage.array))
        archive.writestr(f"{root}/version", "3\n")


def write_torch_legacy(path: str | os.PathLike, obj: Any) -> None:
    """Writes `obj` in the pre-1.6 `torch.save` format (`_use_new_zipfile_serialization=False`)."""
    storages: list[_Storage] = []
    body = _pickle(_wrap_tensors(obj, storages), legacy=True)
    sys_info = {
        "protocol_version": _LEGACY_PROTOCOL_VERSION,
        "little_endian": True,
        "type_sizes": {"short": 2, "int": 4, "long": 4},
    }
    with open(path, "wb") as f:
        for header in (_LEGACY_MAGIC, _LEGACY_PROTOCOL_VERSION, sys_info):
            f.write(pickle.dumps(header, protocol=2))
        f.write(body)
        f.write(pickle.dumps(sorted(s.key for s in storages), protocol=2))
        for storage in sorted(storages, key=lambda s: s.key):
            f.write(struct.pack("<q", storage.array.size))
            f.write(_little_endian_bytes(storage.array))
