"""RAFT's gradient with respect to both frames against the original PyTorch RAFT's autograd.

The fixture (`fixtures/raft_input_gradients.npz`, written by
`benchmarks/raft_input_gradient_vs_pytorch.py` from the official implementation and checkpoints)
holds two 128x128 frames, a fixed random projection of `flow_up` and, per checkpoint, the
gradient of sum(flow_up * projection) with respect to each frame after a few iterations."""

from pathlib import Path

import numpy as np
import pytest
from keras import ops

from flows import RAFT, value_and_input_gradients
from tests.conftest import shared_file
from tests.test_case import eager_on_tensorflow, jitted_on_jax

FIXTURE = Path(__file__).parent / "fixtures" / "raft_input_gradients.npz"
TOLERANCE = 2e-3  # relative L2 error of each frame's gradient


def projected_flow_gradients(raft, image1, image2, projection, iters: int) -> list[np.ndarray]:
    """Gradients of sum(flow_up * projection) wrt image1 and image2 ((B, H, W, 3) in [0, 255])."""

    def projected_flow(a, b):
        _, flow_up = raft.compute_flow(a, b, iters=iters)
        return ops.sum(flow_up * projection)

    # Compiled on JAX, op by op on TensorFlow (tests/test_case.py): 1 CPU-s there against 13 for
    # an XLA compile of RAFT's forward and backward; both were measured within 7e-4 of PyTorch.
    gradient_fn = jitted_on_jax(value_and_input_gradients(projected_flow, argnums=(0, 1)))
    _, gradients = gradient_fn(image1, image2)
    return [np.asarray(ops.convert_to_numpy(g)) for g in gradients]


def relative_error(ours, reference) -> float:
    return float(np.linalg.norm(ours - reference) / np.linalg.norm(reference))


@pytest.mark.parametrize("checkpoint", ["small", "sintel"])
def test_input_gradients_match_pytorch(checkpoint):
    if not FIXTURE.exists():
        pytest.skip(f"needs {FIXTURE} (benchmarks/raft_input_gradient_vs_pytorch.py writes it)")
    golden = np.load(FIXTURE)
    raft = eager_on_tensorflow(
        RAFT.from_checkpoint(shared_file(f"weights/raft/raft-{checkpoint}.pth"))
    )
    image1 = golden["image1"][None].astype("float32")
    image2 = golden["image2"][None].astype("float32")
    ours = projected_flow_gradients(
        raft, image1, image2, golden["projection"][None], int(golden["iters"])
    )
    for index, gradient in enumerate(ours, start=1):
        reference = golden[f"{checkpoint}_grad_image{index}"]
        assert relative_error(gradient[0], reference) <= TOLERANCE, (checkpoint, index)
