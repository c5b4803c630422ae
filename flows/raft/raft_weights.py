"""Maps official PyTorch RAFT `state_dict`s onto `flows.RAFT` weights."""

from __future__ import annotations

import os

import keras
import numpy as np

from flows.pytorch_file import CheckpointError, load_torch_checkpoint

# Keys whose tensors are another key's tensor: the reference registers the shortcut BatchNorm
# both as `normN` and as `downsample.1`.
_IGNORED_SUFFIXES = (".num_batches_tracked",)


def read_raft_state_dict(path: str | os.PathLike) -> dict[str, np.ndarray]:
    """Reads a RAFT checkpoint and drops the `module.` prefix that DataParallel adds."""
    state = load_torch_checkpoint(path)
    return {k.removeprefix("module."): v for k, v in state.items()}


def detect_variant(
    state_dict: dict[str, np.ndarray], path: str | os.PathLike = "<state_dict>"
) -> str:
    """'large' or 'small' from the keys; a state_dict of another model raises CheckpointError."""
    stem = state_dict.get("fnet.conv1.weight")
    if stem is None or "update_block.flow_head.conv2.weight" not in state_dict:
        sample = ", ".join(list(state_dict)[:4])
        raise CheckpointError(
            f"{os.fspath(path)}: not a RAFT checkpoint (no 'fnet.conv1.weight' or "
            f"'update_block.flow_head.conv2.weight'; its first keys are: {sample})"
        )
    if "update_block.mask.0.weight" in state_dict and stem.shape[0] == 64:
        return "large"
    if "update_block.gru.convz.weight" in state_dict and stem.shape[0] == 32:
        return "small"
    raise CheckpointError(
        f"{os.fspath(path)}: a RAFT-like checkpoint of neither published variant "
        f"(stem width {stem.shape[0]})"
    )


def _torch_modules(model):
    return (
        model.feature_encoder.torch_modules("fnet")
        + model.context_encoder.torch_modules("cnet")
        + model.update_block.torch_modules("update_block")
    )


def _layer_arrays(prefix: str, layer, state_dict) -> list[np.ndarray]:
    def take(name):
        key = f"{prefix}.{name}"
        if key not in state_dict:
            raise KeyError(key)
        return state_dict[key]

    if isinstance(layer, keras.layers.BatchNormalization):
        return [take("weight"), take("bias"), take("running_mean"), take("running_var")]
    kernel = np.transpose(take("weight"), (2, 3, 1, 0))  # OIHW -> HWIO
    return [kernel, take("bias")]


def load_state_dict_into(model, state_dict: dict[str, np.ndarray], path="<state_dict>") -> None:
    """Assigns every tensor of an official RAFT state_dict to `model`, checking names and shapes.

    Raises CheckpointError naming the file when the checkpoint is for the other variant, misses
    a tensor, has a tensor of the wrong shape, or holds tensors the model has no place for.
    """
    path = os.fspath(path)
    variant = detect_variant(state_dict, path)
    if variant != model.variant:
        raise CheckpointError(
            f"{path}: holds RAFT variant '{variant}' but the model is '{model.variant}'; use "
            f"RAFT.from_checkpoint(path), which picks the variant, or RAFT(variant='{variant}')."
        )
    used = set()
    assignments = []
    for prefix, layer in _torch_modules(model):
        if layer is None or not layer.weights:
            continue
        try:
            arrays = _layer_arrays(prefix, layer, state_dict)
        except KeyError as missing:
            raise CheckpointError(f"{path}: tensor {missing} is missing") from None
        for variable, array in zip(layer.weights, arrays):
            if tuple(variable.shape) != array.shape:
                raise CheckpointError(
                    f"{path}: tensor under '{prefix}' has shape {array.shape}, the model expects "
                    f"{tuple(variable.shape)}"
                )
        assignments.append((layer, arrays))
        used.update(k for k in state_dict if k.startswith(prefix + "."))
    aliases = _aliased_keys(state_dict, used)
    unexpected = [
        k
        for k in state_dict
        if k not in used and k not in aliases and not k.endswith(_IGNORED_SUFFIXES)
    ]
    if unexpected:
        raise CheckpointError(f"{path}: tensors the RAFT model has no place for: {unexpected[:6]}")
    for layer, arrays in assignments:
        layer.set_weights([a.astype(np.float32) for a in arrays])


def _aliased_keys(state_dict, used) -> set[str]:
    """`...normN.*` keys that duplicate a used `...downsample.1.*` tensor of the same block."""
    aliases = set()
    for key in state_dict:
        if key in used or ".norm" not in key:
            continue
        block, _, rest = key.rpartition(".norm")
        _, _, field = rest.partition(".")
        twin = f"{block}.downsample.1.{field}"
        if twin in used and np.array_equal(state_dict[twin], state_dict[key]):
            aliases.add(key)
    return aliases


def state_dict_parameter_count(state_dict: dict[str, np.ndarray]) -> int:
    """Parameters as PyTorch counts them: no running statistics, aliased tensors once."""
    counted = [
        k
        for k in state_dict
        if not k.endswith((".running_mean", ".running_var", ".num_batches_tracked"))
    ]
    aliases = _aliased_keys(state_dict, set(counted) - {k for k in counted if ".norm" in k})
    return int(sum(state_dict[k].size for k in counted if k not in aliases))
