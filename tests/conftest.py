import atexit
import os
import shutil
import tempfile
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("AVLAE_SHARED_DIR", REPO_ROOT.parent / "shared"))

# One user cache (trained judges, JAX's compiled programs) for the whole session and the
# processes it starts, kept out of the home folder.
if "AVLAE_CACHE_DIR" not in os.environ:
    os.environ["AVLAE_CACHE_DIR"] = tempfile.mkdtemp(prefix="avlae-test-cache-")
    atexit.register(shutil.rmtree, os.environ["AVLAE_CACHE_DIR"], ignore_errors=True)


def shared_file(relative: str) -> Path:
    """A file from ../shared, or a skip naming it when this checkout has no ../shared."""
    path = SHARED / relative
    if not path.exists():
        pytest.skip(f"needs {path} (the shared test material beside the checkout)")
    return path
