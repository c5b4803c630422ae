"""Optical flow for Keras 3: a RAFT port that loads the official PyTorch checkpoints.

The exports are imported on first use, so that `flows.atomic_files` (shared with the
data pipeline, which needs neither Keras nor TensorFlow) stays light to import.
"""

from flows.lazy_exports import lazy_exports

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


__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
