"""Bad checkpoints fail with errors that name the file and the problem."""

import io
import pickle
import zipfile

import numpy as np
import pytest

from flows import RAFT, CheckpointError, UnsafeCheckpointError, load_torch_checkpoint
from tests.conftest import shared_file


def test_missing_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="nothere.pth"):
        RAFT.from_checkpoint(tmp_path / "nothere.pth")


@pytest.mark.parametrize("name", ["sintel", "small"])
def test_truncated_file(tmp_path, name):
    data = shared_file(f"weights/raft/raft-{name}.pth").read_bytes()
    path = tmp_path / f"truncated-{name}.pth"
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError, match=f"truncated-{name}.pth"):
        RAFT.from_checkpoint(path)


def test_random_bytes(tmp_path):
    path = tmp_path / "noise.pth"
    path.write_bytes(np.random.default_rng(0).bytes(4096))
    with pytest.raises(CheckpointError, match="noise.pth"):
        load_torch_checkpoint(path)


class _RunsCode:
    def __reduce__(self):
        return (print, ("this must never run",))


def test_file_that_would_run_code_is_refused(tmp_path, capsys):
    path = tmp_path / "evil.pth"
    buffer = io.BytesIO()
    pickle.dump({"fnet.conv1.weight": _RunsCode()}, buffer, protocol=2)
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("archive/data.pkl", buffer.getvalue())
    with pytest.raises(UnsafeCheckpointError, match=r"__builtin__\.print"):
        load_torch_checkpoint(path)
    assert "must never run" not in capsys.readouterr().out


def _save_subset(source, keys_filter, path):
    """Re-writes a real checkpoint's tensors, filtered, in PyTorch's zip format."""
    from tests.torch_format import write_torch_zip

    state = {k: v for k, v in load_torch_checkpoint(source).items() if keys_filter(k)}
    write_torch_zip(path, state)
    return path


def test_non_raft_checkpoint(tmp_path):
    from tests.torch_format import write_torch_zip

    path = tmp_path / "resnet.pth"
    write_torch_zip(path, {"conv1.weight": np.zeros((8, 3, 3, 3), np.float32)})
    with pytest.raises(CheckpointError, match="resnet.pth: not a RAFT checkpoint"):
        RAFT.from_checkpoint(path)


def test_wrong_variant(tmp_path):
    model = RAFT(variant="small")
    with pytest.raises(CheckpointError, match=r"raft-sintel.pth: holds RAFT variant 'large'"):
        model.load_checkpoint(shared_file("weights/raft/raft-sintel.pth"))


def test_missing_tensor(tmp_path):
    path = _save_subset(
        shared_file("weights/raft/raft-small.pth"),
        lambda k: "convq" not in k,
        tmp_path / "partial.pth",
    )
    with pytest.raises(CheckpointError, match=r"partial.pth: tensor .*convq.* is missing"):
        RAFT.from_checkpoint(path)


def test_round_trip_through_own_writer(tmp_path):
    """The test writer emits files the reader maps back to identical tensors."""
    source = shared_file("weights/raft/raft-small.pth")
    path = _save_subset(source, lambda k: True, tmp_path / "copy.pth")
    original, copy = load_torch_checkpoint(source), load_torch_checkpoint(path)
    assert list(original) == list(copy)
    for key in original:
        np.testing.assert_array_equal(original[key], copy[key])
