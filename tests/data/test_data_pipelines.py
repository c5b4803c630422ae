from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
from data_test_utils import UCF_SAMPLE, random_bytes_file, truncate_copy

from avlae_keras.data import (
    ArrayVideoSource,
    ClipLoader,
    ClipSpec,
    StepBatches,
    index_videos,
    items_from_index,
    make_pipeline,
    make_source,
    prepare_cache,
    tensorflow_available,
)

REPO = Path(__file__).resolve().parents[2]
needs_tf = pytest.mark.skipif(not tensorflow_available(), reason="TensorFlow is not installed")
SPEC = ClipSpec(frames=4, stride=2, size=(16, 16), resize_to=(16, 20), flip=True, random_crop=True)


def py_epochs(source, epochs=2, batch_size=3, seed=7, **options):
    data = make_pipeline(
        source, SPEC, batch_size, training=True, seed=seed, backend="py", **options
    )
    out = []
    for _ in range(epochs):
        out.append([data[i] for i in range(len(data))])
        data.on_epoch_end()
    return out


def tf_epochs(source, epochs=2, batch_size=3, seed=7, **options):
    data = make_pipeline(
        source, SPEC, batch_size, training=True, seed=seed, backend="tf", **options
    )
    return [[_numpy(batch) for batch in data] for _ in range(epochs)]


def _numpy(batch):
    return tuple(b.numpy() for b in batch) if isinstance(batch, tuple) else batch.numpy()


def assert_same_epochs(a, b):
    assert len(a) == len(b)
    for epoch_a, epoch_b in zip(a, b, strict=True):
        assert len(epoch_a) == len(epoch_b)
        for x, y in zip(epoch_a, epoch_b, strict=True):
            for xa, ya in zip(
                x if isinstance(x, tuple) else (x,),
                y if isinstance(y, tuple) else (y,),
                strict=True,
            ):
                np.testing.assert_array_equal(xa, ya)


@pytest.fixture
def sprites():
    return make_source("sprites", num_videos=10, frames=12, size=(16, 20), seed=1)


def test_py_pipeline_shapes_epochs_and_labels(sprites):
    labelled = ArrayVideoSource(sprites.videos, labels=np.arange(10) % 3)
    epochs = py_epochs(labelled, with_labels=True)
    clips, labels = epochs[0][0]
    assert clips.shape == (3, 4, 16, 16, 3) and clips.dtype == np.float32
    assert -1 <= clips.min() and clips.max() <= 1 and labels.dtype == np.int32
    assert [len(c) for c, _ in epochs[0]] == [3, 3, 3, 1]
    assert sorted(np.concatenate([labels for _, labels in epochs[0]]).tolist()) == sorted(
        (np.arange(10) % 3).tolist()
    )
    assert not np.array_equal(epochs[0][0][0], epochs[1][0][0])  # new clips each epoch
    assert_same_epochs(epochs, py_epochs(labelled, with_labels=True))  # same seed, same data
    assert not np.array_equal(py_epochs(labelled, seed=8)[0][0], epochs[0][0][0])


def test_evaluation_pipeline_is_fixed(sprites):
    data = make_pipeline(sprites, SPEC, 4, training=False, backend="py", drop_remainder=True)
    assert len(data) == 2
    first = data[0]
    data.on_epoch_end()
    np.testing.assert_array_equal(first, data[0])


@needs_tf
def test_tf_and_py_pipelines_yield_identical_batches(sprites, video_folder, tmp_path):
    assert_same_epochs(tf_epochs(sprites), py_epochs(sprites))
    random_bytes_file(video_folder / "noise.webm")
    decoded = make_source("folder", video_folder)
    assert_same_epochs(
        tf_epochs(decoded, batch_size=2, with_labels=True),
        py_epochs(decoded, batch_size=2, with_labels=True),
    )
    index = index_videos("folder", video_folder)
    prepare_cache(
        tmp_path / "cache",
        items_from_index(index),
        frame_size=SPEC.stored_size,
        dataset="folder",
        source_root=index.root,
        progress=False,
    )
    cached = make_source("cache", tmp_path / "cache")
    assert_same_epochs(
        tf_epochs(cached, drop_remainder=True), py_epochs(cached, drop_remainder=True)
    )


