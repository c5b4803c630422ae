"""`avlae-evaluate` (also `python scripts/evaluate.py`): metrics of a trained run as JSON.

    avlae-evaluate --workdir=runs/uva --metrics=fvd,fid,disentanglement \
        --i3d_weights=rgb_imagenet.pt --resnext_weights=resnext-101-kinetics.pth

Metrics: fvd (I3D, --i3d_weights), fid (3D ResNeXt-101, --resnext_weights), is (I3D classes,
--i3d_weights), disentanglement (RAFT only; the factor table on sprites runs), judge (sprites runs
only: a factor classifier trained on real sprites, cached, labels generated videos; --judge_pairs).
The report goes to --out (default <workdir>/eval/metrics_step_<step>.json). Missing weights or
unusable options fail before any work, naming the flag. The backend comes from KERAS_BACKEND.
Every option is a field of `avlae_keras.config.EvalConfig`.
"""

from __future__ import annotations

import sys

from absl import app, flags

from avlae_keras.cli import run_app
from avlae_keras.cli.config_flags import config_from_flags, define_flags
from avlae_keras.config import EvalConfig

FLAGS = flags.FLAGS


def main(argv: list[str]) -> int:
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {argv[1:]}")
    if not FLAGS.workdir:
        raise app.UsageError("--workdir is required: the folder training wrote to")
    from avlae_keras.evaluation import EvaluationSetupError, evaluate, parse_metrics
    from avlae_keras.workdir import CheckpointLoadError

    try:
        config = config_from_flags(EvalConfig)
        report = evaluate(config.replace(metrics=parse_metrics(config.metrics)))
    except EvaluationSetupError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    except CheckpointLoadError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    print(f"step {report['step']} ({report['dataset']}): report written to {report['path']}")
    for name, value in report["metrics"].items():
        print(f"  {name}: {value:.4f}")
    return 0


def run() -> None:
    define_flags(EvalConfig)
    run_app(main)


if __name__ == "__main__":
    run()
