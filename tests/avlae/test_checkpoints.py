import keras
import numpy as np
import pytest

from avlae_keras.workdir import CheckpointManager


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
