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

from absl import app, flags

from avlae_keras.cli import run_app
from avlae_keras.cli.config_flags import config_from_flags, define_flags, resolve_flagfiles
from avlae_keras.config import ConfigError, TrainConfig

FLAGS = flags.FLAGS


def main(argv: list[str]) -> int:
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {argv[1:]}")
    if not FLAGS.workdir:
        raise app.UsageError("--workdir is required: the folder for checkpoints, logs, samples")
    config = config_from_flags(TrainConfig)
    # Imported here so that `--help` does not wait for TensorFlow / JAX.
    from avlae_keras.trainer import TrainingDivergedError, train
    from avlae_keras.workdir import CheckpointWriteError, WorkDirLockedError

    # The trainer writes flags.txt (the run's options) once the checks passed.
    try:
        summary = train(config)
    except (ConfigError, ValueError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    except TrainingDivergedError as error:
        print(f"error: {error}", file=sys.stderr)
        return 3
    except WorkDirLockedError as error:
        print(f"error: {error}", file=sys.stderr)
        return 4
    except CheckpointWriteError as error:
        print(f"error: {error}", file=sys.stderr)
        return 5
    print(
        f"done: step {summary['step']}; checkpoint {summary['checkpoint']}; "
        f"samples in {summary['samples']} (GIFs and PNG strips of frames 1, 10, 16)"
    )
    return 0


def run() -> None:
    define_flags(TrainConfig)
    run_app(main, argv=resolve_flagfiles(sys.argv))


if __name__ == "__main__":
    run()
