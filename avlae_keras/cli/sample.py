"""`avlae-sample` (also `python scripts/sample.py`): figures of a trained run.

    avlae-sample --workdir=runs/uva [--out=figures] [--step=N]

Writes PNG grids and GIFs into --out (default <workdir>/figures): random samples, videos with
fixed appearance and varied motion codes (and the reverse), and held-out real clips beside their
reconstructions. Every option is a field of `avlae_keras.config.SampleConfig`.

Exit status: 0 done, 1 no usable checkpoint in --workdir, 2 options refused (before any work).
"""

from __future__ import annotations

from typing import Any

from absl import flags

from avlae_keras.cli import read_config, run_app, run_application
from avlae_keras.cli.config_flags import define_flags
from avlae_keras.config import SampleConfig

FLAGS = flags.FLAGS


def print_report(report: dict[str, Any]) -> None:
    print(f"figures of step {report['step']}:")
    for name, paths in report["figures"].items():
        print(f"  {name}: {', '.join(paths)}")
    if not report["reconstructions_held_out"]:
        print("  note: this dataset has no held-out split; reconstructions use training videos")


def main(argv: list[str]) -> int:
    config = read_config(argv, SampleConfig)
    return run_application("avlae_keras.figures", config, print_report)


def run() -> None:
    define_flags(SampleConfig)
    run_app(main)


if __name__ == "__main__":
    run()
