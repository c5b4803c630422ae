"""Errors of the applications that are defined apart from them, in a module without Keras, so
that `avlae_keras.cli` can map every application error to its exit status without importing an
application (`--help` and refused options stay fast).

The other typed errors live beside the code that raises them, in light modules too:
`config.ConfigError` (an option that cannot work; `evaluation.EvaluationSetupError` is one),
`workdir.CheckpointLoadError`, `workdir.CheckpointWriteError` and `workdir.WorkDirLockedError`.
"""

from __future__ import annotations


class TrainingDivergedError(RuntimeError):
    """A loss became NaN or infinite; the newest checkpoint is the last good state."""


class ExportError(RuntimeError):
    """The model cannot be exported (TensorFlow missing, an unusable output folder)."""


class NoVideoDecodedError(RuntimeError):
    """`avlae-prepare-data` found videos but could decode none of them."""
