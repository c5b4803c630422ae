"""Optical flow for Keras 3: a RAFT port that loads the official PyTorch checkpoints."""

from flows.pytorch_file import CheckpointError, UnsafeCheckpointError, load_torch_checkpoint
from flows.raft import RAFT, RAFT_PRESETS, PresetUnavailableError
from flows.transforms import jit, value_and_input_gradients
from flows.visualize import flow_to_color

__all__ = [
    "RAFT",
    "RAFT_PRESETS",
    "CheckpointError",
    "PresetUnavailableError",
    "UnsafeCheckpointError",
    "flow_to_color",
    "jit",
    "load_torch_checkpoint",
    "value_and_input_gradients",
]
