"""Batched clip pipelines for `model.fit` and user code: tf.data when TensorFlow is installed,
keras PyDataset otherwise.

Both are views of the same `StepBatches` that the training job iterates, so for the same seed
every pipeline yields the same batch at the same step: batch i of epoch e is step
e * steps_per_epoch + i.
"""

from __future__ import annotations

import itertools
import threading

from avlae_keras.data.clip_loader import ClipLoader
from avlae_keras.data.clips import ClipSpec
from avlae_keras.data.sources import VideoSource
from avlae_keras.data.step_batches import StepBatches, tensorflow_available


def make_tf_dataset(
    loader: ClipLoader,
    batch_size: int,
    *,
    with_labels: bool = False,
    drop_remainder: bool = False,
    first_epoch: int = 0,
    num_parallel_calls: int | None = None,
):
    """A tf.data pipeline over `loader`: each iteration over the dataset is one epoch, numbered
    from `first_epoch`, of `StepBatches` loaded in parallel and prefetched. Shuffling is the
    NumPy plan's, not a tf.data shuffle buffer, so batches match `ClipPyDataset`."""
    import tensorflow as tf

    batches = StepBatches(loader, batch_size, drop_remainder=drop_remainder)
    per_epoch = batches.steps_per_epoch
    epochs = itertools.count(first_epoch)
    epochs_lock = threading.Lock()

    def next_epoch():
        with epochs_lock:
            yield next(epochs)

    # The generator runs once per iteration (epoch); the steps come from Dataset.range.
    epoch = tf.data.Dataset.from_generator(next_epoch, output_signature=tf.TensorSpec((), tf.int64))
    steps = epoch.flat_map(lambda e: tf.data.Dataset.range(e * per_epoch, (e + 1) * per_epoch))
    steps = steps.apply(tf.data.experimental.assert_cardinality(per_epoch))
    return batches.tf_dataset(
        steps,
        with_labels=with_labels,
        num_parallel_calls=num_parallel_calls or tf.data.AUTOTUNE,
    )


def make_py_dataset(
    loader: ClipLoader,
    batch_size: int,
    *,
    with_labels: bool = False,
    drop_remainder: bool = False,
    first_epoch: int = 0,
    workers: int = 1,
):
    """The TensorFlow-free pipeline over `loader`: a `ClipPyDataset` (keras PyDataset)."""
    from avlae_keras.data.py_dataset import ClipPyDataset

    return ClipPyDataset(
        loader,
        batch_size,
        with_labels=with_labels,
        drop_remainder=drop_remainder,
        epoch=first_epoch,
        workers=workers,
    )


def make_pipeline(
    source: VideoSource,
    spec: ClipSpec,
    batch_size: int,
    *,
    training: bool,
    seed: int = 0,
    clips_per_video: int = 1,
    with_labels: bool = False,
    drop_remainder: bool = False,
    backend: str = "auto",
    workers: int = 1,
):
    """Batches of clips (B, T, H, W, 3) float32 in [-1, 1], or (clips, labels).

    `backend`: "tf" (tf.data), "py" (keras PyDataset, no TensorFlow), or "auto": tf.data
    when TensorFlow is installed. Training plans draw new clips every epoch from `seed`.
    """
    if backend not in ("auto", "tf", "py"):
        raise ValueError(f"backend must be 'auto', 'tf' or 'py', got {backend!r}")
    loader = ClipLoader(source, spec, training=training, seed=seed, clips_per_video=clips_per_video)
    if backend == "auto":
        backend = "tf" if tensorflow_available() else "py"
    if backend == "tf":
        return make_tf_dataset(
            loader, batch_size, with_labels=with_labels, drop_remainder=drop_remainder
        )
    return make_py_dataset(
        loader,
        batch_size,
        with_labels=with_labels,
        drop_remainder=drop_remainder,
        workers=workers,
    )
