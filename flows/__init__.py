"""Optical flow for Keras 3: a RAFT port that loads the official PyTorch checkpoints."""

from flows.raft import RAFT, RAFT_PRESETS, PresetUnavailableError
from flows.torch_checkpoint import CheckpointError, UnsafeCheckpointError, load_torch_checkpoint
from flows.visualize import flow_to_color

__all__ = [
    "RAFT",
    "RAFT_PRESETS",
    "CheckpointError",
    "PresetUnavailableError",
    "UnsafeCheckpointError",
    "flow_to_color",
    "load_torch_checkpoint",
]
