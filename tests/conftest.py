import os
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("AVLAE_SHARED_DIR", REPO_ROOT.parent / "shared"))


def shared_file(relative: str) -> Path:
    """A file from ../shared, or a skip naming it when this checkout has no ../shared."""
    path = SHARED / relative
    if not path.exists():
        pytest.skip(f"needs {path} (the shared test material beside the checkout)")
    return path
