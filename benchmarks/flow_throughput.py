"""RAFT throughput: image pairs per second, forward and forward+backward, and peak memory.

    python benchmarks/flow_throughput.py                       # jax and tensorflow, 128 and 256
    python benchmarks/flow_throughput.py --reference_raft_dir=/path/to/RAFT/core \
        --reference_python=/path/to/python-with-torch                            # + PyTorch

`--dtype=mixed_bfloat16` runs RAFT's convolutions in bfloat16, `--unroll` unrolls its iterations
(the default is one loop primitive), `--flops` adds XLA's FLOP count per call (JAX only; see
`flops.py`), the achieved TFLOP/s and, on an H100/H200, the fraction of the device's peak.

Each (backend, size, mode) runs in a fresh process so its peak memory is its own: resident set
size on CPU, the device's peak allocation on a GPU. Batch 8, 12 iterations, large RAFT, XLA on;
forward+backward differentiates sum(flow_up^2) with respect to both images. The PyTorch reference
is the original implementation (`--reference_raft_dir` points at its `core/` folder), run eagerly
as its authors do. Results are printed as a table and appended as JSON lines to `--out`, each with
the machine it ran on.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import time

from absl import app, flags
from machine import describe_machine, peak_rss_mib

FLAGS = flags.FLAGS
flags.DEFINE_list("backends", ["jax", "tensorflow"], "Keras backends (and/or 'torch').")
flags.DEFINE_list("sizes", ["128", "256"], "Square image sides.")
flags.DEFINE_list("modes", ["forward", "forward_backward"], "What to time.")
flags.DEFINE_integer("batch", 8, "Image pairs per batch.")
flags.DEFINE_integer("iters", 12, "RAFT iterations.")
flags.DEFINE_integer("repeats", 5, "Timed repetitions after the compiling/warm-up one.")
flags.DEFINE_string("reference_raft_dir", None, "The original RAFT's core/ folder; adds 'torch'.")
flags.DEFINE_string("reference_python", sys.executable, "Python with torch, numpy and absl-py.")
flags.DEFINE_string("out", "benchmarks/results/flow_throughput.jsonl", "JSON-lines output.")
flags.DEFINE_string("dtype", "float32", "RAFT dtype policy (e.g. mixed_bfloat16).")
flags.DEFINE_bool("unroll", False, "Unroll RAFT's iterations instead of one loop primitive.")
flags.DEFINE_bool(
    "flops",
    False,
    "Also count FLOPs per call with XLA's cost analysis (JAX only) and report TFLOP/s.",
)
flags.DEFINE_string("worker", None, "Internal: 'backend,size,mode' to run in this process.")


def time_calls(fn, repeats: int) -> tuple[float, float, float, float]:
    """(first call seconds incl. compilation, its CPU seconds over all threads, median seconds of
    the next `repeats` calls, their mean CPU seconds). CPU seconds are less sensitive than wall
    time to other processes sharing the machine."""
    start, cpu_start = time.perf_counter(), time.process_time()
    fn()
    first = time.perf_counter() - start
    first_cpu = time.process_time() - cpu_start
    times = []
    cpu_start = time.process_time()
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    cpu_per_call = (time.process_time() - cpu_start) / max(repeats, 1)
    return first, first_cpu, statistics.median(times), cpu_per_call


def keras_worker(backend: str, size: int, mode: str) -> dict:
    os.environ["KERAS_BACKEND"] = backend
    import keras
    import numpy as np

    from flows import RAFT
    from flows.transforms import jit, value_and_input_gradients

    keras.utils.set_random_seed(0)
    # Only non-default options, so that the script also runs against older versions of flows.
    options = {"dtype": FLAGS.dtype} if FLAGS.dtype != "float32" else {}
    options.update({"unroll": True} if FLAGS.unroll else {})
    model = RAFT(variant="large", iters=FLAGS.iters, **options)
    rng = np.random.default_rng(0)
    image1 = rng.uniform(0, 255, (FLAGS.batch, size, size, 3)).astype("float32")
    image2 = np.roll(image1, 3, axis=2)

    if mode == "forward":
        raw = lambda a, b: model.compute_flow(a, b)[1]  # noqa: E731
    else:

        def loss(a, b):
            return keras.ops.sum(keras.ops.square(model.compute_flow(a, b)[1]))

        raw = value_and_input_gradients(loss, argnums=(0, 1))
    fn = jit(raw)
    image1, image2 = keras.ops.convert_to_tensor(image1), keras.ops.convert_to_tensor(image2)

    def run():
        keras.tree.map_structure(lambda x: np.asarray(x), fn(image1, image2))

    first, first_cpu, median, cpu_per_call = time_calls(run, FLAGS.repeats)
    result = {
        "first_call_s": first,
        "first_call_cpu_s": first_cpu,
        "median_s": median,
        "cpu_s_per_call": cpu_per_call,
        **device_memory(backend),
    }
    if FLAGS.flops:
        from flops import unrolled_raft, utilisation, xla_flops

        with unrolled_raft(model):  # XLA counts a loop body once: count every iteration
            flops = xla_flops(raw, image1, image2)
        peak_dtype = "bf16" if "bfloat16" in FLAGS.dtype else "tf32"
        result.update(flops_per_call=flops, **utilisation(flops, median, peak_dtype))
    return result


def device_memory(backend: str) -> dict:
    if backend == "jax":
        import jax

        device = jax.devices()[0]
        if device.platform == "gpu":
            stats = device.memory_stats() or {}
            return {"peak_device_mib": stats.get("peak_bytes_in_use", 0) / 2**20}
    if backend == "tensorflow":
        import tensorflow as tf

        if tf.config.list_physical_devices("GPU"):
            return {
                "peak_device_mib": tf.config.experimental.get_memory_info("GPU:0")["peak"] / 2**20
            }
    if backend == "torch":
        import torch

        if torch.cuda.is_available():
            return {"peak_device_mib": torch.cuda.max_memory_allocated() / 2**20}
    return {}


def torch_worker(size: int, mode: str) -> dict:
    import numpy as np
    import torch

    sys.path.insert(0, FLAGS.reference_raft_dir)
    from raft import RAFT as TorchRAFT  # the original implementation

    device = "cuda" if torch.cuda.is_available() else "cpu"
    torch.manual_seed(0)
    model = TorchRAFT(argparse_namespace()).to(device).eval()
    rng = np.random.default_rng(0)
    image1 = torch.from_numpy(rng.uniform(0, 255, (FLAGS.batch, 3, size, size)).astype("float32"))
    image1 = image1.to(device)
    image2 = torch.roll(image1, 3, dims=3)

    def run():
        if mode == "forward":
            with torch.no_grad():
                model(image1, image2, iters=FLAGS.iters, test_mode=True)
        else:
            a = image1.clone().requires_grad_(True)
            b = image2.clone().requires_grad_(True)
            _, flow_up = model(a, b, iters=FLAGS.iters, test_mode=True)
            flow_up.square().sum().backward()
        if device == "cuda":
            torch.cuda.synchronize()

    first, first_cpu, median, cpu_per_call = time_calls(run, FLAGS.repeats)
    return {
        "first_call_s": first,
        "first_call_cpu_s": first_cpu,
        "median_s": median,
        "cpu_s_per_call": cpu_per_call,
        **device_memory("torch"),
    }


def argparse_namespace():
    import argparse

    return argparse.Namespace(small=False, mixed_precision=False, alternate_corr=False, dropout=0)


def run_worker(spec: str) -> None:
    backend, size, mode = spec.split(",")
    size = int(size)
    if backend == "torch":
        result = torch_worker(size, mode)
    else:
        result = keras_worker(backend, size, mode)
    result.update(
        backend=backend,
        size=size,
        mode=mode,
        batch=FLAGS.batch,
        iters=FLAGS.iters,
        dtype=FLAGS.dtype,
        unroll=FLAGS.unroll,
        pairs_per_s=FLAGS.batch / result["median_s"],
        peak_rss_mib=peak_rss_mib(),
        machine=describe_machine(),
        date=time.strftime("%Y-%m-%d"),
    )
    print("RESULT " + json.dumps(result), flush=True)


def main(argv):
    del argv
    if FLAGS.worker:
        run_worker(FLAGS.worker)
        return 0
    backends = list(FLAGS.backends)
    if FLAGS.reference_raft_dir and "torch" not in backends:
        backends.append("torch")
    rows = []
    for size in FLAGS.sizes:
        for mode in FLAGS.modes:
            for backend in backends:
                python = FLAGS.reference_python if backend == "torch" else sys.executable
                command = [
                    python,
                    __file__,
                    f"--worker={backend},{size},{mode}",
                    f"--batch={FLAGS.batch}",
                    f"--iters={FLAGS.iters}",
                    f"--repeats={FLAGS.repeats}",
                    f"--dtype={FLAGS.dtype}",
                    f"--unroll={FLAGS.unroll}",
                    f"--flops={FLAGS.flops}",
                ]
                if FLAGS.reference_raft_dir:
                    command.append(f"--reference_raft_dir={FLAGS.reference_raft_dir}")
                env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}
                done = subprocess.run(command, capture_output=True, text=True, env=env)
                lines = [x for x in done.stdout.splitlines() if x.startswith("RESULT ")]
                if done.returncode != 0 or not lines:
                    print(
                        f"{backend} {size} {mode} failed:\n{done.stderr[-2000:]}", file=sys.stderr
                    )
                    continue
                row = json.loads(lines[-1][len("RESULT ") :])
                rows.append(row)
                print(
                    f"{backend:>10} {size:>4}px {mode:>16}: {row['pairs_per_s']:7.2f} pairs/s "
                    f"({row['median_s'] * 1000:8.1f} ms/batch, "
                    f"first call {row['first_call_s']:.1f} s), "
                    f"peak RSS {row['peak_rss_mib']:.0f} MiB"
                    + (
                        f", {row['flops_per_call'] / 1e9:.2f} GFLOP/call, "
                        f"{row['achieved_tflop_s'] * 1e3:.1f} GFLOP/s"
                        if row.get("flops_per_call")
                        else ""
                    )
                    + (
                        f", {100 * row['fraction_of_peak']:.1f}% of {row['device']}'s "
                        f"{row['peak_dtype']} peak"
                        if "fraction_of_peak" in row
                        else ""
                    )
                    + (
                        f", device {row['peak_device_mib']:.0f} MiB"
                        if "peak_device_mib" in row
                        else ""
                    ),
                    flush=True,
                )
    if rows:
        os.makedirs(os.path.dirname(FLAGS.out) or ".", exist_ok=True)
        with open(FLAGS.out, "a") as f:
            for row in rows:
                f.write(json.dumps(row) + "\n")
        print(f"machine: {rows[0]['machine']}; appended {len(rows)} rows to {FLAGS.out}")
    return 0


if __name__ == "__main__":
    app.run(main)
