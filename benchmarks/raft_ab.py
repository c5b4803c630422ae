"""RAFT timings of two or more code versions (and the PyTorch reference) interleaved in one run.

    # The demo's RAFT (RAFT-small, 2 iterations, 32x32, 16 videos x 7 pairs) inside a jitted
    # function, as AVLAE's training step runs it: old commit against this checkout.
    git archive <commit> flows avlae_keras | tar -x -C /tmp/raft-old
    python benchmarks/raft_ab.py --case=demo_forward --version=old=/tmp/raft-old,new=.
    # `RAFT.compute_flow` as the README shows it (raft_sintel, 128x128, batch 8, 12 iterations)
    # against the official PyTorch RAFT's forward pass, eager, as its authors run it.
    python benchmarks/raft_ab.py --case=compute_flow --version=new=. \
        --reference_raft_dir=/path/to/RAFT/core --reference_python=/path/to/torch/python

Every (version, backend) is one long-lived worker process that compiles and warms up first; the
parent then asks the workers in turn, round after round (the order alternating), for a few timed
calls each. All versions thus share the same machine load, which on a shared machine is the only
way the comparison means anything. Reports the median seconds per call and pairs per second of
each worker, the ratio to the first one, the load average, and appends JSON lines to `--out`.

Cases:
  demo_forward           MotionEncoder.compute_flow_sequence on (videos, frames, size, size, 3) in
                         a jitted function (Step I of the training step: forward only).
  demo_forward_backward  the same, value and gradient of sum(flow^2) to the videos (Steps II, III).
  compute_flow           RAFT.from_preset(preset).compute_flow(image1, image2) on NumPy arrays,
                         called as the README shows it; the reference: model(...) under no_grad.
  train_step             one AVLAE training step (Steps I-III, `train_on_batch`) of the demo's
                         model (configs/demo.flags: width 16, latent 32, R1 gamma 1) on `videos`
                         videos; pairs per call counts Step I's 2 * videos * (frames - 1).
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import time

from absl import app, flags

FLAGS = flags.FLAGS
flags.DEFINE_enum(
    "case",
    "demo_forward",
    ["demo_forward", "demo_forward_backward", "compute_flow", "train_step"],
    "What to time (see the module docstring).",
)
flags.DEFINE_multi_string(
    "version",
    ["new=."],
    "label=code_dir (repeatable): a folder holding the flows/ and avlae_keras/ to time; "
    "label=code_dir|FLAGS also sets XLA_FLAGS=FLAGS for that version's workers.",
)
flags.DEFINE_list("backends", ["jax", "tensorflow"], "Keras backends.")
flags.DEFINE_integer("videos", 16, "demo cases: videos per call.")
flags.DEFINE_integer("frames", 8, "demo cases: frames per video (frames - 1 pairs each).")
flags.DEFINE_integer("size", 32, "Square frame side.")
flags.DEFINE_integer("batch", 8, "compute_flow: image pairs per call.")
flags.DEFINE_integer("iters", 2, "RAFT iterations.")
flags.DEFINE_string("preset", "raft_small", "RAFT preset (weights from $FLOWS_WEIGHTS_DIR).")
flags.DEFINE_bool("unroll", True, "demo cases: RAFT's iterations unrolled (AVLAE's default).")
flags.DEFINE_integer("rounds", 6, "Rounds of timed calls.")
flags.DEFINE_integer("calls", 3, "Timed calls per worker per round.")
flags.DEFINE_string("reference_raft_dir", None, "The original RAFT's core/ folder; adds 'torch'.")
flags.DEFINE_string("reference_python", sys.executable, "Python with torch and numpy.")
flags.DEFINE_string("out", "benchmarks/results/raft_ab.jsonl", "JSON-lines output.")
flags.DEFINE_string("worker", None, "Internal: 'backend,code_dir' to serve in this process.")


def pairs_per_call() -> int:
    if FLAGS.case == "compute_flow":
        return FLAGS.batch
    if FLAGS.case == "train_step":
        return 2 * FLAGS.videos * (FLAGS.frames - 1)
    return FLAGS.videos * (FLAGS.frames - 1)


def keras_call(backend: str):
    """The function to time, compiled and warmed up."""
    os.environ["KERAS_BACKEND"] = backend
    import keras
    import numpy as np

    from flows import RAFT
    from flows.transforms import jit, value_and_input_gradients

    keras.utils.set_random_seed(0)
    rng = np.random.default_rng(0)
    if FLAGS.case == "compute_flow":
        raft = RAFT.from_preset(FLAGS.preset)
        image1 = rng.uniform(0, 255, (FLAGS.batch, FLAGS.size, FLAGS.size, 3)).astype("float32")
        image2 = np.roll(image1, 3, axis=2)
        return lambda: [np.asarray(x) for x in raft.compute_flow(image1, image2, iters=FLAGS.iters)]

    from avlae_keras.networks.motion_encoder import MotionEncoder

    raft = RAFT.from_preset(FLAGS.preset, unroll=FLAGS.unroll)
    if FLAGS.case == "train_step":
        from avlae_keras import AVLAE

        model = AVLAE(
            resolution=FLAGS.size,
            frames=FLAGS.frames,
            base_channels=16,
            latent_dim=32,
            flow_estimator=raft,
            raft_iters=FLAGS.iters,
            r1_gamma=1.0,
            seed=0,
        )
        model.compile(jit_compile=True)
        shape = (FLAGS.videos, FLAGS.frames, FLAGS.size, FLAGS.size, 3)
        batch = rng.uniform(-1, 1, shape).astype("float32")
        return lambda: model.train_on_batch(batch)
    encoder = MotionEncoder(raft, raft_iters=FLAGS.iters, resolution=FLAGS.size)
    shape = (FLAGS.videos, FLAGS.frames, FLAGS.size, FLAGS.size, 3)
    videos = keras.ops.convert_to_tensor(rng.uniform(-1, 1, shape).astype("float32"))
    if FLAGS.case == "demo_forward":
        fn = jit(encoder.compute_flow_sequence)
    else:
        loss = lambda v: keras.ops.sum(keras.ops.square(encoder.compute_flow_sequence(v)))  # noqa: E731
        fn = jit(value_and_input_gradients(loss, argnums=(0,)))
    return lambda: keras.tree.map_structure(np.asarray, fn(videos))


def torch_call():
    import argparse

    import numpy as np
    import torch

    sys.path.insert(0, FLAGS.reference_raft_dir)
    from raft import RAFT as TorchRAFT  # the original implementation

    if FLAGS.case != "compute_flow":
        raise ValueError(f"The PyTorch reference runs only --case=compute_flow, not {FLAGS.case}.")
    torch.manual_seed(0)
    small = "small" in FLAGS.preset
    options = argparse.Namespace(
        small=small, mixed_precision=False, alternate_corr=False, dropout=0
    )
    model = TorchRAFT(options).eval()
    rng = np.random.default_rng(0)
    shape = (FLAGS.batch, 3, FLAGS.size, FLAGS.size)
    image1 = torch.from_numpy(rng.uniform(0, 255, shape).astype("float32"))
    image2 = torch.roll(image1, 3, dims=3)

    def run():
        with torch.no_grad():
            return model(image1, image2, iters=FLAGS.iters, test_mode=True)

    return run


def serve(spec: str) -> None:
    backend, code_dir = spec.split(",", 1)
    if backend != "torch":
        sys.path.insert(0, os.path.abspath(code_dir))
    fn = torch_call() if backend == "torch" else keras_call(backend)
    start = time.perf_counter()
    fn()  # compiles
    first = time.perf_counter() - start
    fn()
    print("READY " + json.dumps({"first_call_s": first}), flush=True)
    for line in sys.stdin:
        times = []
        for _ in range(int(line)):
            start = time.perf_counter()
            fn()
            times.append(time.perf_counter() - start)
        print("TIMES " + json.dumps(times), flush=True)


def read_tagged(process, tag: str) -> str:
    for line in process.stdout:
        if line.startswith(tag + " "):
            return line[len(tag) + 1 :]
    raise RuntimeError(f"worker {process.args[-1]} ended: {process.stderr.read()[-3000:]}")


def main(argv):
    del argv
    if FLAGS.worker:
        serve(FLAGS.worker)
        return 0
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    from machine import describe_machine

    versions = dict(v.split("=", 1) for v in FLAGS.version)
    specs = [(f"{label}/{backend}", backend, path) for label, path in versions.items()
             for backend in FLAGS.backends]  # fmt: skip
    if FLAGS.reference_raft_dir:
        specs.append(("pytorch", "torch", "."))
    passed = [f"--{name}={getattr(FLAGS, name)}" for name in (
        "case", "videos", "frames", "size", "batch", "iters", "preset", "unroll",
        "reference_raft_dir")]  # fmt: skip
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}
    workers = {}
    for name, backend, path in specs:
        path, _, xla_flags = path.partition("|")
        if xla_flags:
            env = {**env, "XLA_FLAGS": xla_flags}
        else:
            env = {k: v for k, v in env.items() if k != "XLA_FLAGS"}
        python = FLAGS.reference_python if backend == "torch" else sys.executable
        command = [python, os.path.abspath(__file__), *passed, f"--worker={backend},{path}"]
        process = subprocess.Popen(
            command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
            text=True, env=env,
        )  # fmt: skip
        # Warm up one at a time, so that compilation does not overlap another's timing.
        workers[name] = (process, json.loads(read_tagged(process, "READY")))
        print(f"{name}: ready, first call {workers[name][1]['first_call_s']:.1f} s", flush=True)
    load_before = os.getloadavg()
    times = {name: [] for name in workers}
    for round_index in range(FLAGS.rounds):
        order = list(workers) if round_index % 2 == 0 else list(reversed(workers))
        for name in order:
            process = workers[name][0]
            process.stdin.write(f"{FLAGS.calls}\n")
            process.stdin.flush()
            times[name] += json.loads(read_tagged(process, "TIMES"))
    load_after = os.getloadavg()
    for process, _ in workers.values():
        process.stdin.close()
        process.wait()
    first_name = next(iter(workers))
    baseline = statistics.median(times[first_name])
    rows = []
    for name, (_, ready) in workers.items():
        median = statistics.median(times[name])
        row = {
            "case": FLAGS.case,
            "worker": name,
            "code_dir": versions.get(name.split("/")[0]),
            "median_s": median,
            "pairs_per_s": pairs_per_call() / median,
            "speedup_vs_first": baseline / median,
            "first_call_s": ready["first_call_s"],
            "times_s": times[name],
            "pairs_per_call": pairs_per_call(),
            **{k: getattr(FLAGS, k) for k in ("size", "iters", "preset", "unroll")},
            "load_average_before": load_before,
            "load_average_after": load_after,
            "machine": describe_machine(),
            "date": time.strftime("%Y-%m-%d %H:%M"),
        }
        rows.append(row)
        print(
            f"{name:>20}: {median * 1000:8.1f} ms/call, {row['pairs_per_s']:7.1f} pairs/s, "
            f"x{row['speedup_vs_first']:.2f} vs {first_name}",
            flush=True,
        )
    print(f"load average before {load_before}, after {load_after}; {rows[0]['machine']}")
    os.makedirs(os.path.dirname(FLAGS.out) or ".", exist_ok=True)
    with open(FLAGS.out, "a") as f:
        for row in rows:
            f.write(json.dumps(row) + "\n")
    return 0


if __name__ == "__main__":
    app.run(main)
