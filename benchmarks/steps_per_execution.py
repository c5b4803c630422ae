"""Training steps per second against --steps_per_execution (K iterations of Algorithm 1 in one
compiled call), every K timed in turn in one process, round after round.

    python benchmarks/steps_per_execution.py --flagfile=demo.flags --ks=1,2,4,8

The model is the one `avlae-train` builds from the same flags (`trainer.build_model`); its
batches are the run's first ones, loaded before any timing (data loading is not timed). Each K
compiles its program first (the compile time is reported); then, round after round with the
order reversed every other round, each K trains `--steps_per_round` steps (a multiple of every
K) as `avlae-train` calls it (`backend.train_on_batches`). All Ks thus share the machine's load.
Reports the median wall and CPU milliseconds per step of each K, steps per second and the speed
against the first K, and appends one JSON line per K to `--out`.
"""

from __future__ import annotations

import json
import math
import os
import statistics
import sys
import time

from absl import app, flags
from machine import commit, describe_machine

from avlae_keras.cli.config_flags import config_from_flags, define_flags, resolve_flagfiles
from avlae_keras.config import TrainConfig

FLAGS = flags.FLAGS
flags.DEFINE_list("ks", ["1", "2", "4", "8"], "Steps per compiled call to compare.")
flags.DEFINE_integer("rounds", 4, "Timed rounds (each K once per round).")
flags.DEFINE_integer(
    "steps_per_round", 0, "Steps per K per round (0: the Ks' least common multiple, at least 8)."
)
flags.DEFINE_string("out", "benchmarks/results/steps_per_execution.jsonl", "JSON lines appended.")


def main(argv: list[str]) -> None:
    del argv
    import keras
    import numpy as np

    from avlae_keras import backend
    from avlae_keras.data import training_batches
    from avlae_keras.trainer import build_model

    config = config_from_flags(TrainConfig).replace(workdir="unused")
    config.validate()
    ks = [int(k) for k in FLAGS.ks]
    steps = FLAGS.steps_per_round or max(8, math.lcm(*ks))
    if any(steps % k for k in ks):
        raise app.UsageError(f"--steps_per_round={steps} is not a multiple of every K in {ks}")
    keras.utils.set_random_seed(config.seed)
    model = build_model(config)
    loaded = list(training_batches(config).iterate(0, steps, workers=config.data_workers))
    batches = np.stack(loaded)

    def train(k: int) -> None:
        for first in range(0, steps, k):
            logs = backend.train_on_batches(model, batches[first : first + k])
        float(logs[-1]["video_real_loss"])  # waits for the last step

    compile_seconds = {}
    for k in ks:
        start = time.perf_counter()
        backend.train_on_batches(model, batches[:k])
        compile_seconds[k] = time.perf_counter() - start
    wall: dict[int, list[float]] = {k: [] for k in ks}
    cpu: dict[int, list[float]] = {k: [] for k in ks}
    loads = []
    for round_index in range(FLAGS.rounds):
        for k in ks if round_index % 2 == 0 else ks[::-1]:
            start, cpu_start = time.perf_counter(), time.process_time()
            train(k)
            wall[k].append((time.perf_counter() - start) / steps)
            cpu[k].append((time.process_time() - cpu_start) / steps)
        loads.append(os.getloadavg()[0])
    machine = describe_machine()
    base = statistics.median(wall[ks[0]])
    print(f"{machine}; {keras.backend.backend()}; load average {min(loads):.1f}-{max(loads):.1f}")
    print("K  ms/step  CPU ms/step  steps/s  speed-up  compile s")
    with open(FLAGS.out, "a") as out:
        for k in ks:
            ms, cpu_ms = 1e3 * statistics.median(wall[k]), 1e3 * statistics.median(cpu[k])
            print(
                f"{k:<2} {ms:8.1f} {cpu_ms:12.1f} {1e3 / ms:8.2f} {base * 1e3 / ms:8.2f}x "
                f"{compile_seconds[k]:9.1f}"
            )
            row = {
                "machine": machine,
                "commit": commit(),
                "backend": keras.backend.backend(),
                "config": {**config.to_dict(), "workdir": None},
                "steps_per_execution": k,
                "ms_per_step": round(ms, 2),
                "cpu_ms_per_step": round(cpu_ms, 2),
                "rounds_ms_per_step": [round(1e3 * s, 2) for s in wall[k]],
                "compile_seconds": round(compile_seconds[k], 2),
                "load_average": [round(x, 2) for x in loads],
                "date": time.strftime("%Y-%m-%d"),
            }
            out.write(json.dumps(row) + "\n")


if __name__ == "__main__":
    define_flags(TrainConfig)
    app.run(main, argv=resolve_flagfiles(sys.argv))
