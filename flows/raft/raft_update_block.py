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
        motion = self.encode_motion(flow, corr)
        gru_input = ops.concatenate([context, motion], axis=-1)
        for update_conv, reset_conv, candidate_conv in self.gru_convs:
            hidden_and_input = ops.concatenate([hidden, gru_input], axis=-1)
            update = ops.sigmoid(update_conv(hidden_and_input))
            reset = ops.sigmoid(reset_conv(hidden_and_input))
            candidate = ops.tanh(
                candidate_conv(ops.concatenate([reset * hidden, gru_input], axis=-1))
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
