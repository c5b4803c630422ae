"""The commands' one mapping of application errors to exit statuses (`avlae_keras.cli`): a
one-line `error: ...` on stderr and the documented status; anything else keeps its traceback."""

import sys
import types
from pathlib import Path

import pytest

from avlae_keras.cli import run_application
from avlae_keras.config import ConfigError, ExportConfig
from avlae_keras.errors import ExportError, NoVideoDecodedError, TrainingDivergedError
from avlae_keras.evaluation import EvaluationSetupError
from avlae_keras.workdir import CheckpointLoadError, CheckpointWriteError, WorkDirLockedError

DISK_FULL = CheckpointWriteError(
    "no space left",
    directory=Path("w"),
    step=3,
    bytes_needed=2,
    bytes_free=1,
    last_checkpoint=None,
)
STATUSES = [
    (CheckpointLoadError("no complete checkpoint in w"), 1),
    (ExportError("needs TensorFlow"), 1),
    (NoVideoDecodedError("no video of d could be decoded"), 1),
    (ConfigError("--steps: must be >= 1"), 2),
    (EvaluationSetupError("--i3d_weights: missing"), 2),
    (TrainingDivergedError("non-finite loss"), 3),
    (WorkDirLockedError("w is being written"), 4),
    (DISK_FULL, 5),
]


def _application(monkeypatch, error: BaseException) -> str:
    module = types.ModuleType("failing_application")

    def run(config):
        raise error

    module.run = run
    monkeypatch.setitem(sys.modules, module.__name__, module)
    return module.__name__


@pytest.mark.parametrize("error,status", STATUSES, ids=lambda v: type(v).__name__)
def test_each_application_error_has_its_status_and_one_line(error, status, monkeypatch, capsys):
    name = _application(monkeypatch, error)
    config = ExportConfig(workdir="w", out="o")
    assert run_application(name, config, print_report=pytest.fail) == status
    assert capsys.readouterr().err == f"error: {error}\n"


def test_refused_options_stop_before_the_application_and_bugs_keep_their_traceback(
    monkeypatch, capsys
):
    name = _application(monkeypatch, ValueError("a bug"))
    assert run_application(name, ExportConfig(workdir="w"), print_report=pytest.fail) == 2
    assert capsys.readouterr().err.startswith("error: --out: is required")
    with pytest.raises(ValueError, match="a bug"):
        run_application(name, ExportConfig(workdir="w", out="o"), print_report=pytest.fail)
    # ... unless the command declares such errors refused input (a dataset it cannot read).
    config = ExportConfig(workdir="w", out="o")
    assert run_application(name, config, pytest.fail, refused=(ValueError,)) == 2


def test_a_report_is_printed_and_the_status_is_zero(monkeypatch):
    module = types.ModuleType("working_application")
    module.run = lambda config: {"step": 7, "workdir": config.workdir}
    monkeypatch.setitem(sys.modules, module.__name__, module)
    printed = []
    assert run_application(module.__name__, ExportConfig(workdir="w", out="o"), printed.append) == 0
    assert printed == [{"step": 7, "workdir": "w"}]
