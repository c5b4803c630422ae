"""Seconds per AVLAE training step (Algorithm 1: Steps I-III) and peak memory.

Each configuration runs in its own subprocess (so peak RSS is per configuration):

    KERAS_BACKEND=jax python benchmarks/train_step.py --resolutions=64 --batch_sizes=1,4 \
        --precisions=float32,mixed_bfloat16 --steps=3

`--raft_iters` sets RAFT's refinement iterations (run as one loop primitive unless
`--raft_unroll`), `--raft_dtype=mixed_bfloat16` runs RAFT's convolutions in bfloat16, and
`--flops` adds XLA's FLOP count per step and per RAFT call (JAX only; see `flops.py`) with the
TFLOP/s achieved and, on an H100/H200, the fraction of the device's peak.

Memory: peak RSS of the process (resource.getrusage) on CPU; the device's peak bytes in use on a
GPU. The flow estimator is RAFT with random weights unless --raft_preset is given (the speed
does not depend on the weights).
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import subprocess
import sys
import time

from absl import app, flags
from machine import describe_machine, peak_rss_mib

FLAGS = flags.FLAGS
flags.DEFINE_list("resolutions", ["64", "128"], "Frame sizes.")
flags.DEFINE_list("batch_sizes", ["1", "4", "16"], "Batch sizes.")
flags.DEFINE_list("precisions", ["float32", "mixed_bfloat16"], "Keras dtype policies.")
flags.DEFINE_integer("frames", 16, "Frames per video.")
flags.DEFINE_integer("steps", 3, "Timed training steps (after one compiling step).")
flags.DEFINE_integer("base_channels", 80, "Model width.")
flags.DEFINE_string("raft_variant", "large", "RAFT variant when no preset is given.")
flags.DEFINE_string("raft_preset", None, "RAFT preset (e.g. raft_sintel) instead of random.")
flags.DEFINE_integer("raft_iters", 12, "RAFT iterations inside the motion encoder.")
flags.DEFINE_string("raft_dtype", "float32", "RAFT's dtype policy (e.g. mixed_bfloat16).")
flags.DEFINE_bool("raft_unroll", False, "Unroll RAFT's iterations (default: one loop primitive).")
flags.DEFINE_bool(
    "flops",
    False,
    "Also count FLOPs per training step and per RAFT call with XLA's cost analysis (JAX only).",
)
flags.DEFINE_bool(
    "flops_only",
    False,
    "Only count the FLOPs of a step (no training step; XLA's count does not depend on the "
    "device, so a CPU gives the count of a GPU-sized step).",
)
flags.DEFINE_bool("jit_compile", True, "XLA-compile the training step.")
flags.DEFINE_string(
    "timing_lock",
    None,
    "A lock file held while the first (compiling) step and the timed steps run, so that several "
    "configurations can be built concurrently on one GPU and still be compiled and timed alone.",
)
flags.DEFINE_string("single", None, "Internal: run one 'resolution,batch,precision' config.")


def _device_peak_bytes() -> int | None:
    import keras

    if keras.backend.backend() == "jax":
        import jax

        device = jax.devices()[0]
        if device.platform == "cpu":
            return None
        return (device.memory_stats() or {}).get("peak_bytes_in_use")
    import tensorflow as tf

    if not tf.config.list_physical_devices("GPU"):
        return None
    return tf.config.experimental.get_memory_info("GPU:0")["peak"]


@contextlib.contextmanager
def held_alone(lock_path: str | None):
    """Holds an exclusive lock on `lock_path` (no-op when None) for the block."""
    if lock_path is None:
        yield
        return
    with open(lock_path, "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def run_single(resolution: int, batch_size: int, precision: str) -> dict:
    import keras
    import numpy as np

    from avlae_keras import AVLAE
    from flows import RAFT

    keras.config.set_dtype_policy(precision)
    construction_start = time.perf_counter()
    # Only non-default options, so that the script also runs against older versions of flows.
    options = {"dtype": FLAGS.raft_dtype} if FLAGS.raft_dtype != "float32" else {}
    options.update({"unroll": True} if FLAGS.raft_unroll else {})
    raft = (
        RAFT.from_preset(FLAGS.raft_preset, **options)
        if FLAGS.raft_preset
        else RAFT(variant=FLAGS.raft_variant, **options)
    )
    model = AVLAE(
        resolution=resolution,
        frames=FLAGS.frames,
        base_channels=FLAGS.base_channels,
        flow_estimator=raft,
        raft_iters=FLAGS.raft_iters,
        seed=0,
    )
    model.compile(jit_compile=FLAGS.jit_compile)
    construction_seconds = time.perf_counter() - construction_start
    setting = {
        "backend": keras.backend.backend(),
        "resolution": resolution,
        "frames": FLAGS.frames,
        "batch_size": batch_size,
        "precision": precision,
        "jit_compile": FLAGS.jit_compile,
        "raft_iters": FLAGS.raft_iters,
        "raft_dtype": FLAGS.raft_dtype,
        "raft_unroll": FLAGS.raft_unroll,
    }
    rng = np.random.default_rng(0)
    shape = (batch_size, FLAGS.frames, resolution, resolution, 3)
    if FLAGS.flops_only:
        model.optimizer.build()
        videos = rng.uniform(-1, 1, shape).astype("float32")
        return {**setting, **count_flops(model, raft, videos, 0.0, precision)}
    first = rng.uniform(-1, 1, shape).astype("float32")
    videos = rng.uniform(-1, 1, (batch_size * FLAGS.steps, *shape[1:])).astype("float32")
    with held_alone(FLAGS.timing_lock):
        start, cpu_start = time.perf_counter(), time.process_time()
        model.fit(first, batch_size=batch_size, epochs=1, verbose=0)
        compile_seconds = time.perf_counter() - start
        # CPU time of all the process's threads: less sensitive than wall time to other processes.
        compile_cpu_seconds = time.process_time() - cpu_start
        start, cpu_start = time.perf_counter(), time.process_time()
        history = model.fit(videos, batch_size=batch_size, epochs=1, shuffle=False, verbose=0)
        step_seconds = (time.perf_counter() - start) / FLAGS.steps
        step_cpu_seconds = (time.process_time() - cpu_start) / FLAGS.steps
    finite = all(np.isfinite(v[-1]) for v in history.history.values())
    flops = {}
    if FLAGS.flops:
        flops = count_flops(model, raft, videos[:batch_size], step_seconds, precision)
    return {
        **setting,
        "generator_parameters": model.video_generator.count_params(),
        "construction_seconds": round(construction_seconds, 2),
        "first_step_seconds_with_compile": round(compile_seconds, 2),
        "first_step_cpu_seconds": round(compile_cpu_seconds, 2),
        "seconds_per_step": round(step_seconds, 3),
        "cpu_seconds_per_step": round(step_cpu_seconds, 3),
        "peak_rss_mib": round(peak_rss_mib(), 1),
        "device_peak_mib": (lambda b: None if b is None else round(b / 2**20, 1))(
            _device_peak_bytes()
        ),
        "losses_finite": finite,
        **flops,
    }


def count_flops(model, raft, videos, step_seconds: float, precision: str) -> dict:
    """FLOPs of one training step and of one RAFT call on the step's B * (T - 1) frame pairs
    (XLA's cost analysis, JAX only, every RAFT iteration counted), and the TFLOP/s achieved."""
    import keras
    from flops import unrolled_raft, utilisation, xla_flops

    if keras.backend.backend() != "jax":
        return {"flops": "JAX only (TensorFlow has no XLA cost analysis in Python)"}
    state = model._get_jax_state(
        trainable_variables=True,
        non_trainable_variables=True,
        optimizer_variables=True,
        metrics_variables=True,
    )
    batch = (keras.ops.convert_to_tensor(videos),)
    pairs = videos.shape[0] * (videos.shape[1] - 1)
    images = (videos + 1.0) * 127.5
    first = keras.ops.convert_to_tensor(images[:, :-1].reshape(pairs, *videos.shape[2:]))
    second = keras.ops.convert_to_tensor(images[:, 1:].reshape(pairs, *videos.shape[2:]))
    with unrolled_raft(raft):  # XLA counts a loop body once: count every iteration
        step_flops = xla_flops(model.train_step, state, batch)
        raft_flops = xla_flops(
            lambda a, b: raft.compute_flow(a, b, iters=FLAGS.raft_iters)[0], first, second
        )
    peak_dtype = "bf16" if "bfloat16" in precision else "tf32"
    step = utilisation(step_flops, step_seconds, peak_dtype)
    return {
        "flops_per_step": step_flops,
        "raft_forward_flops_per_call": raft_flops,
        "raft_pairs_per_call": pairs,
        **{f"step_{k}": v for k, v in step.items()},
    }


def main(argv) -> None:
    del argv
    if FLAGS.single:
        resolution, batch_size, precision = FLAGS.single.split(",")
        print("RESULT " + json.dumps(run_single(int(resolution), int(batch_size), precision)))
        return
    print(f"# machine: {describe_machine()}; KERAS_BACKEND={os.environ.get('KERAS_BACKEND')}")
    passthrough = [a for a in sys.argv[1:] if not a.startswith("--single")]
    for resolution in FLAGS.resolutions:
        for batch_size in FLAGS.batch_sizes:
            for precision in FLAGS.precisions:
                config = f"{resolution},{batch_size},{precision}"
                completed = subprocess.run(
                    [sys.executable, __file__, *passthrough, f"--single={config}"],
                    capture_output=True,
                    text=True,
                )
                lines = [
                    line for line in completed.stdout.splitlines() if line.startswith("RESULT ")
                ]
                if completed.returncode != 0 or not lines:
                    error = completed.stderr.strip().splitlines()[-1:] or ["no output"]
                    print(json.dumps({"config": config, "error": error[0]}), flush=True)
                else:
                    print(lines[-1][len("RESULT ") :], flush=True)


if __name__ == "__main__":
    app.run(main)
