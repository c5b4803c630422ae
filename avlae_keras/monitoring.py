"""Training logs: a JSON-lines file always, TensorBoard too when TensorFlow is installed."""

from __future__ import annotations

import json
import math
import os
from pathlib import Path
from typing import Any

import numpy as np

from flows.atomic_files import atomic_write_text


def tensorboard_available() -> bool:
    try:
        import tensorboard  # noqa: F401
        import tensorflow  # noqa: F401
    except ImportError:
        return False
    return True


class MetricsLogger:
    """Appends `{"step": ..., name: value}` lines to `<logdir>/metrics.jsonl` and, when TensorFlow
    is importable (and `tensorboard` is not False), writes the same scalars and sample pictures
    as TensorBoard summaries under `<logdir>/tensorboard`."""

    def __init__(self, logdir: str | os.PathLike, tensorboard: bool | None = None):
        self.logdir = Path(logdir)
        self.logdir.mkdir(parents=True, exist_ok=True)
        self.jsonl_path = self.logdir / "metrics.jsonl"
        use_tensorboard = tensorboard_available() if tensorboard is None else tensorboard
        self._writer = None
        if use_tensorboard:
            import tensorflow as tf

            self._tf = tf
            self._writer = tf.summary.create_file_writer(str(self.logdir / "tensorboard"))

    def truncate_after(self, step: int) -> None:
        """Drops lines logged after `step`: on resume, what came after the checkpoint is redone."""
        if not self.jsonl_path.exists():
            return
        kept = [
            line
            for line in self.jsonl_path.read_text().splitlines()
            if line.strip() and _step_of(line) is not None and _step_of(line) <= step
        ]
        atomic_write_text(self.jsonl_path, "".join(line + "\n" for line in kept))

    def log_scalars(self, step: int, scalars: dict[str, Any]) -> None:
        values = {name: _to_float(value) for name, value in scalars.items()}
        with open(self.jsonl_path, "a") as f:
            f.write(json.dumps({"step": int(step), **values}) + "\n")
        if self._writer is not None:
            with self._writer.as_default(step=int(step)):
                for name, value in values.items():
                    self._tf.summary.scalar(name, value)
            self._writer.flush()

    def log_image(self, step: int, name: str, image: np.ndarray) -> None:
        """A (H, W, 3) uint8 picture (e.g. a frame strip of samples); TensorBoard only."""
        if self._writer is not None:
            with self._writer.as_default(step=int(step)):
                self._tf.summary.image(name, np.asarray(image, np.uint8)[None])
            self._writer.flush()

    def read(self) -> list[dict[str, Any]]:
        if not self.jsonl_path.exists():
            return []
        return [json.loads(line) for line in self.jsonl_path.read_text().splitlines() if line]

    def close(self) -> None:
        if self._writer is not None:
            self._writer.close()


def _to_float(value: Any) -> float | None:
    number = float(np.asarray(value))
    return number if math.isfinite(number) else None


def _step_of(line: str) -> int | None:
    try:
        return int(json.loads(line)["step"])
    except (ValueError, KeyError, TypeError):
        return None  # a line cut short by a kill


class CollapseWatch:
    """Warns when the generated/real diversity ratio (`diversity_ratio` in the logs) stays below
    `threshold` for `patience` log steps in a row: the generator is giving nearly the same video
    for every latent (mode collapse). It warns once per episode and again after a recovery."""

    def __init__(self, threshold: float = 0.2, patience: int = 5):
        self.threshold = threshold
        self.patience = patience
        self._low_in_a_row = 0

    def update(self, step: int, diversity_ratio: float) -> str | None:
        """The warning to print at this log step, or None."""
        if diversity_ratio >= self.threshold:
            self._low_in_a_row = 0
            return None
        self._low_in_a_row += 1
        if self._low_in_a_row != self.patience:
            return None
        return (
            f"warning: mode collapse at step {step}: the generated videos vary "
            f"{diversity_ratio:.2f}x as much across samples as real ones (below "
            f"{self.threshold} for {self.patience} log steps), so G is ignoring its latents. "
            "Likely remedies: --latent_injection=split, --generator_normalization=frame, "
            "--minibatch_stddev_group=4, --mapping_lr_multiplier=0.01, --r1_gamma=10, or a smaller "
            "learning rate; see the README section 'Training health'."
        )
