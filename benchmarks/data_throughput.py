"""Clips/s of the data pipelines at 16x128x128: decoding videos vs reading the cache.

Uses the UCF-101 sample clip (320x240 XVID) from ../shared/data when present, else
synthetic 320x240 H.264 videos, with the paper's UCF-101 recipe (resize to 170x128,
centre crop 128x128, random start and flip). The cache is built in a temporary folder.

  python benchmarks/data_throughput.py [--batches=20] [--pipelines=py,tf]
"""

from __future__ import annotations

import os
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np
from absl import app, flags
from machine import describe_machine

from avlae_keras.data import (
    CachedVideoSource,
    ClipSpec,
    VideoFileSource,
    index_videos,
    items_from_index,
    make_pipeline,
    prepare_cache,
    tensorflow_available,
)

FLAGS = flags.FLAGS
flags.DEFINE_integer("num_videos", 32, "Videos in the benchmark dataset (copies of the sample).")
flags.DEFINE_integer("batch_size", 16, "Clips per batch.")
flags.DEFINE_integer("batches", 20, "Batches timed per measurement (after one warm-up batch).")
flags.DEFINE_list("pipelines", ["py", "tf"], "Pipelines to time: py (PyDataset), tf (tf.data).")
flags.DEFINE_string("video", None, "Video to replicate (default: the UCF-101 sample).")

UCF_SAMPLE = (
    Path(__file__).resolve().parents[1].parent
    / "shared/data/ucf101_sample/ApplyEyeMakeup/v_ApplyEyeMakeup_g01_c01.avi"
)


def _synthetic_video(path: Path, frames: int = 120) -> None:
    import av

    rng = np.random.default_rng(0)
    base = rng.integers(0, 255, (240, 320, 3), dtype=np.uint8)
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=25)
        stream.width, stream.height, stream.pix_fmt = 320, 240, "yuv420p"
        for t in range(frames):
            frame = av.VideoFrame.from_ndarray(np.roll(base, 3 * t, axis=1), format="rgb24")
            container.mux(stream.encode(frame))
        container.mux(stream.encode())


def _dataset_folder(root: Path) -> str:
    video = Path(FLAGS.video) if FLAGS.video else UCF_SAMPLE
    if not video.is_file():
        video = root / "synthetic.mp4"
        _synthetic_video(video)
    folder = root / "videos"
    folder.mkdir()
    for i in range(FLAGS.num_videos):
        os.symlink(video.resolve(), folder / f"v{i:04d}{video.suffix}")
    return f"{video} x{FLAGS.num_videos}"


def _endless_batches(data, pipeline: str):
    epoch = 0
    while True:
        if pipeline == "tf":
            yield from data
        else:
            data.set_epoch(epoch)
            yield from (data[i] for i in range(len(data)))
        epoch += 1


def _time(source, spec: ClipSpec, pipeline: str) -> float:
    # Several clips per video so that an epoch spans many batches (a tf.data epoch restarts
    # the pipeline, which a 2-batch epoch would mostly measure).
    data = make_pipeline(
        source, spec, FLAGS.batch_size, training=True, seed=0, backend=pipeline, clips_per_video=8
    )
    batches = _endless_batches(data, pipeline)
    next(batches)  # warm-up: thread pools, tf.data autotuning, page cache
    start = time.perf_counter()
    clips = sum(int(next(batches).shape[0]) for _ in range(FLAGS.batches))
    return clips / (time.perf_counter() - start)


def main(argv):
    del argv
    pipelines = [p for p in FLAGS.pipelines if p == "py" or tensorflow_available()]
    spec = ClipSpec.ucf101(frames=16, flip=True)
    print(f"machine: {describe_machine()}")
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        described = _dataset_folder(tmp)
        index = index_videos("folder", tmp / "videos")
        print(f"data: {described}")
        print(
            f"clips: {spec.frames}x{spec.size[0]}x{spec.size[1]}, resized to "
            f"{spec.resize_to[1]}x{spec.resize_to[0]} (WxH), centre crop, random start and flip, "
            f"batch {FLAGS.batch_size}"
        )

        decoded = VideoFileSource(index)
        for pipeline in pipelines:
            rate = _time(decoded, spec, pipeline)
            print(f"decode from video  [{pipeline}]: {rate:7.1f} clips/s")

        start = time.perf_counter()
        report = prepare_cache(
            tmp / "cache",
            items_from_index(index),
            frame_size=spec.stored_size,
            dataset="folder",
            source_root=index.root,
            progress=False,
        )
        print(f"prepare cache: {report.summary()} ({time.perf_counter() - start:.1f}s)")
        cached = CachedVideoSource(tmp / "cache")
        for pipeline in pipelines:
            rate = _time(cached, spec, pipeline)
            print(f"read from cache    [{pipeline}]: {rate:7.1f} clips/s")
        shutil.rmtree(tmp / "cache")


if __name__ == "__main__":
    app.run(main)
