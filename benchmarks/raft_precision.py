"""RAFT in bfloat16 (`RAFT(dtype="mixed_bfloat16")`) against float32: accuracy and speed.

    FLOWS_WEIGHTS_DIR=/path/to/weights KERAS_BACKEND=jax python benchmarks/raft_precision.py \
        --golden_dir=/path/to/fixtures/raft

Accuracy: the golden frame pairs of the reference tests (128x128, 12 iterations, official
weights), end-point error of the bfloat16 flow against the float32 flow (mean and max over
pixels) and of each against the PyTorch golden flow. Speed: jitted forward at `--batch` x
`--size`^2, median of `--repeats` calls after a compiling one. Prints one JSON line per preset.
"""

from __future__ import annotations

import json
import os
import statistics
import time

import numpy as np
from absl import app, flags
from machine import describe_machine

FLAGS = flags.FLAGS
flags.DEFINE_string("golden_dir", "/work/shared/fixtures/raft", "Folder of the golden .npz files.")
flags.DEFINE_list("presets", ["sintel", "small"], "Checkpoints raft-<name>.pth to compare.")
flags.DEFINE_string("weights_dir", os.environ.get("FLOWS_WEIGHTS_DIR", ""), "Checkpoints folder.")
flags.DEFINE_list("dtypes", ["float32", "mixed_bfloat16"], "RAFT dtype policies.")
flags.DEFINE_integer("batch", 2, "Pairs per timed call.")
flags.DEFINE_integer("size", 128, "Side of the timed images.")
flags.DEFINE_integer("repeats", 3, "Timed calls after the compiling one.")


def end_point_errors(a, b) -> dict:
    error = np.sqrt(np.sum((np.asarray(a, np.float64) - np.asarray(b, np.float64)) ** 2, -1))
    return {"mean": float(error.mean()), "max": float(error.max())}


def timed_forward(model, batch: int, size: int, repeats: int) -> dict:
    from flows import jit

    rng = np.random.default_rng(0)
    image1 = rng.uniform(0, 255, (batch, size, size, 3)).astype("float32")
    image2 = np.roll(image1, 3, axis=2)
    fn = jit(lambda a, b: model.compute_flow(a, b)[1])
    start = time.perf_counter()
    np.asarray(fn(image1, image2))
    first = time.perf_counter() - start
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        np.asarray(fn(image1, image2))
        times.append(time.perf_counter() - start)
    return {"first_call_s": first, "median_s": statistics.median(times)}


def main(argv) -> None:
    del argv
    import keras

    from flows import RAFT

    for preset in FLAGS.presets:
        name = f"golden_raft_{preset}_128x128_iters12.npz"
        golden = np.load(os.path.join(FLAGS.golden_dir, name))
        image1 = golden["image1"][None].astype("float32")
        image2 = golden["image2"][None].astype("float32")
        reference = np.transpose(golden["flow_up"], (0, 2, 3, 1))
        flows, row = {}, {"preset": preset, "backend": keras.backend.backend()}
        for dtype in FLAGS.dtypes:
            path = os.path.join(FLAGS.weights_dir, f"raft-{preset}.pth")
            model = RAFT.from_checkpoint(path, dtype=dtype)
            flows[dtype] = np.asarray(model.compute_flow(image1, image2, iters=12)[1])
            row[f"epe_vs_torch_{dtype}"] = end_point_errors(flows[dtype], reference)
            row[f"speed_{dtype}"] = timed_forward(model, FLAGS.batch, FLAGS.size, FLAGS.repeats)
        base = FLAGS.dtypes[0]
        for dtype in FLAGS.dtypes[1:]:
            row[f"epe_{dtype}_vs_{base}"] = end_point_errors(flows[dtype], flows[base])
        row["flow_magnitude_mean"] = float(np.sqrt((flows[base] ** 2).sum(-1)).mean())
        row.update(machine=describe_machine(), batch=FLAGS.batch, size=FLAGS.size)
        print(json.dumps(row), flush=True)


if __name__ == "__main__":
    app.run(main)
