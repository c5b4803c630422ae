"""Runs in a subprocess (its own backend / device count) and prints JSON results.

`python -m tests.model.step_losses_worker parity DIR`: rebuilds the tiny AVLAE, loads
DIR/weights.weights.h5 and prints `compute_step_losses` on DIR/inputs.npz.
`python -m tests.model.step_losses_worker distributed DIR [fit]`: on 2 devices, prints the step
losses of the same batch computed on one device and split across two (and, with `fit`, the logs
and optimizer iterations of one data-parallel training step).
"""

from __future__ import annotations

import json
import os
import sys

import numpy as np


def _prepare_devices(mode: str) -> None:
    if mode != "distributed":
        return
    backend = os.environ.get("KERAS_BACKEND", "tensorflow")
    if backend == "jax":
        os.environ["XLA_FLAGS"] = (
            os.environ.get("XLA_FLAGS", "") + " --xla_force_host_platform_device_count=2"
        )
    else:
        import tensorflow as tf

        cpu = tf.config.list_physical_devices("CPU")[0]
        tf.config.set_logical_device_configuration(
            cpu, [tf.config.LogicalDeviceConfiguration()] * 2
        )


def _build_model():
    from avlae_keras import AVLAE
    from flows import RAFT
    from tests.model.conftest import TINY_CONFIG

    return AVLAE(**TINY_CONFIG, flow_estimator=RAFT(variant="small"), seed=7)


def _to_floats(losses) -> dict:
    import keras

    return {k: float(keras.ops.convert_to_numpy(v)) for k, v in losses.items()}


def _compiled(fn):
    import keras

    if keras.backend.backend() == "jax":
        import jax

        return jax.jit(fn)
    return fn


def parity(directory: str) -> dict:
    model = _build_model()
    model.load_weights(os.path.join(directory, "weights.weights.h5"))
    inputs = dict(np.load(os.path.join(directory, "inputs.npz")))
    return _to_floats(_compiled(model.compute_step_losses)(**inputs))


def distributed(directory: str, fit: bool) -> dict:
    import keras

    inputs = dict(np.load(os.path.join(directory, "inputs.npz")))
    results = {}
    if keras.backend.backend() == "jax":
        import jax

        devices = jax.devices()
        distribution = keras.distribution.DataParallel(devices=devices)
        keras.distribution.set_distribution(distribution)
        model = _build_model()
        step_losses = jax.jit(model.compute_step_losses)
        results["one_device"] = _to_floats(
            step_losses(**{k: jax.device_put(v, devices[0]) for k, v in inputs.items()})
        )
        sharded = {
            k: keras.distribution.distribute_tensor(v, distribution.get_data_layout(v.shape))
            for k, v in inputs.items()
        }
        assert len(sharded["videos"].sharding.device_set) == 2
        results["two_devices"] = _to_floats(step_losses(**sharded))
        if fit:
            model.compile()
            history = model.fit(inputs["videos"], batch_size=2, epochs=1, verbose=0)
            results["fit"] = {k: v[-1] for k, v in history.history.items()}
            results["iterations"] = [
                int(keras.ops.convert_to_numpy(o.iterations)) for o in model.optimizers
            ]
        results["devices"] = len(devices)
        return results

    import tensorflow as tf

    strategy = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
    with strategy.scope():
        model = _build_model()
    results["one_device"] = _to_floats(model.compute_step_losses(**inputs))
    half = inputs["videos"].shape[0] // 2

    def split(array):
        return strategy.experimental_distribute_values_from_function(
            lambda context: array[
                context.replica_id_in_sync_group * half : (context.replica_id_in_sync_group + 1)
                * half
            ]
        )

    per_replica = strategy.run(
        model.compute_step_losses, kwargs={k: split(v) for k, v in inputs.items()}
    )
    results["two_devices"] = _to_floats(
        {
            k: strategy.reduce(tf.distribute.ReduceOp.MEAN, v, axis=None)
            for k, v in per_replica.items()
        }
    )
    if fit:
        with strategy.scope():
            model.compile()
        history = model.fit(inputs["videos"], batch_size=2, epochs=1, verbose=0)
        results["fit"] = {k: v[-1] for k, v in history.history.items()}
        results["iterations"] = [
            int(keras.ops.convert_to_numpy(o.iterations)) for o in model.optimizers
        ]
    results["devices"] = strategy.num_replicas_in_sync
    return results


def main() -> None:
    mode, directory = sys.argv[1], sys.argv[2]
    _prepare_devices(mode)
    if mode == "parity":
        results = parity(directory)
    else:
        results = distributed(directory, fit="fit" in sys.argv[3:])
    print("RESULTS " + json.dumps(results))


if __name__ == "__main__":
    main()
