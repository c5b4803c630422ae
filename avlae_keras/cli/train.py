"""`avlae-train` (also `python scripts/train.py`): trains AVLAE in a work directory.

    avlae-train --flagfile=uva.flags --workdir=runs/uva

The backend comes from KERAS_BACKEND (tensorflow or jax). Flagfiles compose (later flags win);
a flagfile name that is not a path from the working directory is looked up in configs/, so
`--flagfile=uva.flags` works too. Rerunning the same command resumes from the newest checkpoint
in --workdir; the work directory's flags.txt is a flagfile of the run
(`--flagfile=<workdir>/flags.txt`). On a rerun, options that change what trains must match the
checkpoint unless --override_resumed_options (see `avlae_keras.trainer.plan_resume`). Every
option is a field of `avlae_keras.config.TrainConfig`.

Exit status: 0 done, 2 options refused (nothing written), 3 training diverged, 4 another
avlae-train is writing the work directory (nothing written), 5 a checkpoint could not be
written (the disk is full: the message names the last good checkpoint).
"""

from __future__ import annotations

import sys
from typing import Any

from absl import flags

from avlae_keras.cli import read_config, run_app, run_application
from avlae_keras.cli.config_flags import define_flags, resolve_flagfiles
from avlae_keras.config import TrainConfig

FLAGS = flags.FLAGS


def print_report(report: dict[str, Any]) -> None:
    print(
        f"done: step {report['step']}; checkpoint {report['checkpoint']}; "
        f"samples in {report['samples']} (GIFs and PNG strips of frames 1, 10, 16)"
    )


def main(argv: list[str]) -> int:
    config = read_config(argv, TrainConfig)
    # A dataset that cannot be read (avlae_keras.data raises ValueError) is refused input too.
    # The trainer writes flags.txt (the run's options) once the checks passed.
    return run_application("avlae_keras.trainer", config, print_report, refused=(ValueError,))


def run() -> None:
    define_flags(TrainConfig)
    run_app(main, argv=resolve_flagfiles(sys.argv))


if __name__ == "__main__":
    run()
