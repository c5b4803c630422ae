from flows.raft.raft import RAFT, RAFT_VARIANTS, load_converted_preset
from flows.raft.raft_presets import RAFT_PRESETS, PresetUnavailableError

__all__ = [
    "RAFT",
    "RAFT_PRESETS",
    "RAFT_VARIANTS",
    "PresetUnavailableError",
    "load_converted_preset",
]
