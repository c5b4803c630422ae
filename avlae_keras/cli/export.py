"""`avlae-export` (also `python scripts/export.py`): a trained AVLAE as a TensorFlow SavedModel.

    avlae-export --workdir=runs/uva --out=exported/uva [--step=N]

Works from a run trained on either backend (KERAS_BACKEND=tensorflow or jax; TensorFlow must be
installed for the export itself). Writes the endpoints generate, sample, encode, reconstruct and
serving_default (= generate); see the README's "Serving" section. Every option is a field of
`avlae_keras.config.ExportConfig`.

Exit status: 0 done, 1 no usable checkpoint in --workdir or the export cannot run (TensorFlow
missing, --out not a new or empty folder), 2 options refused (before any work).
"""

from __future__ import annotations

from typing import Any

from absl import flags, logging

from avlae_keras.cli import read_config, run_app, run_application
from avlae_keras.cli.config_flags import define_flags
from avlae_keras.config import ExportConfig

FLAGS = flags.FLAGS


def print_report(report: dict[str, Any]) -> None:
    from avlae_keras.export import format_signatures

    print(f"wrote SavedModel {report['path']} with signatures (B: any batch size):")
    print(format_signatures(report["signatures"]))


def main(argv: list[str]) -> int:
    config = read_config(argv, ExportConfig)
    if not FLAGS["verbosity"].present:
        logging.set_verbosity(logging.WARNING)  # TensorFlow's INFO lines about saving
    return run_application("avlae_keras.export", config, print_report)


def run() -> None:
    define_flags(ExportConfig)
    run_app(main)


if __name__ == "__main__":
    run()
