"""Optical flow for Keras 3: a RAFT port that loads the official PyTorch checkpoints.

The exports are imported on first use, so that `flows.atomic_files` (shared with the
data pipeline, which needs neither Keras nor TensorFlow) stays light to import.
"""

import importlib

_EXPORTS = {
    "RAFT": "flows.raft",
    "RAFT_PRESETS": "flows.raft",
    "PresetUnavailableError": "flows.raft",
    "CheckpointError": "flows.pytorch_file",
    "UnsafeCheckpointError": "flows.pytorch_file",
    "load_torch_checkpoint": "flows.pytorch_file",
    "flow_to_color": "flows.visualize",
    "jit": "flows.transforms",
    "value_and_input_gradients": "flows.transforms",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    if name in _EXPORTS:
        value = getattr(importlib.import_module(_EXPORTS[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'flows' has no attribute {name!r}")


def __dir__():
    return sorted([*globals(), *__all__])
