"""RAFT's gradient with respect to both input frames, ours (each backend) against the original
PyTorch RAFT's autograd, and the golden fixture the tests check it with.

    python benchmarks/raft_input_gradient_vs_pytorch.py \\
        --reference_raft_dir=/path/to/princeton-vl/RAFT/core --reference_python=/path/to/python

For each official checkpoint (raft-small, raft-sintel from `--weights_dir`) the reference
computes, on two 128x128 frames (the golden RAFT fixture's; the reference gives NaN below 128 px)
and `--iters` iterations, the gradient of sum(flow_up * P) with respect to each frame, P a fixed
random projection (N(0, 1), seed 0). It writes frames, P and gradients (NHWC) to `--out`
(`tests/flows/fixtures/raft_input_gradients.npz`, read by
`tests/flows/test_raft_input_gradients.py`), then runs ours on each of `--backends` in a
subprocess and prints the relative L2 error of each gradient. Without `--reference_raft_dir` it
only compares ours against an existing `--out`.
The reference needs torch, numpy and scipy (its utils import scipy); CPU torch is enough.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from absl import app, flags

REPO_ROOT = Path(__file__).resolve().parents[1]
SHARED = REPO_ROOT.parent / "shared"
CHECKPOINTS = ("small", "sintel")
FLAGS = flags.FLAGS
flags.DEFINE_string("reference_raft_dir", None, "The original RAFT's core/ folder.")
flags.DEFINE_string("reference_python", sys.executable, "Python with torch, numpy and scipy.")
flags.DEFINE_string(
    "weights_dir",
    os.environ.get("FLOWS_WEIGHTS_DIR", str(SHARED / "weights" / "raft")),
    "Folder with raft-small.pth and raft-sintel.pth.",
)
flags.DEFINE_string(
    "frames",
    str(SHARED / "fixtures" / "raft" / "golden_raft_small_128x128_iters12.npz"),
    "An .npz with image1 and image2 (H, W, 3 uint8).",
)
flags.DEFINE_integer("iters", 2, "RAFT iterations.")
flags.DEFINE_string(
    "out", str(REPO_ROOT / "tests" / "flows" / "fixtures" / "raft_input_gradients.npz"), "Fixture."
)
flags.DEFINE_list("backends", ["jax", "tensorflow"], "Keras backends to compare.")
flags.DEFINE_string("worker", None, "Internal: 'torch' or 'keras'.")


def torch_worker() -> None:
    import argparse

    import numpy as np
    import torch

    sys.path.insert(0, FLAGS.reference_raft_dir)
    from raft import RAFT as TorchRAFT  # the original implementation

    torch.manual_seed(0)
    frames = np.load(FLAGS.frames)
    image1, image2 = frames["image1"], frames["image2"]
    height, width = image1.shape[:2]
    projection = np.random.default_rng(0).standard_normal((height, width, 2)).astype("float32")
    fixture = {
        "image1": image1,
        "image2": image2,
        "projection": projection,
        "iters": np.array(FLAGS.iters),
        "torch_version": np.array(torch.__version__),
    }
    for checkpoint in CHECKPOINTS:
        args = argparse.Namespace(
            small=checkpoint == "small", mixed_precision=False, alternate_corr=False, dropout=0
        )
        model = TorchRAFT(args)
        state = torch.load(
            os.path.join(FLAGS.weights_dir, f"raft-{checkpoint}.pth"), map_location="cpu"
        )
        model.load_state_dict({k.removeprefix("module."): v for k, v in state.items()})
        model.eval()
        inputs = [
            torch.from_numpy(
                image.astype("float32").transpose(2, 0, 1)[None].copy()
            ).requires_grad_(True)
            for image in (image1, image2)
        ]
        _, flow_up = model(*inputs, iters=FLAGS.iters, test_mode=True)
        (flow_up * torch.from_numpy(projection.transpose(2, 0, 1)[None].copy())).sum().backward()
        for index, image in enumerate(inputs, start=1):
            gradient = image.grad[0].numpy().transpose(1, 2, 0)
            fixture[f"{checkpoint}_grad_image{index}"] = np.ascontiguousarray(gradient)
    Path(FLAGS.out).parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(FLAGS.out, **fixture)
    print(f"wrote {FLAGS.out} (torch {torch.__version__}, {FLAGS.iters} iterations)")


def keras_worker() -> None:
    import keras
    import numpy as np

    sys.path.insert(0, str(REPO_ROOT))
    from flows import RAFT
    from tests.flows.test_raft_input_gradients import projected_flow_gradients, relative_error

    golden = np.load(FLAGS.out)
    image1 = golden["image1"][None].astype("float32")
    image2 = golden["image2"][None].astype("float32")
    for checkpoint in CHECKPOINTS:
        raft = RAFT.from_checkpoint(os.path.join(FLAGS.weights_dir, f"raft-{checkpoint}.pth"))
        ours = projected_flow_gradients(
            raft, image1, image2, golden["projection"][None], int(golden["iters"])
        )
        errors = [
            relative_error(g[0], golden[f"{checkpoint}_grad_image{i}"])
            for i, g in enumerate(ours, start=1)
        ]
        print(
            f"{keras.backend.backend()} raft-{checkpoint}, {int(golden['iters'])} iterations: "
            f"relative L2 error image1 {errors[0]:.2e}, image2 {errors[1]:.2e}",
            flush=True,
        )


def _run(python: str, worker: str, backend: str | None = None) -> None:
    command = [python, __file__, f"--worker={worker}"] + [
        f"--{name}={getattr(FLAGS, name)}" for name in ("weights_dir", "frames", "iters", "out")
    ]
    if FLAGS.reference_raft_dir:
        command.append(f"--reference_raft_dir={FLAGS.reference_raft_dir}")
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", "PYTHONPATH": str(REPO_ROOT)}
    if backend:
        env["KERAS_BACKEND"] = backend
    subprocess.run(command, env=env, check=True)


def main(argv) -> None:
    del argv
    if FLAGS.worker == "torch":
        return torch_worker()
    if FLAGS.worker == "keras":
        return keras_worker()
    if FLAGS.reference_raft_dir:
        _run(FLAGS.reference_python, "torch")
    elif not Path(FLAGS.out).exists():
        raise SystemExit(f"{FLAGS.out} does not exist: pass --reference_raft_dir to write it.")
    for backend in FLAGS.backends:
        _run(sys.executable, "keras", backend)


if __name__ == "__main__":
    app.run(main)
