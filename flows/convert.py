"""Converts an official PyTorch RAFT checkpoint into Keras files.

    python -m flows.convert raft-sintel.pth raft_sintel/        # preset folder
    python -m flows.convert raft-sintel.pth raft_sintel.keras   # whole model
    python -m flows.convert raft-small.pth raft_small.weights.h5

A preset folder holds `config.json`, `model.weights.h5` and `metadata.json` (source file, md5,
variant, parameter count) and loads with `RAFT.from_preset(folder)`.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

from flows.raft import RAFT
from flows.raft.raft_presets import md5sum


def convert(checkpoint: str | os.PathLike, output: str | os.PathLike) -> Path:
    """Writes `checkpoint` as a preset folder, a `.keras` file or a `.weights.h5` file."""
    model = RAFT.from_checkpoint(checkpoint)
    output = Path(output)
    if output.name.endswith(".keras"):
        model.save(output)
    elif output.name.endswith(".weights.h5"):
        model.save_weights(output)
    else:
        output.mkdir(parents=True, exist_ok=True)
        with open(output / "config.json", "w") as f:
            json.dump(model.get_config(), f, indent=2)
        model.save_weights(output / "model.weights.h5")
        metadata = {
            "source": os.path.basename(os.fspath(checkpoint)),
            "source_md5": md5sum(checkpoint),
            "variant": model.variant,
            "parameter_count": model.parameter_count(),
        }
        with open(output / "metadata.json", "w") as f:
            json.dump(metadata, f, indent=2)
    return output


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m flows.convert", description=__doc__.split("\n")[0]
    )
    parser.add_argument("checkpoint", help="official RAFT .pth file (zip or legacy format)")
    parser.add_argument("output", help="a folder, a .keras file or a .weights.h5 file")
    args = parser.parse_args(argv)
    try:
        written = convert(args.checkpoint, args.output)
    except (OSError, ValueError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    print(f"wrote {written}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
