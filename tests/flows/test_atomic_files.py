import pytest

from flows.atomic_files import (
    atomic_path,
    atomic_write_text,
    remove_temporaries,
    temporary_name,
)


def test_file_is_replaced_whole_or_not_at_all(tmp_path):
    target = tmp_path / "sub" / "stats.npz"
    atomic_write_text(target, "old")
    with pytest.raises(RuntimeError), atomic_path(target) as temporary:
        assert temporary.name.endswith("stats.npz")  # writers that read the suffix still work
        temporary.write_text("half")
        raise RuntimeError("killed midway")
    assert target.read_text() == "old"
    assert [p.name for p in target.parent.iterdir()] == ["stats.npz"]
    atomic_write_text(target, "new")
    assert target.read_text() == "new"


def test_folder_replaces_a_folder_and_leftovers_are_removed(tmp_path):
    target = tmp_path / "export"
    target.mkdir()
    (target / "old.txt").write_text("old")
    with atomic_path(target, durable=True) as temporary:
        temporary.mkdir()
        (temporary / "saved_model.pb").write_text("new")
    assert [p.name for p in target.iterdir()] == ["saved_model.pb"]
    temporary_name(tmp_path / "ckpt-00000010").mkdir()
    remove_temporaries(tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["export"]


def test_nothing_written_is_an_error(tmp_path):
    with pytest.raises(FileNotFoundError, match="nothing was written"), atomic_path(tmp_path / "x"):
        pass
