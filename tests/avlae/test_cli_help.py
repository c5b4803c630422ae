"""Every avlae command answers `--help` with its options and exit status 0 (absl's own
`--help` exits with 1). Subprocesses, because absl parses flags once per process; each takes
about 0.1 s, since a command imports neither Keras nor a backend before its flags are parsed."""

import subprocess
import sys

import pytest

from tests.conftest import REPO_ROOT

COMMANDS = ("train", "evaluate", "sample", "export", "prepare_data")


def _run_script(name: str, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, str(REPO_ROOT / "scripts" / f"{name}.py"), *args],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.mark.parametrize("name", COMMANDS)
def test_help_exits_with_zero(name):
    result = _run_script(name, "--help")
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    assert "--workdir" in result.stdout or "--data_path" in result.stdout
    assert "Try --helpfull" in result.stdout


def test_helpfull_exits_with_zero_and_bad_flags_still_fail():
    full = _run_script("train", "--helpfull")
    assert full.returncode == 0 and "--learning_rate" in full.stdout
    bad = _run_script("train", "--steps=many", "--help")
    assert bad.returncode == 1
    assert "--steps" in bad.stderr and "many" in bad.stderr
