"""Batched clip pipelines: tf.data when TensorFlow is installed, keras PyDataset otherwise.

Every random choice (clip start, flip, crop, order) is made in NumPy by `plan_clips`
from (seed, epoch), and both pipelines load clips through the same `ClipLoader`, so
they yield identical batches for the same seed and epoch.
"""

from __future__ import annotations

import importlib.util
import itertools
import logging
import threading
from collections import OrderedDict

import numpy as np

from avlae_keras.data.clips import (
    ClipPlan,
    ClipSpec,
    clip_frame_indices,
    frames_to_clip,
    plan_clips,
)
from avlae_keras.data.decode import VideoDecodeError
from avlae_keras.data.sources import VideoSource

logger = logging.getLogger("avlae_keras.data")


class ClipLoader:
    """Loads clip `position` of `epoch` from a source; thread-safe.

    A video that fails to read is reported once (warning naming it), replaced by a clip
    of the next readable video (chosen deterministically, so both pipelines agree), and
    counted; when every clip of an epoch has been loaded, a summary is logged if any
    video was replaced.
    """

    def __init__(
        self,
        source: VideoSource,
        spec: ClipSpec,
        *,
        training: bool,
        seed: int = 0,
        clips_per_video: int = 1,
    ):
        self.source = source
        self.spec = spec
        self.training = training
        self.seed = seed
        self.clips_per_video = clips_per_video
        self._lock = threading.Lock()
        self._plans: OrderedDict[int, ClipPlan] = OrderedDict()
        self._bad: dict[int, str] = {}
        self._done: dict[int, set[int]] = {}
        self._replaced: dict[int, list[int]] = {}
        self.num_clips = len(self.plan(0))
        self._usable = np.sort(np.unique(self.plan(0).video))

    def plan(self, epoch: int) -> ClipPlan:
        """The clips of `epoch` (evaluation plans do not depend on the epoch)."""
        key = epoch if self.training else 0
        with self._lock:
            plan = self._plans.get(key)
        if plan is None:
            plan = plan_clips(
                self.source.frame_counts,
                self.spec,
                training=self.training,
                seed=self.seed,
                epoch=key,
                clips_per_video=self.clips_per_video,
                name=self.source.name,
            )
            with self._lock:
                self._plans[key] = plan
                while len(self._plans) > 3:
                    self._plans.popitem(last=False)
        return plan

    @property
    def bad_videos(self) -> dict[str, str]:
        """Videos that failed to read so far: key -> reason."""
        with self._lock:
            return {self.source.keys[i]: reason for i, reason in self._bad.items()}

    def epoch_summary(self, epoch: int) -> dict:
        """Clips loaded and clips replaced because their video failed, for `epoch`."""
        with self._lock:
            replaced = list(self._replaced.get(epoch, []))
            return {
                "epoch": epoch,
                "clips_loaded": len(self._done.get(epoch, ())),
                "clips_replaced": len(replaced),
                "bad_videos": sorted({self.source.keys[video] for video in replaced}),
            }

    def load(
        self, epoch: int, position: int, out: np.ndarray | None = None
    ) -> tuple[np.ndarray, np.int32]:
        """Float32 clip (T, H, W, 3) in [-1, 1] (written into `out` if given) and its label."""
        plan = self.plan(epoch)
        video = int(plan.video[position])
        start = int(plan.start[position])
        for attempt in itertools.count():
            if video not in self._bad:
                try:
                    clip = self._read_clip(video, start, plan, position, out)
                    break
                except (VideoDecodeError, OSError) as error:
                    self._mark_bad(video, error)
            if attempt >= len(self._usable):
                raise RuntimeError(f"no readable video left in {self.source.name}")
            video, start = self._substitute(epoch, position, video, attempt)
        planned = int(plan.video[position])
        self._finish(epoch, position, replaced_video=planned if video != planned else None)
        return clip, np.int32(self.source.labels[video])

    def _read_clip(
        self, video: int, start: int, plan: ClipPlan, position: int, out: np.ndarray | None
    ) -> np.ndarray:
        count = int(self.source.frame_counts[video])
        frames = self.source.read(video, clip_frame_indices(self.spec, start, count))
        return frames_to_clip(
            frames,
            self.spec,
            flip=bool(plan.flip[position]),
            crop_y=int(plan.crop_y[position]),
            crop_x=int(plan.crop_x[position]),
            out=out,
        )

    def _mark_bad(self, video: int, error: Exception) -> None:
        reason = str(getattr(error, "reason", error))
        with self._lock:
            first = video not in self._bad
            self._bad[video] = reason
        if first:
            logger.warning("skipping unreadable video %s: %s", self.source.keys[video], reason)

    def _substitute(self, epoch: int, position: int, video: int, attempt: int) -> tuple[int, int]:
        # The next usable video after `video`, with a start drawn from (seed, epoch, position,
        # attempt): the same replacement whichever pipeline or thread runs into the failure.
        following = int(np.searchsorted(self._usable, video, side="right")) % len(self._usable)
        replacement = int(self._usable[following])
        count = int(self.source.frame_counts[replacement])
        max_start = max(count - self.spec.span, 0)
        if self.training:
            rng = np.random.default_rng([self.seed, epoch, position, attempt])
            return replacement, int(rng.integers(0, max_start + 1))
        return replacement, max_start // 2

    def _finish(self, epoch: int, position: int, replaced_video: int | None) -> None:
        # Positions, not a counter: Keras may load a batch twice (e.g. to peek at shapes).
        with self._lock:
            done = self._done.setdefault(epoch, set())
            if position in done:
                return
            done.add(position)
            if replaced_video is not None:
                self._replaced.setdefault(epoch, []).append(replaced_video)
            complete = len(done) == self.num_clips
            if complete:
                for old in [e for e in self._done if e < epoch - 2]:
                    del self._done[old]
                    self._replaced.pop(old, None)
        if complete:
            self.log_epoch_summary(epoch)

    def log_epoch_summary(self, epoch: int) -> None:
        summary = self.epoch_summary(epoch)
        if summary["clips_replaced"]:
            logger.warning(
                "epoch %d: %d of %d clips came from a replacement video because %d video(s) "
                "could not be read: %s",
                epoch,
                summary["clips_replaced"],
                self.num_clips,
                len(summary["bad_videos"]),
                ", ".join(summary["bad_videos"]),
            )

    def load_batch(self, epoch: int, positions) -> tuple[np.ndarray, np.ndarray]:
        """Clips (B, T, H, W, 3) and labels (B,) of `positions` in `epoch`."""
        positions = [int(p) for p in positions]
        clips = np.empty((len(positions), self.spec.frames, *self.spec.size, 3), np.float32)
        labels = np.empty(len(positions), np.int32)
        for i, position in enumerate(positions):
            labels[i] = self.load(epoch, position, out=clips[i])[1]
        return clips, labels


