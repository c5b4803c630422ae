import errno

import keras
import numpy as np
import pytest

from avlae_keras.workdir import CheckpointManager, CheckpointWriteError


def tiny_model():
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2)])
    model.compile(optimizer="adam", loss="mse")
    return model


def test_save_keeps_newest_and_restores(tmp_path):
    manager = CheckpointManager(tmp_path / "ckpt", max_to_keep=2)
    model = tiny_model()
    x, y = np.ones((4, 3)), np.zeros((4, 2))
    for step in (1, 2, 3):
        model.train_on_batch(x, y)
        manager.save(model, step, {"data_position": step * 4})
    assert [c.step for c in manager.all()] == [2, 3]
    latest = manager.latest()
    assert latest.read_state()["data_position"] == 12
    restored = keras.saving.load_model(latest.model_path)
    for a, b in zip(model.weights, restored.weights, strict=True):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
    assert int(restored.optimizer.iterations) == 3


def test_partial_write_is_ignored_and_cleaned(tmp_path):
    directory = tmp_path / "ckpt"
    manager = CheckpointManager(directory)
    manager.save(tiny_model(), 5)
    # What a kill during a save leaves behind: a temporary folder, and a folder without state.
    (directory / ".tmp-ckpt-00000010-123").mkdir()
    (directory / "ckpt-00000011").mkdir()
    (directory / "ckpt-00000011" / "model.keras").write_bytes(b"half")
    reopened = CheckpointManager(directory)
    assert reopened.latest().step == 5
    assert not (directory / ".tmp-ckpt-00000010-123").exists()


def test_rejects_bad_keep_count(tmp_path):
    with pytest.raises(ValueError, match="max_to_keep"):
        CheckpointManager(tmp_path, max_to_keep=0)


class DiskFillsUp:
    """A model whose save writes `written` bytes, then fails as a full disk does."""

    def __init__(self, written: int, error: OSError | None = None):
        self.written = written
        self.error = error or OSError(errno.ENOSPC, "No space left on device")

    def save(self, path):
        with open(path, "wb") as f:
            f.write(b"\0" * self.written)
        raise self.error


def test_full_disk_keeps_the_last_checkpoint_and_says_what_to_do(tmp_path):
    directory = tmp_path / "ckpt"
    manager = CheckpointManager(directory)
    last_good = manager.save(tiny_model(), 5)
    previous_size = sum(f.stat().st_size for f in last_good.path.iterdir())
    with pytest.raises(CheckpointWriteError) as caught:
        manager.save(DiskFillsUp(written=1000), 6)
    error = caught.value
    message = str(error)
    assert isinstance(error, OSError) and error.errno == errno.ENOSPC
    assert isinstance(error.__cause__, OSError)
    assert [entry.name for entry in directory.iterdir()] == ["ckpt-00000005"]
    assert manager.latest() == last_good
    assert error.last_checkpoint == last_good and error.step == 6
    assert error.bytes_needed == previous_size > 1000
    assert error.bytes_free > 0
    for part in (
        f"no space left on the disk of {directory}",
        "checkpoint of step 6",
        f"({previous_size:,} bytes)",
        f"({error.bytes_free:,} bytes) are free",
        "1.0 kB (1,000 bytes) were written",
        f"the last good checkpoint is {last_good.path} (step 5)",
        "resumes from it",
        "--workdir",
    ):
        assert part in message


def test_full_disk_without_earlier_checkpoint_estimates_from_the_bytes_written(tmp_path):
    manager = CheckpointManager(tmp_path)
    # h5py reports a full disk with the text of the error only.
    full = OSError("Can't write data (file write failed: No space left on device)")
    with pytest.raises(CheckpointWriteError, match="a rerun starts from step 0") as caught:
        manager.save(DiskFillsUp(written=2048, error=full), 1)
    assert caught.value.bytes_needed == 2048 and caught.value.last_checkpoint is None
    assert list(tmp_path.iterdir()) == []


def test_other_write_errors_are_raised_unchanged_without_a_partial_folder(tmp_path):
    manager = CheckpointManager(tmp_path)
    denied = PermissionError(errno.EACCES, "Permission denied")
    with pytest.raises(PermissionError) as caught:
        manager.save(DiskFillsUp(written=10, error=denied), 1)
    assert caught.value is denied
    assert list(tmp_path.iterdir()) == []
