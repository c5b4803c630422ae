"""Loads the clips of a source, the one place that reads videos for the pipelines.

Every random choice (clip start, flip, crop, order) is made in NumPy by `plan_clips` from
(seed, epoch), so any pipeline built on a `ClipLoader` yields the same clips.
"""

from __future__ import annotations

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
