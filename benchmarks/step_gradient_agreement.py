"""How far apart one training step's gradients are: RAFT as a loop or unrolled, one or two
devices (JAX), TensorFlow or JAX.

Runs the step of `tests/model/test_backends_and_devices.py` (its tiny AVLAE, weights, latents and
batch of 4; `fixed_training_step`) for each setting and prints, per update group, the largest
relative difference in L2 norm of Adam's first moments (0.5 x the gradients) beyond the test's
float32 slack of 1e-6 per entry:

    KERAS_BACKEND=jax python benchmarks/step_gradient_agreement.py --out=/tmp/jax.npz
    KERAS_BACKEND=tensorflow python benchmarks/step_gradient_agreement.py --out=/tmp/tf.npz \\
        --compare_with=/tmp/jax.npz

On JAX the settings are {loop, unrolled} x {1, 2 devices} (two CPU devices are forced); on
TensorFlow {loop, unrolled} on one device. The weights are written by the first run (--weights)
and loaded by the later ones, so that runs on both backends start from the same model.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from absl import app, flags

REPO_ROOT = Path(__file__).resolve().parents[1]
FLAGS = flags.FLAGS
flags.DEFINE_string("out", "/tmp/step_gradients.npz", "Where this run's first moments go.")
flags.DEFINE_string("weights", "/tmp/step_gradients.weights.h5", "Shared initial weights.")
flags.DEFINE_string("compare_with", None, "Another run's --out, compared setting by setting.")


def _moments_by_setting() -> dict[str, dict]:
    import keras

    from avlae_keras import AVLAE
    from flows import RAFT
    from tests.model.conftest import TINY_CONFIG
    from tests.model.step_losses_worker import fixed_training_step
    from tests.model.test_backends_and_devices import _inputs

    backend = keras.backend.backend()
    inputs = _inputs(4, TINY_CONFIG["latent_dim"], TINY_CONFIG["frames"])

    def build(unroll: bool):
        model = AVLAE(**TINY_CONFIG, flow_estimator=RAFT(variant="small", unroll=unroll), seed=7)
        if os.path.exists(FLAGS.weights):
            model.load_weights(FLAGS.weights)
        else:
            model.save_weights(FLAGS.weights)
        return model

    results = {}
    for unroll in (True, False):
        name = f"{backend} {'unrolled' if unroll else 'loop'} 1 device"
        results[name] = fixed_training_step(build(unroll), inputs)
    if backend == "jax":
        import jax

        keras.distribution.set_distribution(keras.distribution.DataParallel(devices=jax.devices()))
        for unroll in (True, False):
            name = f"jax {'unrolled' if unroll else 'loop'} 2 devices"
            results[name] = fixed_training_step(build(unroll), inputs)
    return results


def largest_differences(first: dict, second: dict) -> dict[str, float]:
    """Per update group, max over variables of (|a - b| - 1e-6 sqrt(n)) / |a| (L2 norms)."""
    import numpy as np

    from avlae_keras.optimizer_group import UPDATE_GROUPS

    worst: dict[str, float] = {}
    for k, group in enumerate(first["momentum_group"]):
        a, b = first[f"momentum_{k:03d}"], second[f"momentum_{k:03d}"]
        excess = np.linalg.norm(a - b) - 1e-6 * np.sqrt(a.size)
        relative = max(0.0, float(excess / max(np.linalg.norm(a), 1e-30)))
        name = UPDATE_GROUPS[int(group)]
        worst[name] = max(worst.get(name, 0.0), relative)
    return worst


def _print(name_a: str, a: dict, name_b: str, b: dict) -> None:
    table = ", ".join(f"{k} {v:.2%}" for k, v in largest_differences(a, b).items())
    print(f"{name_a} vs {name_b}: {table}", flush=True)


def main(argv) -> None:
    del argv
    os.environ.setdefault("XLA_FLAGS", "--xla_force_host_platform_device_count=2")  # JAX
    sys.path.insert(0, str(REPO_ROOT))  # the tests' helpers
    import numpy as np

    results = _moments_by_setting()
    np.savez(
        FLAGS.out,
        **{f"{name}|{key}": value for name, r in results.items() for key, value in r.items()},
    )
    if FLAGS.compare_with:
        saved = np.load(FLAGS.compare_with)
        for name in {key.split("|")[0] for key in saved.files}:
            results[name] = {
                key.split("|")[1]: saved[key] for key in saved.files if key.startswith(name + "|")
            }
    names = sorted(results)
    for i, first in enumerate(names):
        for second in names[i + 1 :]:
            _print(first, results[first], second, results[second])


if __name__ == "__main__":
    app.run(main)
