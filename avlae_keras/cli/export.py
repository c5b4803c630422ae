"""`avlae-export` (also `python scripts/export.py`): a trained AVLAE as a TensorFlow SavedModel.

    avlae-export --workdir=runs/uva --out=exported/uva [--step=N]

Works from a run trained on either backend (KERAS_BACKEND=tensorflow or jax; TensorFlow must be
installed for the export itself). Writes the endpoints generate, sample, encode, reconstruct and
serving_default (= generate); see the README's "Serving" section. Every option is a field of
`avlae_keras.config.ExportConfig`.
"""

from __future__ import annotations

from absl import app, flags, logging

from avlae_keras.cli import run_app
from avlae_keras.cli.config_flags import config_from_flags, define_flags
from avlae_keras.config import ConfigError, ExportConfig

FLAGS = flags.FLAGS


def main(argv: list[str]) -> int:
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {argv[1:]}")
    config = config_from_flags(ExportConfig)
    try:
        config.validate()
    except ConfigError as error:
        raise app.UsageError(str(error)) from error
    if not FLAGS["verbosity"].present:
        logging.set_verbosity(logging.WARNING)  # TensorFlow's INFO lines about saving
    from avlae_keras.export import export_command

    return export_command(config.workdir, config.out, config.step)


def run() -> None:
    define_flags(ExportConfig)
    run_app(main)


if __name__ == "__main__":
    run()
