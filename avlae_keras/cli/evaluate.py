"""`avlae-evaluate` (also `python scripts/evaluate.py`): metrics of a trained run as JSON.

    avlae-evaluate --workdir=runs/uva --metrics=fvd,fid,disentanglement \
        --i3d_weights=rgb_imagenet.pt --resnext_weights=resnext-101-kinetics.pth

Metrics: fvd (I3D, --i3d_weights), fid (3D ResNeXt-101, --resnext_weights), is (I3D classes,
--i3d_weights), disentanglement (RAFT only; the factor table on sprites runs), judge (sprites runs
only: a factor classifier trained on real sprites, cached, labels generated videos; --judge_pairs).
The report goes to --out (default <workdir>/eval/metrics_step_<step>.json). Missing weights or
unusable options fail before any work, naming the flag. The backend comes from KERAS_BACKEND.
Every option is a field of `avlae_keras.config.EvalConfig`.

Exit status: 0 done, 1 no usable checkpoint in --workdir, 2 options refused (before any work).
"""

from __future__ import annotations

from typing import Any

from absl import flags

from avlae_keras.cli import read_config, run_app, run_application
from avlae_keras.cli.config_flags import define_flags
from avlae_keras.config import EvalConfig, metric_names

FLAGS = flags.FLAGS


def print_report(report: dict[str, Any]) -> None:
    print(f"step {report['step']} ({report['dataset']}): report written to {report['path']}")
    for name, value in report["metrics"].items():
        print(f"  {name}: {value:.4f}")


def main(argv: list[str]) -> int:
    config = read_config(argv, EvalConfig)
    config = config.replace(metrics=metric_names(config.metrics))
    return run_application("avlae_keras.evaluation", config, print_report)


def run() -> None:
    define_flags(EvalConfig)
    run_app(main)


if __name__ == "__main__":
    run()
