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

from avlae_keras.checkpoints import CheckpointLoadError  # noqa: E402

FLAGS = flags.FLAGS

flags.DEFINE_string("workdir", None, "Training work directory (scripts/train.py --workdir).")
flags.DEFINE_string("out", None, "Folder to write the SavedModel to (new or empty).")
flags.DEFINE_integer("step", None, "Checkpoint step to export (default: the newest).")


def format_signatures(signatures: dict[str, dict]) -> str:
    """One line per signature: name(inputs) -> outputs, with shapes and dtypes."""

    def tensors(specs: dict) -> str:
        return ", ".join(
            f"{name}: {dtype}[{', '.join('B' if d is None else str(d) for d in shape)}]"
            for name, (shape, dtype) in specs.items()
        )

    return "\n".join(
        f"  {name}({tensors(spec['inputs'])}) -> {tensors(spec['outputs'])}"
        for name, spec in signatures.items()
    )


def export(workdir: str, out: str, step: int | None = None) -> int:
    """Exports and prints the endpoints; returns the exit status (1 with a one-line error on
    stderr when the checkpoint is missing or does not match, or the export cannot run)."""
    from avlae_keras.export import ExportError, export_from_workdir

    try:
        signatures = export_from_workdir(workdir, out, step)
    except (CheckpointLoadError, ExportError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    print(f"wrote SavedModel {out} with signatures (B: any batch size):")
    print(format_signatures(signatures))
    return 0


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {argv[1:]}")
    if not FLAGS.workdir or not FLAGS.out:
        raise app.UsageError("--workdir (a training work directory) and --out are required")
    if not FLAGS["verbosity"].present:
        logging.set_verbosity(logging.WARNING)  # TensorFlow's INFO lines about saving
    return export(FLAGS.workdir, FLAGS.out, FLAGS.step)


if __name__ == "__main__":
    app.run(main)
