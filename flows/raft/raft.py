"""RAFT (Teed & Deng, 2020) optical flow as a Keras 3 model, weight-compatible with the official
PyTorch checkpoints."""

from __future__ import annotations

import math
import os

import keras
import numpy as np
from keras import ops

from flows.raft.raft_correlation import correlation_pyramid, lookup_correlation
from flows.raft.raft_encoder import RAFTEncoder
from flows.raft.raft_update_block import RAFTUpdateBlock
from flows.raft.raft_upsampling import bilinear_upsample8, convex_upsample
from flows.transforms import compile_model_function, is_traced, repeat

# Architecture of the two published variants.
RAFT_VARIANTS = {
    "large": {
        "family": "basic",
        "feature_dim": 256,
        "hidden_dim": 128,
        "context_dim": 128,
        "context_norm": "batch",
        "corr_levels": 4,
        "corr_radius": 4,
    },
    "small": {
        "family": "small",
        "feature_dim": 128,
        "hidden_dim": 96,
        "context_dim": 64,
        "context_norm": "none",
        "corr_levels": 4,
        "corr_radius": 3,
    },
}
PADDING_MODES = ("sintel", "kitti")


@keras.saving.register_keras_serializable(package="flows")
class RAFT(keras.Model):
    """Recurrent All-Pairs Field Transforms for optical flow.

    Images are (B, H, W, 3) RGB floats in [0, 255], any H and W. The model is frozen by default
    (no trainable weights; BatchNorm always uses its stored statistics) but stays differentiable
    with respect to both images, so it can sit inside another model's training graph.

    Args:
        variant: 'large' (RAFT, 5.3M parameters) or 'small' (RAFT-small, 1.0M).
        iters: default number of refinement iterations.
        padding_mode: how inputs are padded to a multiple of 8 with replicated edges: 'sintel'
            (split evenly between both sides) or 'kitti' (height padded at the bottom only).
        trainable: False (the default) freezes every weight.
        dtype: dtype policy. "float32" (the default) whatever the global policy; with
            "mixed_bfloat16" the encoders and the update block compute in bfloat16 while the
            correlation volume, its lookup, coordinates, flow and upsampling stay in float32.
        unroll: False (the default) runs the refinement iterations as one loop primitive
            (`lax.scan` / `tf.while_loop`), so compilation time does not grow with `iters`; True
            unrolls them in Python (one copy of the update block per iteration in the graph).

    `compute_flow` on concrete arrays compiles the forward pass with XLA on first use, once per
    iteration count (and per input shape, as `jax.jit` / `tf.function` retrace), and reuses the
    compiled program, as Keras's `predict` does. Inside a traced function (another model's
    training step, `flows.jit`) it is traced with its caller. `raft.run_eagerly = True` runs it
    eagerly, op by op, for debugging.

    Example:
        raft = RAFT.from_preset("raft_sintel")
        flow_low, flow_up = raft.compute_flow(frame1, frame2, iters=12)
    """

    def __init__(
        self,
        variant: str = "large",
        iters: int = 12,
        padding_mode: str = "sintel",
        trainable: bool = False,
        dtype="float32",
        unroll: bool = False,
        **kwargs,
    ):
        if variant not in RAFT_VARIANTS:
            raise ValueError(
                f"Unknown RAFT variant {variant!r}; expected one of {list(RAFT_VARIANTS)}."
            )
        if padding_mode not in PADDING_MODES:
            raise ValueError(
                f"Unknown padding_mode {padding_mode!r}; expected one of {PADDING_MODES}."
            )
        if iters < 1:
            raise ValueError(f"iters must be at least 1, got {iters}.")
        super().__init__(trainable=trainable, dtype=dtype, **kwargs)
        spec = RAFT_VARIANTS[variant]

        # === Layers ===
        self.feature_encoder = RAFTEncoder(
            spec["feature_dim"], "instance", spec["family"], name="fnet", dtype=self.dtype_policy
        )
        self.context_encoder = RAFTEncoder(
            spec["hidden_dim"] + spec["context_dim"],
            spec["context_norm"],
            spec["family"],
            name="cnet",
            dtype=self.dtype_policy,
        )
        self.update_block = RAFTUpdateBlock(
            spec["family"], spec["hidden_dim"], name="update_block", dtype=self.dtype_policy
        )
        image_shape = (None, None, None, 3)
        self.feature_encoder.build(image_shape)
        self.context_encoder.build(image_shape)
        grid = (None, None, None)
        self.update_block.build(
            (
                (*grid, spec["hidden_dim"]),
                (*grid, spec["context_dim"]),
                (*grid, spec["corr_levels"] * (2 * spec["corr_radius"] + 1) ** 2),
                (*grid, 2),
            )
        )
        self.built = True
        # Layers created after `Model.__init__` do not inherit its `trainable`; on TensorFlow
        # setting the model's flag again does not reach them either, so set each one.
        for part in (self.feature_encoder, self.context_encoder, self.update_block):
            part.trainable = trainable

        # === Config ===
        self.variant = variant
        self.iters = iters
        self.padding_mode = padding_mode
        self.unroll = unroll
        self.hidden_dim = spec["hidden_dim"]
        self.corr_levels = spec["corr_levels"]
        self.corr_radius = spec["corr_radius"]
        self._compiled_flow = {}

    # --- construction from official weights ------------------------------------------------

    @classmethod
    def from_checkpoint(cls, path: str | os.PathLike, **kwargs) -> RAFT:
        """Builds the variant a PyTorch checkpoint holds and loads it (PyTorch not needed)."""
        from flows.raft.raft_weights import (
            detect_variant,
            load_state_dict_into,
            read_raft_state_dict,
        )

        state_dict = read_raft_state_dict(path)
        model = cls(variant=detect_variant(state_dict, path), **kwargs)
        load_state_dict_into(model, state_dict, path)
        return model

    @classmethod
    def from_preset(cls, name: str, **kwargs) -> RAFT:
        """Loads `raft_sintel`, `raft_things`, `raft_kitti` or `raft_small`.

        The checkpoint is looked up in `$FLOWS_WEIGHTS_DIR`, then in the user cache, then downloaded
        (official `models.zip`, md5-checked). A path to a checkpoint or to a folder written by
        `python -m flows.convert` is accepted too.
        """
        from flows.raft.raft_presets import resolve_preset

        resolved = resolve_preset(name)
        if resolved.keras_preset_dir is not None:
            return load_converted_preset(resolved.keras_preset_dir, **kwargs)
        kwargs.setdefault("padding_mode", resolved.padding_mode)
        return cls.from_checkpoint(resolved.checkpoint_path, **kwargs)

    def load_checkpoint(self, path: str | os.PathLike) -> None:
        """Loads an official PyTorch checkpoint into this model (its variant must match)."""
        from flows.raft.raft_weights import load_state_dict_into, read_raft_state_dict

        load_state_dict_into(self, read_raft_state_dict(path), path)

    # --- forward pass ---------------------------------------------------------------------

    def _padding(self, height: int, width: int):
        pad_h = (-height) % 8
        pad_w = (-width) % 8
        left, right = pad_w // 2, pad_w - pad_w // 2
        if self.padding_mode == "sintel":
            top, bottom = pad_h // 2, pad_h - pad_h // 2
        else:
            top, bottom = 0, pad_h
        return top, bottom, left, right

    @staticmethod
    def _replicate_pad(images, top: int, bottom: int, left: int, right: int):
        # Built from edge slices: TensorFlow's pad has no 'edge' mode.
        parts = [images[:, :1]] * top + [images] + [images[:, -1:]] * bottom
        images = ops.concatenate(parts, axis=1) if len(parts) > 1 else images
        parts = [images[:, :, :1]] * left + [images] + [images[:, :, -1:]] * right
        return ops.concatenate(parts, axis=2) if len(parts) > 1 else images

    @staticmethod
    def _check_images(image1, image2) -> None:
        shape1, shape2 = tuple(ops.shape(image1)), tuple(ops.shape(image2))
        if len(shape1) != 4 or shape1[-1] != 3:
            raise ValueError(f"RAFT expects images of shape (B, H, W, 3), got {shape1}.")
        if shape1[1:] != shape2[1:]:
            raise ValueError(f"Both images must have the same shape, got {shape1} and {shape2}.")
        RAFT._check_static_size(*shape1[1:3])

    @staticmethod
    def _check_static_size(height, width) -> None:
        if not (isinstance(height, int) and isinstance(width, int)):
            raise ValueError("RAFT needs static image height and width (the batch may be dynamic).")

    def _normalize(self, images, top: int, bottom: int, left: int, right: int):
        """[0, 255] float32 images -> [-1, 1], padded to a multiple of 8, in the compute dtype."""
        images = self._replicate_pad(2.0 * (images / 255.0) - 1.0, top, bottom, left, right)
        return ops.cast(images, self.compute_dtype)

    def _forward(
        self,
        image1,
        image2,
        iters: int,
        flow_init=None,
        record: dict | None = None,
        unroll: bool | None = None,
    ):
        # Coordinates, flow, correlation and upsampling stay in float32 under any dtype policy;
        # the encoders and the update block run in the policy's compute dtype.
        image1 = ops.cast(image1, "float32")
        image2 = ops.cast(image2, "float32")
        self._check_images(image1, image2)
        height, width = image1.shape[1], image1.shape[2]
        padding = self._padding(height, width)
        images = self._normalize(ops.concatenate([image1, image2], axis=0), *padding)
        features1, features2 = ops.split(self.feature_encoder(images), 2, axis=0)
        first = images[: ops.shape(image1)[0]]
        return self._refine(
            features1, features2, first, iters, (height, width), padding, flow_init, record, unroll
        )

    def _forward_sequence(self, frames, iters: int, unroll: bool | None = None):
        """`_forward` on every consecutive pair of (B, T, H, W, 3) frames, each frame through the
        feature encoder once (pairwise, every interior frame would be encoded twice)."""
        frames = ops.cast(frames, "float32")
        shape = tuple(frames.shape)
        if len(shape) != 5 or shape[-1] != 3 or shape[1] is None or shape[1] < 2:
            raise ValueError(
                f"RAFT.compute_flow_sequence expects frames of shape (B, T, H, W, 3) with T >= 2 "
                f"(T known when traced), got {shape}."
            )
        steps, height, width = shape[1], shape[2], shape[3]
        self._check_static_size(height, width)
        padding = self._padding(height, width)
        images = self._normalize(ops.reshape(frames, (-1, height, width, 3)), *padding)
        features = self.feature_encoder(images)

        def pairs(x, start: int, stop: int):
            # (B * T, ...) -> frames start..stop-1 of every video -> (B * (T - 1), ...)
            x = ops.reshape(x, (-1, steps, *x.shape[1:]))[:, start:stop]
            return ops.reshape(x, (-1, *x.shape[2:]))

        flow_low, flow_up = self._refine(
            pairs(features, 0, steps - 1),
            pairs(features, 1, steps),
            pairs(images, 0, steps - 1),
            iters,
            (height, width),
            padding,
            unroll=unroll,
        )
        return (
            ops.reshape(flow_low, (-1, steps - 1, *flow_low.shape[1:])),
            ops.reshape(flow_up, (-1, steps - 1, *flow_up.shape[1:])),
        )

    def _refine(
        self,
        features1,
        features2,
        image1,
        iters: int,
        size: tuple[int, int],
        padding: tuple[int, int, int, int],
        flow_init=None,
        record: dict | None = None,
        unroll: bool | None = None,
    ):
        """The context encoder on the normalized first images, the correlation pyramid of the
        feature maps, the refinement iterations and the upsampling."""
        height, width = size
        top, bottom, left, right = padding
        pyramid = correlation_pyramid(
            ops.cast(features1, "float32"), ops.cast(features2, "float32"), self.corr_levels
        )
        context = self.context_encoder(image1)
        hidden = ops.tanh(context[..., : self.hidden_dim])
        context_features = ops.relu(context[..., self.hidden_dim :])

        grid_h, grid_w = (height + top + bottom) // 8, (width + left + right) // 8
        xs, ys = np.meshgrid(np.arange(grid_w), np.arange(grid_h))
        coords0 = ops.convert_to_tensor(np.stack([xs, ys], -1)[None].astype(np.float32))
        flow = ops.zeros_like(ops.cast(features1[..., :2], "float32"))
        if flow_init is not None:
            flow = flow + ops.cast(flow_init, "float32")

        # Loop-invariant: the context's share of the GRU convolutions.
        context_terms = self.update_block.context_terms(context_features)

        def step(state):
            hidden, flow, _ = state
            # The reference detaches the coordinates: gradients reach the images only through
            # correlation values, context, the recurrent state and the last update.
            flow = ops.stop_gradient(flow)
            corr = lookup_correlation(pyramid, coords0 + flow, self.corr_radius)
            hidden, delta_flow = self.update_block.step(hidden, context_terms, corr, flow)
            delta_flow = ops.cast(delta_flow, "float32")
            return hidden, flow + delta_flow, delta_flow

        flow_start = flow
        state = (hidden, flow, ops.zeros_like(flow))
        if record is None:
            unroll = self.unroll if unroll is None else unroll
            hidden, flow, _ = repeat(step, state, iters, unroll=unroll)
        else:
            (hidden, flow, _), (hiddens, flows, deltas) = repeat(
                step, state, iters, unroll=self.unroll, history=True
            )
            record.update(
                fmap1=features1,
                fmap2=features2,
                cnet=context,
                corr_iter0=lookup_correlation(pyramid, coords0 + flow_start, self.corr_radius),
                delta_flow=[deltas[i] for i in range(iters)],
                flow_up=[
                    self._upsample(flows[i], self._mask(hiddens[i]), top, left, height, width)
                    for i in range(iters)
                ],
                up_mask_last=self._mask(hidden),
            )
        return flow, self._upsample(flow, self._mask(hidden), top, left, height, width)

    def _mask(self, hidden):
        mask = self.update_block.upsampling_mask(hidden)
        return None if mask is None else ops.cast(mask, "float32")

    @staticmethod
    def _upsample(flow, mask, top, left, height, width):
        up = bilinear_upsample8(flow) if mask is None else convex_upsample(flow, mask)
        return up[:, top : top + height, left : left + width, :]

    def call(self, inputs, iters: int | None = None, flow_init=None):
        """`inputs` is `(image1, image2)` or `{"image1": ..., "image2": ...}`.

        Returns `{"flow_low": (B, ceil(H/8), ceil(W/8), 2), "flow_up": (B, H, W, 2)}`.
        """
        if isinstance(inputs, dict):
            image1, image2 = inputs["image1"], inputs["image2"]
        else:
            image1, image2 = inputs
        flow_low, flow_up = self._forward(image1, image2, iters or self.iters, flow_init)
        return {"flow_low": flow_low, "flow_up": flow_up}

    def compute_flow(self, image1, image2, iters: int | None = None, flow_init=None):
        """Flow from `image1` to `image2` ((B, H, W, 3) RGB in [0, 255]).

        Returns `(flow_low, flow_up)`: flow at 1/8 resolution on the padded grid, in 1/8-resolution
        pixels, and the full-resolution flow in pixels; channel 0 is x, channel 1 is y.
        `flow_init` (B, ceil(H/8), ceil(W/8), 2) warm-starts the estimate.
        """
        iters = iters or self.iters
        if self.run_eagerly or is_traced(image1, image2, flow_init):
            return self._forward(image1, image2, iters, flow_init)
        self._check_images(image1, image2)
        key = (iters, flow_init is None)
        if key not in self._compiled_flow:
            unroll = self._compiled_unroll()
            if flow_init is None:
                forward = lambda a, b: self._forward(a, b, iters, unroll=unroll)  # noqa: E731
            else:
                forward = lambda a, b, f: self._forward(a, b, iters, f, unroll=unroll)  # noqa: E731
            self._compiled_flow[key] = compile_model_function(self, forward)
        arrays = [ops.convert_to_tensor(image1), ops.convert_to_tensor(image2)]
        if flow_init is not None:
            arrays.append(ops.convert_to_tensor(flow_init))
        return self._compiled_flow[key](*arrays)

    def compute_flow_sequence(self, frames, iters: int | None = None):
        """Flow between every pair of consecutive frames of (B, T, H, W, 3) RGB in [0, 255].

        Returns `(flow_low, flow_up)` of shapes (B, T-1, ceil(H/8), ceil(W/8), 2) and
        (B, T-1, H, W, 2): pair t is `compute_flow(frames[:, t], frames[:, t + 1])`, but every
        frame goes through the feature encoder once instead of twice. Compiled on first use, as
        `compute_flow`.
        """
        iters = iters or self.iters
        if self.run_eagerly or is_traced(frames):
            return self._forward_sequence(frames, iters)
        key = ("sequence", iters)
        if key not in self._compiled_flow:
            unroll = self._compiled_unroll()
            forward = lambda f: self._forward_sequence(f, iters, unroll=unroll)  # noqa: E731
            self._compiled_flow[key] = compile_model_function(self, forward)
        return self._compiled_flow[key](ops.convert_to_tensor(frames))

    @staticmethod
    def _compiled_unroll() -> bool | None:
        # TensorFlow cannot take a gradient (a GradientTape may be watching) through a loop
        # inside an XLA function: the compiled forward pass unrolls it there.
        return True if keras.backend.backend() == "tensorflow" else None

    def compute_flow_with_intermediates(self, image1, image2, iters: int | None = None) -> dict:
        """As `compute_flow`, also returning the intermediate tensors the reference exposes
        (`fmap1`, `fmap2`, `cnet`, `corr_iter0`, per-iteration `delta_flow` and `flow_up`,
        `up_mask_last`), for verification against the PyTorch implementation."""
        record: dict = {}
        flow_low, flow_up = self._forward(image1, image2, iters or self.iters, record=record)
        return {**record, "flow_low": flow_low, "flow_up_final": flow_up}

    def compute_output_shape(self, input_shape):
        shape = input_shape["image1"] if isinstance(input_shape, dict) else input_shape[0]
        batch, height, width, _ = shape
        low = (batch, math.ceil(height / 8), math.ceil(width / 8), 2)
        return {"flow_low": low, "flow_up": (batch, height, width, 2)}

    def parameter_count(self) -> int:
        """Number of parameters as PyTorch counts them (BatchNorm running statistics excluded)."""
        statistics = set()
        for layer in self._flatten_layers(include_self=False, recursive=True):
            if isinstance(layer, keras.layers.BatchNormalization):
                statistics.update(id(v) for v in (layer.moving_mean, layer.moving_variance))
        return int(sum(np.prod(v.shape) for v in self.weights if id(v) not in statistics))

    def get_config(self):
        config = super().get_config()
        config.pop("trainable", None)
        return {
            **config,
            "variant": self.variant,
            "iters": self.iters,
            "padding_mode": self.padding_mode,
            "unroll": self.unroll,
            "trainable": self.trainable,
        }


def load_converted_preset(directory: str | os.PathLike, **kwargs) -> RAFT:
    """Loads a folder written by `python -m flows.convert` (config.json + model.weights.h5)."""
    import json

    directory = os.fspath(directory)
    with open(os.path.join(directory, "config.json")) as f:
        config = json.load(f)
    config.update(kwargs)
    model = RAFT.from_config(config)
    model.load_weights(os.path.join(directory, "model.weights.h5"))
    return model