def tensorflow_available() -> bool:
    try:
        return importlib.util.find_spec("tensorflow") is not None
    except (ImportError, ValueError):
        return False


def make_tf_dataset(
    loader: ClipLoader,
    batch_size: int,
    *,
    with_labels: bool = False,
    drop_remainder: bool = False,
    first_epoch: int = 0,
    num_parallel_calls: int | None = None,
):
    """A tf.data pipeline over `loader`: batch positions, parallel map, prefetch.

    Each iteration over the dataset is one epoch, numbered from `first_epoch`; shuffling
    is the NumPy plan's, not a tf.data shuffle buffer, so batches match `ClipPyDataset`.
    """
    import tensorflow as tf

    epochs = itertools.count(first_epoch)
    epochs_lock = threading.Lock()
    num_clips = loader.num_clips

    def next_epoch():
        with epochs_lock:
            yield next(epochs)

    def load(epochs_of_batch, batch_positions):
        return loader.load_batch(int(epochs_of_batch[0]), batch_positions)

    clip_shape = (loader.spec.frames, *loader.spec.size, 3)

    def load_tensors(epoch, position):
        clips, labels = tf.numpy_function(load, [epoch, position], (tf.float32, tf.int32))
        rows = batch_size if drop_remainder else None
        clips.set_shape((rows, *clip_shape))
        labels.set_shape((rows,))
        return (clips, labels) if with_labels else clips

    # The generator runs once per iteration (epoch); positions come from Dataset.range.
    epoch = tf.data.Dataset.from_generator(next_epoch, output_signature=tf.TensorSpec((), tf.int64))
    dataset = epoch.flat_map(lambda e: tf.data.Dataset.range(num_clips).map(lambda p: (e, p)))
    dataset = dataset.apply(tf.data.experimental.assert_cardinality(num_clips))
    # Whole batches are loaded per call: fewer Python round trips, no extra stacking copy.
    dataset = dataset.batch(batch_size, drop_remainder=drop_remainder)
    dataset = dataset.map(
        load_tensors,
        num_parallel_calls=num_parallel_calls or tf.data.AUTOTUNE,
        deterministic=True,
    )
    return dataset.prefetch(tf.data.AUTOTUNE)


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
