"""The batch of every step: the one indexing that training, `fit` pipelines and tests share.

Step t reads batch b = t % steps_per_epoch of data epoch t // steps_per_epoch, i.e. positions
[b*B, (b+1)*B) of that epoch's clip plan. A batch therefore depends only on (seed, t), which is
what makes a resumed run read exactly the batches an uninterrupted one would have.
"""

from __future__ import annotations

import itertools
import math
from collections import deque
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from avlae_keras.data.clip_loader import ClipLoader


def tensorflow_available() -> bool:
    import importlib.util

    try:
        return importlib.util.find_spec("tensorflow") is not None
    except (ImportError, ValueError):
        return False


class StepBatches:
    """Batches of a `ClipLoader` indexed by global step.

    Args:
        loader: the clips.
        batch_size: clips per batch.
        drop_remainder: True (training): an epoch has floor(clips / B) full batches; False: a
            last, smaller batch holds the rest.
        rows: the rows of every batch that `load` returns (multi-process training: this
            process's block of the global batch; the batches themselves do not change).
            Default: all.
    """

    def __init__(
        self,
        loader: ClipLoader,
        batch_size: int,
        *,
        drop_remainder: bool = True,
        rows: range | None = None,
    ):
        self.loader = loader
        self.batch_size = batch_size
        self.drop_remainder = drop_remainder
        if rows is not None and (
            not drop_remainder or rows.step != 1 or not 0 <= rows.start < rows.stop <= batch_size
        ):
            raise ValueError(f"rows must be a block of the {batch_size} rows of full batches")
        self.rows = rows
        rounding = math.floor if drop_remainder else math.ceil
        self.steps_per_epoch = rounding(loader.num_clips / batch_size)
        if self.steps_per_epoch == 0:
            raise ValueError(
                f"the dataset has {loader.num_clips} clips, fewer than one batch of {batch_size}; "
                "lower --batch_size or add videos"
            )

    def shard(self, rows: range) -> StepBatches:
        """The same batches, of which `load` returns only `rows` (same loader)."""
        return StepBatches(self.loader, self.batch_size, drop_remainder=True, rows=rows)

    @property
    def clip_shape(self) -> tuple[int, ...]:
        return (self.loader.spec.frames, *self.loader.spec.size, 3)

    def epoch_of(self, step: int) -> int:
        return int(step) // self.steps_per_epoch

    def positions(self, step: int) -> tuple[int, range]:
        """The data epoch and the clip positions of `step`."""
        epoch, index = divmod(int(step), self.steps_per_epoch)
        first = index * self.batch_size
        return epoch, range(first, min(first + self.batch_size, self.loader.num_clips))

    def load(self, step: int) -> tuple[np.ndarray, np.ndarray]:
        """Clips (B, T, H, W, 3) float32 in [-1, 1] and labels (B,) of `step` (its `rows`)."""
        epoch, positions = self.positions(step)
        if self.rows is not None:
            positions = positions[self.rows.start : self.rows.stop]
        return self.loader.load_batch(epoch, positions)

    def load_clips(self, step: int) -> np.ndarray:
        return self.load(step)[0]

    def tf_dataset(self, steps, *, with_labels: bool = False, num_parallel_calls: int = 2):
        """A tf.data pipeline of the batches of `steps` (a `tf.data.Dataset` of step numbers)
        loaded in parallel, in order, prefetched."""
        import tensorflow as tf

        rows = None
        if self.drop_remainder:
            rows = self.batch_size if self.rows is None else len(self.rows)

        def load_tensors(step):
            clips, labels = tf.numpy_function(self.load, [step], (tf.float32, tf.int32))
            clips.set_shape((rows, *self.clip_shape))
            labels.set_shape((rows,))
            return (clips, labels) if with_labels else clips

        batches = steps.map(load_tensors, num_parallel_calls=num_parallel_calls, deterministic=True)
        return batches.prefetch(2)

    def iterate(
        self, start: int, stop: int, *, backend: str = "auto", workers: int = 2
    ) -> Iterator[np.ndarray]:
        """The clips of steps [start, stop), loaded ahead in the background: with tf.data
        ("tf"), with threads ("threads"), or "auto" (tf.data when TensorFlow is installed)."""
        if backend == "auto":
            backend = "tf" if tensorflow_available() else "threads"
        if backend == "tf":
            import tensorflow as tf

            dataset = self.tf_dataset(
                tf.data.Dataset.range(start, stop), num_parallel_calls=workers
            )
            for clips in dataset:
                yield clips.numpy()
        elif backend == "threads":
            yield from self._iterate_threads(start, stop, workers)
        else:
            raise ValueError(f"backend must be 'auto', 'tf' or 'threads', got {backend!r}")

    def _iterate_threads(self, start: int, stop: int, workers: int) -> Iterator[np.ndarray]:
        steps = iter(range(start, stop))
        with ThreadPoolExecutor(workers) as pool:
            window = deque(
                pool.submit(self.load_clips, s) for s in itertools.islice(steps, workers + 1)
            )
            while window:
                clips = window.popleft().result()
                following = next(steps, None)
                if following is not None:
                    window.append(pool.submit(self.load_clips, following))
                yield clips
