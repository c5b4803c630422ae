"""Draws the paper's qualitative figures of a trained run as PNG frame strips and GIFs.

    python scripts/sample.py --workdir=runs/uva [--out=runs/uva/figures] [--step=N] [--num=8]

Writes into --out (default <workdir>/figures): samples (Fig. 2, frames 1, 10, 16), fixed_appearance
and fixed_motion (Figs. 3-4: one row per fixed zA / zM, one column per varied code) and
reconstructions of held-out real clips next to the inputs (Fig. 5). The backend comes from
KERAS_BACKEND; RAFT weights (inside the checkpoint) are not downloaded.
"""

from __future__ import annotations

import sys
from pathlib import Path

from absl import app, flags

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))

from avlae_keras.checkpoints import CheckpointLoadError  # noqa: E402
from avlae_keras.figures import write_run_figures  # noqa: E402

FLAGS = flags.FLAGS
flags.DEFINE_string("workdir", None, "Training work directory (scripts/train.py --workdir).")
flags.DEFINE_string("out", None, "Folder for the figures (default <workdir>/figures).")
flags.DEFINE_integer("step", None, "Checkpoint step (default: the newest).")
flags.DEFINE_integer("num", 8, "Random samples, varied codes per grid row, reconstructed clips.")
flags.DEFINE_integer("rows", 4, "Fixed codes (rows) of the fixed-zA / fixed-zM grids.")
flags.DEFINE_integer("seed", 0, "Seed of the latents.")
flags.DEFINE_integer("batch_size", 16, "Videos generated at once.")


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {argv[1:]}")
    if not FLAGS.workdir:
        raise app.UsageError("--workdir is required: the folder scripts/train.py wrote to")
    for flag in ("num", "rows", "batch_size"):
        if FLAGS[flag].value < 1:
            raise app.UsageError(f"--{flag} must be >= 1")
    try:
        written = write_run_figures(
            FLAGS.workdir,
            FLAGS.out,
            FLAGS.step,
            num=FLAGS.num,
            rows=FLAGS.rows,
            seed=FLAGS.seed,
            batch_size=FLAGS.batch_size,
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


if __name__ == "__main__":
    app.run(main)
