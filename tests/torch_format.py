"""Writes NumPy tensors as a PyTorch zip-format checkpoint, without PyTorch (test helper)."""

from __future__ import annotations

import io
import pickle
import zipfile

import numpy as np

_STORAGE_NAMES = {
    np.dtype(np.float32): "FloatStorage",
    np.dtype(np.float64): "DoubleStorage",
    np.dtype(np.float16): "HalfStorage",
    np.dtype(np.int64): "LongStorage",
    np.dtype(np.int32): "IntStorage",
    np.dtype(np.uint8): "ByteStorage",
}


def _global_opcode(module: str, name: str) -> bytes:
    return pickle.GLOBAL + f"{module}\n{name}\n".encode()


def _dump(state: dict[str, np.ndarray]) -> bytes:
    """Hand-assembles the pickle: an OrderedDict of _rebuild_tensor_v2(...) calls."""
    out = io.BytesIO()
    out.write(pickle.PROTO + bytes([2]))
    out.write(_global_opcode("collections", "OrderedDict"))
    out.write(pickle.EMPTY_TUPLE + pickle.REDUCE)
    for key, array in state.items():
        array = np.ascontiguousarray(array)
        _write_string(out, key)
        out.write(_global_opcode("torch._utils", "_rebuild_tensor_v2"))
        out.write(pickle.MARK)
        # persistent id tuple: ('storage', torch.XStorage, key, 'cpu', numel)
        out.write(pickle.MARK)
        _write_string(out, "storage")
        out.write(_global_opcode("torch", _STORAGE_NAMES[array.dtype]))
        _write_string(out, key)
        _write_string(out, "cpu")
        _write_int(out, array.size)
        out.write(pickle.TUPLE + pickle.BINPERSID)
        _write_int(out, 0)
        _write_tuple(out, array.shape)
        _write_tuple(out, tuple(s // array.itemsize for s in array.strides))
        out.write(pickle.NEWFALSE)
        out.write(_global_opcode("collections", "OrderedDict") + pickle.EMPTY_TUPLE + pickle.REDUCE)
        out.write(pickle.TUPLE + pickle.REDUCE)
        out.write(pickle.SETITEM)
    out.write(pickle.STOP)
    return out.getvalue()


def _write_string(out, text: str) -> None:
    data = text.encode()
    out.write(pickle.BINUNICODE + len(data).to_bytes(4, "little") + data)


def _write_int(out, value: int) -> None:
    out.write(pickle.BININT + int(value).to_bytes(4, "little", signed=True))


def _write_tuple(out, values) -> None:
    out.write(pickle.MARK)
    for value in values:
        _write_int(out, value)
    out.write(pickle.TUPLE)


def save_zip_checkpoint(state: dict[str, np.ndarray], path) -> None:
    """Writes `state` the way `torch.save(state_dict, path)` does (zip format, keys as given)."""
    with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED) as archive:
        archive.writestr("archive/data.pkl", _dump(state))
        for key, array in state.items():
            archive.writestr(f"archive/data/{key}", np.ascontiguousarray(array).tobytes())
        archive.writestr("archive/version", "3\n")