def test_training_steps_are_the_fit_pipelines_batches(sprites):
    """The training job's step batches are the `fit` pipelines' batches, epoch after epoch, and
    its tf.data and thread loaders agree (batch t depends only on (seed, t))."""
    batches = StepBatches(ClipLoader(sprites, SPEC, training=True, seed=7), 3)
    assert batches.steps_per_epoch == 3  # 10 clips: full batches only
    backends = ["threads", *(["tf"] if tensorflow_available() else [])]
    streams = {b: list(batches.iterate(0, 7, backend=b, workers=2)) for b in backends}
    resumed = list(batches.iterate(4, 7, backend="threads"))
    py = py_epochs(sprites, epochs=3, drop_remainder=True)
    expected = [batch for epoch in py for batch in epoch][:7]
    for stream in streams.values():
        assert_same_epochs([stream], [expected])
    assert_same_epochs([resumed], [expected[4:]])


def test_bad_files_are_skipped_and_reported(video_folder, data_warnings):
    truncate_copy(video_folder / "four.mp4", video_folder / "cut.mp4", 0.3)
    random_bytes_file(video_folder / "noise.avi")
    source = make_source("folder", video_folder)  # probing skips both with a warning each
    messages = data_warnings()
    assert sum("cut.mp4" in m for m in messages) >= 1 and any("noise.avi" in m for m in messages)
    assert any("2 of 6 videos" in m for m in messages)
    assert source.frame_counts.astype(bool).sum() == 4

    # A file that breaks after the dataset was opened: its clips come from another video.
    random_bytes_file(video_folder / "a" / "two.mp4")
    loader = ClipLoader(source, SPEC, training=True, seed=0)
    data = make_pipeline(source, SPEC, 2, training=True, seed=0, backend="py")
    data.loader = loader
    for epoch in range(2):
        data.set_epoch(epoch)
        batches = [data[i] for i in range(len(data))]
        assert sum(len(b) for b in batches) == 4
        assert loader.epoch_summary(epoch)["clips_replaced"] == 1
    messages = data_warnings()
    assert sum("skipping unreadable video a/two.mp4" in m for m in messages) == 1  # once
    summaries = [m for m in messages if m.startswith("epoch ")]
    assert len(summaries) == 2 and all("a/two.mp4" in m for m in summaries)
    assert loader.bad_videos.keys() == {"a/two.mp4"}


def test_missing_paths_and_unusable_datasets_fail_at_once(tmp_path, video_folder):
    with pytest.raises(FileNotFoundError, match=str(tmp_path / "absent")):
        make_source("folder", tmp_path / "absent")
    with pytest.raises(FileNotFoundError, match="prepare_data.py"):
        make_source("cache", tmp_path / "absent")
    junk = tmp_path / "junk"
    junk.mkdir()
    random_bytes_file(junk / "x.mp4")
    with pytest.raises(ValueError, match=f"no readable video under {junk}"):
        make_source("folder", junk)
    short = ClipSpec(frames=30, size=8, short_videos="skip")
    with pytest.raises(ValueError, match=f"no usable clip in {video_folder}"):
        make_pipeline(make_source("folder", video_folder), short, 2, training=True, backend="py")
    looped = make_pipeline(
        make_source("folder", video_folder),
        ClipSpec(frames=30, size=8),
        2,
        training=True,
        backend="py",
    )
    assert looped[0].shape == (2, 30, 8, 8, 3)


