"""`avlae-sample` (also `python scripts/sample.py`): figures of a trained run.

    avlae-sample --workdir=runs/uva [--out=figures] [--step=N]

Writes PNG grids and GIFs into --out (default <workdir>/figures): random samples, videos with
fixed appearance and varied motion codes (and the reverse), and held-out real clips beside their
reconstructions. Every option is a field of `avlae_keras.config.SampleConfig`.
"""

from __future__ import annotations

import sys

from absl import app, flags

from avlae_keras.cli import run_app
from avlae_keras.cli.config_flags import config_from_flags, define_flags
from avlae_keras.config import ConfigError, SampleConfig

FLAGS = flags.FLAGS


def main(argv: list[str]) -> int:
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {argv[1:]}")
    config = config_from_flags(SampleConfig)
    try:
        config.validate()
    except ConfigError as error:
        raise app.UsageError(str(error)) from error
    from avlae_keras.figures import write_run_figures
    from avlae_keras.workdir import CheckpointLoadError

    try:
        written = write_run_figures(
            config.workdir,
            config.out,
            config.step,
            num=config.num,
            rows=config.rows,
            seed=config.seed,
            batch_size=config.batch_size,
        )
    except CheckpointLoadError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    print(f"figures of step {written['step']}:")
    for name, paths in written.items():
        if isinstance(paths, list):
            print(f"  {name}: {', '.join(paths)}")
    if not written["reconstructions_held_out"]:
        print("  note: this dataset has no held-out split; reconstructions use training videos")
    return 0


def run() -> None:
    define_flags(SampleConfig)
    run_app(main)


if __name__ == "__main__":
    run()
