"""RAFT against golden outputs of the original PyTorch implementation with the official weights."""

import keras
import numpy as np
import pytest

from flows import RAFT, load_torch_checkpoint
from flows.raft.raft_weights import read_raft_state_dict, state_dict_parameter_count
from tests.conftest import shared_file

PARAMETER_COUNTS = {"sintel": 5_257_536, "small": 990_162}


def to_nchw(x):
    return np.transpose(np.asarray(x), (0, 3, 1, 2))


def end_point_error(a, b):
    return float(np.sqrt(np.sum((a - b) ** 2, axis=1)).mean())


@pytest.fixture(scope="module")
def sintel_run():
    model = RAFT.from_checkpoint(shared_file("weights/raft/raft-sintel.pth"))
    golden = np.load(shared_file("fixtures/raft/golden_raft_sintel_128x128_iters12.npz"))
    image1 = golden["image1"][None].astype("float32")
    image2 = golden["image2"][None].astype("float32")
    return model, golden, model.compute_flow_with_intermediates(image1, image2, iters=12)


@pytest.mark.parametrize("name", ["sintel", "small"])
def test_checkpoint_parameter_counts(name):
    """Zip (sintel) and legacy-pickle (small) files read into the reference parameter counts."""
    path = shared_file(f"weights/raft/raft-{name}.pth")
    assert state_dict_parameter_count(read_raft_state_dict(path)) == PARAMETER_COUNTS[name]
    assert RAFT.from_checkpoint(path).parameter_count() == PARAMETER_COUNTS[name]


def test_checkpoint_formats_differ_as_documented():
    import zipfile

    assert zipfile.is_zipfile(shared_file("weights/raft/raft-sintel.pth"))
    assert not zipfile.is_zipfile(shared_file("weights/raft/raft-small.pth"))
    state = load_torch_checkpoint(shared_file("weights/raft/raft-small.pth"))
    assert all(k.startswith("module.") for k in state)


def test_sintel_final_flow(sintel_run):
    _, golden, run = sintel_run
    flow_up = to_nchw(run["flow_up_final"])
    assert end_point_error(flow_up, golden["flow_up"]) <= 1e-3
    assert np.abs(flow_up - golden["flow_up"]).max() <= 1e-2
    assert end_point_error(to_nchw(run["flow_low"]), golden["flow_low"]) <= 2e-4


@pytest.mark.parametrize("key", ["fmap1", "fmap2", "cnet", "corr_iter0", "up_mask_last"])
def test_sintel_intermediates(sintel_run, key):
    _, golden, run = sintel_run
    reference = golden[key]
    # Absolute error relative to the tensor's scale, the same order as the flow tolerance.
    assert np.abs(to_nchw(run[key]) - reference).max() <= 1e-4 * max(1.0, np.abs(reference).max())


def test_sintel_per_iteration(sintel_run):
    _, golden, run = sintel_run
    deltas = np.stack([to_nchw(d) for d in run["delta_flow"]])
    assert np.abs(deltas - golden["delta_flow"]).max() <= 1e-4
    for i, flow_up in enumerate(run["flow_up"]):
        assert end_point_error(to_nchw(flow_up), golden["flow_up_per_iter"][i]) <= 1e-3


def test_small_final_flow():
    model = RAFT.from_checkpoint(shared_file("weights/raft/raft-small.pth"))
    assert model.variant == "small"
    golden = np.load(shared_file("fixtures/raft/golden_raft_small_128x128_iters12.npz"))
    flow_low, flow_up = model.compute_flow(
        golden["image1"][None].astype("float32"),
        golden["image2"][None].astype("float32"),
        iters=int(golden["iters"]),
    )
    assert end_point_error(to_nchw(flow_up), golden["flow_up"]) <= 1e-3
    assert np.abs(to_nchw(flow_up) - golden["flow_up"]).max() <= 1e-2
    assert end_point_error(to_nchw(flow_low), golden["flow_low"]) <= 2e-4


def test_small_bfloat16_flow_stays_close():
    """`dtype="mixed_bfloat16"`: convolutions in bfloat16, correlation and flow in float32.
    Measured on JAX and TensorFlow: EPE about 0.011 px mean, 0.09 px max (flow about 0.4 px)."""
    model = RAFT.from_checkpoint(shared_file("weights/raft/raft-small.pth"), dtype="mixed_bfloat16")
    assert model.compute_dtype == "bfloat16"
    assert model.update_block.compute_dtype == "bfloat16"
    golden = np.load(shared_file("fixtures/raft/golden_raft_small_128x128_iters12.npz"))
    flow_low, flow_up = model.compute_flow(
        golden["image1"][None].astype("float32"), golden["image2"][None].astype("float32")
    )
    for flow in (flow_low, flow_up):
        assert keras.backend.standardize_dtype(flow.dtype) == "float32"
    flow_up = to_nchw(flow_up)
    assert end_point_error(flow_up, golden["flow_up"]) <= 0.05
    assert np.sqrt(np.sum((flow_up - golden["flow_up"]) ** 2, axis=1)).max() <= 0.5
