import os

import keras
import numpy as np

from avlae_keras import backend
from avlae_keras.config import user_cache_dir


def test_user_cache_dir_follows_avlae_cache_dir(tmp_path, monkeypatch):
    monkeypatch.setenv("AVLAE_CACHE_DIR", str(tmp_path))
    assert user_cache_dir("compiled") == tmp_path / "compiled"
    monkeypatch.delenv("AVLAE_CACHE_DIR")
    assert str(user_cache_dir("judges")).endswith(os.path.join(".cache", "avlae_keras", "judges"))


def test_compiled_programs_are_kept_on_jax(tmp_path):
    folder = backend.enable_compilation_cache(tmp_path)
    if keras.backend.backend() != "jax":
        assert folder is None
        return
    import jax

    # The session may have chosen its folder already; a chosen folder is kept.
    assert folder == backend.enable_compilation_cache(tmp_path / "other")
    before = set(folder.iterdir())
    jax.jit(lambda x: x * 3.0 + 0.25)(np.arange(7, dtype="float32")).block_until_ready()
    assert set(folder.iterdir()) - before, "a new program was not written to the cache"