def test_ucf101_sample_recipe(tmp_path):
    if not UCF_SAMPLE.exists():
        pytest.skip(f"shared test data {UCF_SAMPLE} is not available")
    folder = tmp_path / "ucf" / "ApplyEyeMakeup"
    folder.mkdir(parents=True)
    (folder / UCF_SAMPLE.name).symlink_to(UCF_SAMPLE)
    source = make_source("ucf101", tmp_path / "ucf")
    assert source.frame_counts.tolist() == [164] and source.class_names == ("ApplyEyeMakeup",)
    data = make_pipeline(source, ClipSpec.ucf101(frames=16), 1, training=False, backend="py")
    clip = data[0]
    assert clip.shape == (1, 16, 128, 128, 3)


CHILD = """
import importlib.abc, os, sys

class BlockTensorFlow(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name == "tensorflow" or name.startswith("tensorflow."):
            raise ImportError(f"{name} is blocked for this test")
        return None

sys.meta_path.insert(0, BlockTensorFlow())
import numpy as np
import keras
from avlae_keras.data import ClipSpec, make_pipeline, make_source, tensorflow_available

assert keras.backend.backend() == "jax", keras.backend.backend()
assert not tensorflow_available()
spec = ClipSpec(frames=4, stride=2, size=(16, 16), resize_to=(16, 20), flip=True, random_crop=True)
arrays = {}
sources = {
    "sprites": make_source("sprites", num_videos=10, frames=12, size=(16, 20), seed=1),
    "videos": make_source("folder", sys.argv[1]),
}
for name, source in sources.items():
    data = make_pipeline(source, spec, 3, training=True, seed=7)  # backend="auto"
    assert type(data).__name__ == "ClipPyDataset", type(data)
    for epoch in range(2):
        for i in range(len(data)):
            arrays[f"{name}_{epoch}_{i}"] = data[i]
        data.on_epoch_end()

# model.fit drives the epochs through the PyDataset hooks.
labelled = make_pipeline(sources["sprites"], spec, 5, training=True, with_labels=True)
layers = [keras.Input((4, 16, 16, 3)), keras.layers.Flatten(), keras.layers.Dense(3)]
model = keras.Sequential(layers)
model.compile("sgd", keras.losses.SparseCategoricalCrossentropy(from_logits=True))
model.fit(labelled, epochs=2, shuffle=False, verbose=0)
assert labelled.epoch >= 2, labelled.epoch  # Keras may also peek at a batch first
assert "tensorflow" not in sys.modules
np.savez(sys.argv[2], **arrays)
"""


def test_tensorflow_free_pipeline_matches(tmp_path, video_folder, sprites):
    result = tmp_path / "batches.npz"
    env = {**os.environ, "KERAS_BACKEND": "jax", "PYTHONPATH": str(REPO)}
    child = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(CHILD), str(video_folder), str(result)],
        capture_output=True,
        text=True,
        timeout=180,
        env=env,
        cwd=tmp_path,
    )
    assert child.returncode == 0, child.stderr[-3000:]
    saved = np.load(result)
    run = tf_epochs if tensorflow_available() else py_epochs
    expected = {"sprites": run(sprites), "videos": run(make_source("folder", video_folder))}
    for name, epochs in expected.items():
        for epoch, batches in enumerate(epochs):
            for i, batch in enumerate(batches):
                np.testing.assert_array_equal(saved[f"{name}_{epoch}_{i}"], batch)


def test_data_modules_import_neither_tensorflow_nor_keras():
    # The parent package may import model code; load avlae_keras.data on its own.
    code = textwrap.dedent(
        f"""
        import sys, types
        package = types.ModuleType("avlae_keras")
        package.__path__ = [{str(REPO / "avlae_keras")!r}]
        sys.modules["avlae_keras"] = package
        import avlae_keras.data
        assert "tensorflow" not in sys.modules and "keras" not in sys.modules, "imported"
        """
    )
    env = {**os.environ, "KERAS_BACKEND": "tensorflow"}
    child = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env)
    assert child.returncode == 0, child.stderr[-2000:]
