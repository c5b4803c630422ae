"""The test helper writes files that the project's PyTorch reader (and torch.load) accept."""

import collections

import numpy as np
import pytest

from flows.pytorch_file import load_torch_checkpoint
from tests.torch_format import write_torch_legacy, write_torch_zip


@pytest.mark.parametrize("writer", [write_torch_zip, write_torch_legacy])
def test_round_trip_through_the_project_reader(tmp_path, writer):
    rng = np.random.default_rng(0)
    state = collections.OrderedDict()
    state["module.conv1.weight"] = rng.standard_normal((4, 3, 7, 7, 7)).astype(np.float32)
    state["module.bn1.running_var"] = rng.random(4).astype(np.float32)
    state["module.bn1.num_batches_tracked"] = np.array(3, dtype=np.int64)
    state["module.double"] = rng.standard_normal((2, 5)).astype(np.float64)
    for i in range(11):  # more than 10 storages: key order "0", "1", "10", ... matters
        state[f"module.many.{i}"] = np.full((i + 1,), i, np.float32)
    path = tmp_path / "checkpoint.pth"
    writer(path, {"epoch": 200, "arch": "resnext-101", "state_dict": state})
    loaded = load_torch_checkpoint(path)
    assert list(loaded) == list(state)
    for key, value in state.items():
        assert loaded[key].dtype == value.dtype and loaded[key].shape == value.shape
        np.testing.assert_array_equal(loaded[key], value)
