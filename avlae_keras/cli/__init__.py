"""Command-line entry points (`avlae-train`, `avlae-evaluate`, `avlae-sample`, `avlae-export`,
`avlae-prepare-data`): absl flags generated from the configurations in `avlae_keras.config`.

Importing a command module defines no flags; its `run()` does, then parses `sys.argv`. Each
command's `main` reads its configuration from the flags and hands it to `run_application`: the
application's `run(config)` returns a report that the command prints, and an application error
ends the command with a one-line `error: ...` and its status from `EXIT_STATUSES`. Exit statuses
exist only here; the applications raise typed errors.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable
from typing import Any

from absl import app, flags

from avlae_keras.cli.config_flags import config_from_flags
from avlae_keras.config import ConfigError, RunConfig
from avlae_keras.errors import ExportError, NoVideoDecodedError, TrainingDivergedError
from avlae_keras.workdir import CheckpointLoadError, CheckpointWriteError, WorkDirLockedError

# The exit status of each application error (0: done; absl's own 1: a bad flag or argument).
EXIT_STATUSES: tuple[tuple[type[Exception], int], ...] = (
    (CheckpointLoadError, 1),  # no usable checkpoint in --workdir
    (ExportError, 1),
    (NoVideoDecodedError, 1),
    (ConfigError, 2),  # options refused, before any work (nothing written)
    (TrainingDivergedError, 3),
    (WorkDirLockedError, 4),  # another avlae-train writes --workdir (nothing written)
    (CheckpointWriteError, 5),  # the disk filled up; the message names the last good checkpoint
)
REFUSED = 2


def exit_status(error: BaseException, refused: tuple[type[Exception], ...] = ()) -> int | None:
    """The status a command exits with after `error`: from `EXIT_STATUSES`, else `REFUSED` for
    an instance of `refused` (errors a command reports as refused input, e.g. a dataset folder it
    cannot read), else None: an unexpected error, left to propagate with its traceback."""
    for error_type, status in EXIT_STATUSES:
        if isinstance(error, error_type):
            return status
    return REFUSED if isinstance(error, refused) else None


def read_config(argv: list[str], config_class: type[RunConfig]) -> RunConfig:
    """The configuration that a command's parsed flags describe; positional arguments are a
    usage error (absl prints the usage and exits with 1)."""
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {argv[1:]}")
    return config_from_flags(config_class)


def run_application(
    application: str,
    config: RunConfig,
    print_report: Callable[[dict[str, Any]], None],
    refused: tuple[type[Exception], ...] = (),
) -> int:
    """Validates `config`, then runs `<application>.run(config)` and prints its report with
    `print_report`: status 0. An application error (see `exit_status`) prints `error: <message>`
    on stderr and returns its status. The application module is imported only after the
    options passed, so that refused options do not wait for TensorFlow or JAX."""
    try:
        config.validate()
        report = importlib.import_module(application).run(config)
    except Exception as error:
        status = exit_status(error, refused)
        if status is None:
            raise
        print(f"error: {error}", file=sys.stderr)
        return status
    print_report(report)
    return 0


def run_app(main: Callable[[list[str]], int | None], argv: list[str] | None = None) -> None:
    """`absl.app.run(main, argv)`, except that asking for help (`--help`, `-?`, `--helpshort`,
    `--helpfull`, `--helpxml`) exits with status 0 after printing it (absl exits with 1)."""
    app.run(main, argv=argv, flags_parser=_parse_flags)


def _parse_flags(argv: list[str]) -> list[str]:
    try:
        return flags.FLAGS(argv)
    except flags.Error:
        return app.parse_flags_with_usage(argv)  # absl reports the bad flag and exits with 1
    except SystemExit as exit_:
        # While flags are parsed, only absl's help flags exit: with 1, after printing the help.
        if exit_.code == 1:
            raise SystemExit(0) from None
        raise
