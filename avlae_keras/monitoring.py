"""Training logs: a JSON-lines file always, TensorBoard too when TensorFlow is installed."""

from __future__ import annotations

import json
import math
import os
from pathlib import Path
from typing import Any

import numpy as np


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
        temporary = self.jsonl_path.with_suffix(".jsonl.tmp")
        temporary.write_text("".join(line + "\n" for line in kept))
        os.replace(temporary, self.jsonl_path)

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
