"""RAFT-large with its iterations as one loop primitive (the default) against unrolled
(`RAFT(unroll=True)`), same weights, in one process: CPU seconds of the compiling call and median
CPU seconds per call, forward and forward+backward to both images.

    KERAS_BACKEND=jax python benchmarks/raft_loop_vs_unrolled.py 64 12   # size, iterations
"""

import sys
import time

import keras
import numpy as np

from flows import RAFT
from flows.transforms import jit, value_and_input_gradients


def main(size: int, iters: int) -> None:
    keras.utils.set_random_seed(0)
    looped = RAFT(variant="large", iters=iters)
    unrolled = RAFT.from_config({**looped.get_config(), "unroll": True})
    unrolled.set_weights(looped.get_weights())
    rng = np.random.default_rng(0)
    a = rng.uniform(0, 255, (1, size, size, 3)).astype("float32")
    b = np.roll(a, 2, axis=2)
    fns = {}
    for name, model in (("loop", looped), ("unrolled", unrolled)):

        def loss(x, y, model=model):
            return keras.ops.sum(keras.ops.square(model.compute_flow(x, y)[1]))

        fns[f"{name}_forward"] = jit(lambda x, y, model=model: model.compute_flow(x, y)[1])
        fns[f"{name}_forward_backward"] = jit(value_and_input_gradients(loss, argnums=(0, 1)))

    def cpu_seconds(fn):
        start = time.process_time()
        keras.tree.map_structure(np.asarray, fn(a, b))
        return time.process_time() - start

    for name, fn in fns.items():
        print(name, "compile CPU s", round(cpu_seconds(fn), 1), flush=True)
    times = {name: [] for name in fns}
    for _ in range(5):
        for name, fn in fns.items():
            times[name].append(cpu_seconds(fn))
    for name, values in times.items():
        print(name, "CPU s per call, median", round(float(np.median(values)), 4), flush=True)


if __name__ == "__main__":
    main(int(sys.argv[1]), int(sys.argv[2]))
