"""RAFT's recurrent update operator: motion encoder, convolutional GRU, flow and mask heads."""

from __future__ import annotations

import keras
from keras import ops

from flows.raft.raft_layers import TorchConv2D, build_layer

# Widths of the two update blocks, as in the reference `BasicUpdateBlock`/`SmallUpdateBlock`.
_UPDATE_WIDTHS = {
    # corr convs, flow convs, joint conv output (before the flow is appended), flow head hidden
    "basic": {"corr": (256, 192), "flow": (128, 64), "joint": 126, "head": 256},
    "small": {"corr": (96,), "flow": (64, 32), "joint": 80, "head": 128},
}


@keras.saving.register_keras_serializable(package="flows")
class RAFTUpdateBlock(keras.layers.Layer):
    """One refinement step: (hidden, context, correlation, flow) -> (hidden, delta flow), and
    the convex-upsampling mask of a hidden state (`upsampling_mask`).

    Args:
        family: 'basic' (SepConvGRU, convex-upsampling mask head) or 'small' (ConvGRU, no mask).
        hidden_dim: channels of the recurrent state (128 large, 96 small).
    """

    def __init__(self, family: str = "basic", hidden_dim: int = 128, **kwargs):
        super().__init__(**kwargs)
        if family not in _UPDATE_WIDTHS:
            raise ValueError(
                f"Unknown update-block family {family!r}; expected 'basic' or 'small'."
            )
        self.family, self.hidden_dim = family, hidden_dim
        widths = _UPDATE_WIDTHS[family]

        # Motion encoder.
        corr_kernels = (1, 3)
        self.corr_convs = [
            TorchConv2D(width, corr_kernels[i], name=f"convc{i + 1}", dtype=self.dtype_policy)
            for i, width in enumerate(widths["corr"])
        ]
        self.flow_convs = [
            TorchConv2D(widths["flow"][0], 7, name="convf1", dtype=self.dtype_policy),
            TorchConv2D(widths["flow"][1], 3, name="convf2", dtype=self.dtype_policy),
        ]
        self.joint_conv = TorchConv2D(widths["joint"], 3, name="conv", dtype=self.dtype_policy)

        # Recurrent unit: a horizontal (1x5) then a vertical (5x1) GRU, or one 3x3 GRU.
        kernels = [(1, 5), (5, 1)] if family == "basic" else [(3, 3)]
        # Each entry holds the update (z), reset (r) and candidate (q) convolutions.
        self.gru_convs = [
            [
                TorchConv2D(hidden_dim, kernel, name=f"conv{gate}{i + 1}", dtype=self.dtype_policy)
                for gate in "zrq"
            ]
            for i, kernel in enumerate(kernels)
        ]

        # Heads.
        self.flow_head = [
            TorchConv2D(widths["head"], 3, name="flow_head_conv1", dtype=self.dtype_policy),
            TorchConv2D(2, 3, name="flow_head_conv2", dtype=self.dtype_policy),
        ]
        self.mask_head = None
        if family == "basic":
            self.mask_head = [
                TorchConv2D(256, 3, name="mask_conv1", dtype=self.dtype_policy),
                TorchConv2D(64 * 9, 1, name="mask_conv2", dtype=self.dtype_policy),
            ]

    def build(self, input_shapes):
        hidden_shape, context_shape, corr_shape, flow_shape = input_shapes
        shape = corr_shape
        for conv in self.corr_convs:
            shape = build_layer(conv, shape)
        corr_channels = shape[-1]
        shape = flow_shape
        for conv in self.flow_convs:
            shape = build_layer(conv, shape)
        build_layer(self.joint_conv, (*shape[:-1], corr_channels + shape[-1]))
        motion_channels = self.joint_conv.filters + 2
        gru_input = (*hidden_shape[:-1], self.hidden_dim + context_shape[-1] + motion_channels)
        for convs in self.gru_convs:
            for conv in convs:
                build_layer(conv, gru_input)
        build_layer(self.flow_head[1], build_layer(self.flow_head[0], hidden_shape))
        if self.mask_head is not None:
            build_layer(self.mask_head[1], build_layer(self.mask_head[0], hidden_shape))

    def encode_motion(self, flow, corr):
        for conv in self.corr_convs:
            corr = ops.relu(conv(corr))
        flow_features = flow
        for conv in self.flow_convs:
            flow_features = ops.relu(conv(flow_features))
        joint = ops.relu(self.joint_conv(ops.concatenate([corr, flow_features], axis=-1)))
        return ops.concatenate([joint, flow], axis=-1)

    def call(self, hidden, context, corr, flow):
        """Returns the new hidden state and the flow update (B, H, W, 2)."""
        return self.step(hidden, self.context_terms(context), corr, flow)

    def _kernel_channels(self) -> tuple[slice, slice, slice]:
        """Input-channel slices of a GRU kernel: hidden state, context, motion features."""
        motion = self.joint_conv.filters + 2
        total = self.gru_convs[0][0].kernel.shape[2]
        return (
            slice(0, self.hidden_dim),
            slice(self.hidden_dim, total - motion),
            slice(total - motion, total),
        )

    def context_terms(self, context):
        """The context's share of every GRU convolution, biases included: one tensor
        (B, H, W, 3 * hidden_dim) per GRU (update, reset, candidate). The context does not change
        over the iterations, so RAFT computes this once before the loop (`step`)."""
        context_channels = self._kernel_channels()[1]
        terms = []
        for convs in self.gru_convs:
            kernel = ops.concatenate([conv.kernel[:, :, context_channels] for conv in convs], -1)
            bias = ops.concatenate([conv.bias for conv in convs], axis=0)
            terms.append(convs[0].convolve(context, kernel, bias))
        return terms

    def step(self, hidden, context_terms, corr, flow):
        """`call` with the context's share precomputed by `context_terms`.

        Each GRU convolution of concat([hidden, context, motion]) is the sum of per-part
        convolutions; here the motion's share of all three gates is one convolution, the hidden
        state's share of the update and reset gates another.
        """
        hidden_channels, _, motion_channels = self._kernel_channels()
        motion = self.encode_motion(flow, corr)
        hidden = ops.cast(hidden, self.compute_dtype)
        width = self.hidden_dim
        for (update_conv, reset_conv, candidate_conv), context_term in zip(
            self.gru_convs, context_terms, strict=True
        ):
            convs = (update_conv, reset_conv, candidate_conv)
            motion_kernel = ops.concatenate([c.kernel[:, :, motion_channels] for c in convs], -1)
            inputs_term = context_term + update_conv.convolve(motion, motion_kernel)
            gates_kernel = ops.concatenate(
                [
                    update_conv.kernel[:, :, hidden_channels],
                    reset_conv.kernel[:, :, hidden_channels],
                ],
                axis=-1,
            )
            gates = ops.sigmoid(
                update_conv.convolve(hidden, gates_kernel) + inputs_term[..., : 2 * width]
            )
            update, reset = gates[..., :width], gates[..., width:]
            candidate = ops.tanh(
                candidate_conv.convolve(
                    reset * hidden, candidate_conv.kernel[:, :, hidden_channels]
                )
                + inputs_term[..., 2 * width :]
            )
            hidden = (1.0 - update) * hidden + update * candidate
        delta_flow = self.flow_head[1](ops.relu(self.flow_head[0](hidden)))
        return hidden, delta_flow

    def upsampling_mask(self, hidden):
        """The convex-upsampling mask (B, H, W, 576) of a hidden state, or None ('small').

        The reference computes it in every iteration from the new hidden state, but only the last
        one is used; computing it once after the loop gives the same result.
        """
        if self.mask_head is None:
            return None
        # The reference scales the mask by 0.25 to balance its gradients.
        return 0.25 * self.mask_head[1](ops.relu(self.mask_head[0](hidden)))

    def torch_modules(self, prefix: str):
        modules = [(f"{prefix}.encoder.convc{i + 1}", c) for i, c in enumerate(self.corr_convs)]
        modules += [(f"{prefix}.encoder.convf{i + 1}", c) for i, c in enumerate(self.flow_convs)]
        modules.append((f"{prefix}.encoder.conv", self.joint_conv))
        for i, convs in enumerate(self.gru_convs):
            suffix = str(i + 1) if len(self.gru_convs) > 1 else ""
            modules += [(f"{prefix}.gru.conv{g}{suffix}", c) for g, c in zip("zrq", convs)]
        modules += [(f"{prefix}.flow_head.conv{i + 1}", c) for i, c in enumerate(self.flow_head)]
        if self.mask_head is not None:
            modules += [
                (f"{prefix}.mask.0", self.mask_head[0]),
                (f"{prefix}.mask.2", self.mask_head[1]),
            ]
        return modules

    def get_config(self):
        return {**super().get_config(), "family": self.family, "hidden_dim": self.hidden_dim}
