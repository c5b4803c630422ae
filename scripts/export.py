"""Exports a trained AVLAE as a TensorFlow SavedModel:
`python scripts/export.py --workdir=runs/uva --out=exported/uva [--step=N]`.

Works from a run trained on either backend (KERAS_BACKEND=tensorflow or jax; TensorFlow must be
installed for the export itself). Writes the endpoints generate, sample, encode, reconstruct and
serving_default (= generate); see the README's "Serving" section.
"""

from __future__ import annotations

import sys
from pathlib import Path

from absl import app, flags, logging

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))

from avlae_keras.export import export_command  # noqa: E402

FLAGS = flags.FLAGS

flags.DEFINE_string("workdir", None, "Training work directory (scripts/train.py --workdir).")
flags.DEFINE_string("out", None, "Folder to write the SavedModel to (new or empty).")
flags.DEFINE_integer("step", None, "Checkpoint step to export (default: the newest).")


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {argv[1:]}")
    if not FLAGS.workdir or not FLAGS.out:
        raise app.UsageError("--workdir (a training work directory) and --out are required")
    if not FLAGS["verbosity"].present:
        logging.set_verbosity(logging.WARNING)  # TensorFlow's INFO lines about saving
    return export_command(FLAGS.workdir, FLAGS.out, FLAGS.step)


if __name__ == "__main__":
    app.run(main)
