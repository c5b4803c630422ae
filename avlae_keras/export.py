"""Exports a trained AVLAE as a TensorFlow SavedModel for serving (TensorFlow Serving, or
`tf.saved_model.load` in a process that has neither Keras nor this project): `run(ExportConfig)`
from a work directory's checkpoint (`avlae-export`), `export_saved_model` from a model in memory.

Endpoints (each also a SavedModel signature of the same name; the batch size is dynamic):

- `generate(z_a, z_m)`: latents (B, latent_dim) float32 -> `videos` (B, T, H, W, 3) uint8 and
  `videos_float` (B, T, H, W, 3) float32 in [-1, 1]. Also `serving_default`.
- `sample(batch_size, seed)`: int32 and int64 scalars -> the same outputs as `generate` for the
  latents `sample_latents(batch_size, seed, latent_dim)` (drawn inside the SavedModel with
  `tf.random.stateless_normal`, Philox).
- `encode(videos)`: (B, T, H, W, 3) float32 in [-1, 1] -> `w_a`, `w_m` (B, latent_dim) float32
  (EA on the middle frame, EM with its RAFT).
- `reconstruct(videos)`: the same input -> the outputs of `generate` for G(EA(x_t), EM(x)).

`encode` and `reconstruct` exist only when the model has a motion encoder. The endpoints are
written from backend-neutral `keras.ops` code; `avlae_keras.backend` says how the backend turns
them into TensorFlow graphs (directly on TensorFlow, through jax2tf on JAX).
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import keras
from keras import ops

from avlae_keras.config import ExportConfig
from avlae_keras.errors import ExportError
from flows.atomic_files import atomic_path

SERVING_DEFAULT = "generate"
ENDPOINTS = ("generate", "sample", "encode", "reconstruct")
METADATA_FILE = "avlae_export.json"
TENSORFLOW_MISSING = (
    'exporting a SavedModel needs TensorFlow: pip install "avlae-keras[tensorflow]" '
    '(or pip install "tensorflow>=2.21,<2.22" beside JAX)'
)


def _tensorflow():
    try:
        import tensorflow as tf
    except ImportError as error:
        raise ExportError(TENSORFLOW_MISSING) from error
    return tf


def videos_to_uint8(videos):
    """[-1, 1] floats -> uint8 pixels: round((x + 1) * 127.5), clipped to [0, 255], half to even.

    The one definition of the exported uint8 videos, in `keras.ops` (it runs inside the
    SavedModel and on in-memory outputs alike); `visualization.to_uint8` is its NumPy twin.
    """
    pixels = ops.round((ops.cast(videos, "float32") + 1.0) * 127.5)
    return ops.cast(ops.clip(pixels, 0.0, 255.0), "uint8")


def _video_outputs(videos) -> dict:
    videos = ops.cast(videos, "float32")
    return {"videos": videos_to_uint8(videos), "videos_float": videos}


def _draw_latents(tf, batch_size, seed, latent_dim: int):
    shape = tf.stack([tf.cast(batch_size, tf.int32), latent_dim])
    seed = tf.cast(seed, tf.int64)
    draws = [
        tf.random.stateless_normal(
            shape, tf.stack([seed, tf.constant(stream, tf.int64)]), alg="philox"
        )
        for stream in (0, 1)
    ]
    return draws[0], draws[1]


def sample_latents(batch_size: int, seed: int, latent_dim: int):
    """The (z_a, z_m) that the `sample` endpoint draws for `(batch_size, seed)`, as NumPy
    arrays (batch_size, latent_dim) float32: `tf.random.stateless_normal` with the Philox
    algorithm, seed [seed, 0] for z_a and [seed, 1] for z_m. Needs TensorFlow."""
    tf = _tensorflow()
    z_a, z_m = _draw_latents(tf, batch_size, seed, latent_dim)
    return z_a.numpy(), z_m.numpy()


def endpoint_functions(model) -> dict[str, Callable]:
    """The exported computations as plain `keras.ops` functions of the model, by name
    (without `sample`, which is `generate` after `sample_latents`)."""

    def generate(z_a, z_m):
        w_a, w_m = model.map_latents(ops.cast(z_a, "float32"), ops.cast(z_m, "float32"))
        return _video_outputs(model.synthesize(w_a, w_m))

    def encode(videos):
        w_a, w_m = model.encode(videos)
        return {"w_a": ops.cast(w_a, "float32"), "w_m": ops.cast(w_m, "float32")}

    def reconstruct(videos):
        return _video_outputs(model.reconstruct(videos))

    functions = {"generate": generate}
    if model.motion_encoder is not None:
        functions.update(encode=encode, reconstruct=reconstruct)
    return functions


def _inference_layers(model) -> list:
    layers = [model.appearance_mapping, model.motion_mapping, model.video_generator]
    if model.motion_encoder is not None:
        layers += [model.appearance_encoder, model.motion_encoder]
    return layers


def _check_output_folder(path: str | os.PathLike) -> Path:
    path = Path(path)
    if path.exists() and (not path.is_dir() or any(path.iterdir())):
        raise ExportError(f"{path} exists and is not an empty folder; choose a new --out")
    return path


def export_saved_model(
    model, path: str | os.PathLike, metadata: dict[str, Any] | None = None
) -> dict[str, dict]:
    """Writes `model`'s endpoints as a SavedModel folder `path`; returns, per signature name,
    its inputs and outputs as {name: (shape, dtype)} (None is the dynamic batch).

    `metadata` (e.g. the checkpoint step) is stored with the model's configuration in
    `path/avlae_export.json`.
    """
    tf = _tensorflow()
    from avlae_keras.backend import export_endpoint_options

    path = _check_output_folder(path)
    frames, size, latent = model.frames, model.resolution, model.latent_dim
    latent_spec = keras.InputSpec(shape=(None, latent), dtype="float32")
    video_spec = keras.InputSpec(shape=(None, frames, size, size, 3), dtype="float32")
    input_specs = {
        "generate": [latent_spec, latent_spec],
        "encode": [video_spec],
        "reconstruct": [video_spec],
    }

    archive = keras.export.ExportArchive()
    for layer in _inference_layers(model):
        archive.track(layer)
    exported = {}
    for name, function in endpoint_functions(model).items():
        exported[name] = archive.add_endpoint(
            name, function, input_specs[name], **export_endpoint_options()
        )

    generate = exported["generate"]

    def sample(batch_size, seed):
        return generate(*_draw_latents(tf, batch_size, seed, latent))

    sample_fn = tf.function(
        sample,
        input_signature=[
            tf.TensorSpec((), tf.int32, name="batch_size"),
            tf.TensorSpec((), tf.int64, name="seed"),
        ],
        autograph=False,
    )
    sample_fn.get_concrete_function()
    archive.add_endpoint("sample", sample_fn)

    # Written beside `path` and renamed into place, so that a server watching the folder (TF
    # Serving loads new version folders as they appear) never sees half a SavedModel.
    with atomic_path(path) as temporary:  # `path` is missing or empty, checked above
        archive.write_out(str(temporary), verbose=False)
        signatures = describe_signatures(temporary)
        record = {
            "endpoints": sorted(signatures),
            "serving_default": SERVING_DEFAULT,
            "backend": keras.backend.backend(),
            "resolution": size,
            "frames": frames,
            "latent_dim": latent,
            "uint8": "round((x + 1) * 127.5) clipped to [0, 255]",
            "sample_latents": "tf.random.stateless_normal, philox, seeds [seed, 0], [seed, 1]",
            **(metadata or {}),
        }
        (temporary / METADATA_FILE).write_text(json.dumps(record, indent=2, default=str))
    return signatures


def describe_signatures(path: str | os.PathLike) -> dict[str, dict]:
    """{signature: {"inputs": {name: (shape, dtype)}, "outputs": {...}}} of a SavedModel."""
    tf = _tensorflow()
    loaded = tf.saved_model.load(str(path))
    described = {}
    for name, function in loaded.signatures.items():
        inputs = function.structured_input_signature[1]
        outputs = function.structured_outputs
        described[name] = {
            "inputs": {k: (tuple(s.shape), s.dtype.name) for k, s in sorted(inputs.items())},
            "outputs": {k: (tuple(s.shape), s.dtype.name) for k, s in sorted(outputs.items())},
        }
    return dict(sorted(described.items()))


def run(config: ExportConfig) -> dict[str, Any]:
    """Loads the newest checkpoint of a training work directory (or that of `config.step`) and
    exports it as a SavedModel folder `config.out`. Returns the report: `path`, `step`,
    `checkpoint` and `signatures` (as `export_saved_model`). Raises `ConfigError` for unusable
    options, `CheckpointLoadError` for a missing or mismatched checkpoint and `ExportError` when
    TensorFlow is missing or `config.out` is not a new or empty folder, each before loading
    anything."""
    from avlae_keras.workdir import WorkDir, load_trained_model

    config.validate()
    _tensorflow()
    out = _check_output_folder(config.out)
    model, checkpoint, _ = load_trained_model(config.workdir, config.step)
    signatures = export_saved_model(
        model,
        out,
        metadata={"workdir": str(WorkDir(config.workdir).path.resolve()), "step": checkpoint.step},
    )
    return {
        "path": os.fspath(out),
        "step": checkpoint.step,
        "checkpoint": os.fspath(checkpoint.path),
        "signatures": signatures,
    }


def format_signatures(signatures: dict[str, dict]) -> str:
    """One line per signature: name(inputs) -> outputs, with shapes and dtypes."""

    def tensors(specs: dict) -> str:
        return ", ".join(
            f"{name}: {dtype}[{', '.join('B' if d is None else str(d) for d in shape)}]"
            for name, (shape, dtype) in specs.items()
        )

    return "\n".join(
        f"  {name}({tensors(spec['inputs'])}) -> {tensors(spec['outputs'])}"
        for name, spec in signatures.items()
    )
