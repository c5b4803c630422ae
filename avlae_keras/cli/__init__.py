"""Command-line entry points (`avlae-train`, `avlae-evaluate`, `avlae-sample`, `avlae-export`,
`avlae-prepare-data`): absl flags generated from the configurations in `avlae_keras.config`.

Importing a command module defines no flags; its `run()` does, then parses `sys.argv`.
"""

from __future__ import annotations

from collections.abc import Callable

from absl import app, flags


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
