"""Checks every Keras model and layer of the project must pass (keras-hub's TestCase, in small)."""

from __future__ import annotations

import json
from collections.abc import Callable

import keras
import numpy as np


def run_serialization_test(instance) -> None:
    """get_config -> from_config -> get_config is the identity, and the JSON form round-trips."""
    config = instance.get_config()
    revived = instance.__class__.from_config(config)
    assert revived.get_config() == config
    serialized = keras.saving.serialize_keras_object(instance)
    assert json.loads(json.dumps(serialized)) == serialized
    again = keras.saving.deserialize_keras_object(serialized)
    assert again.get_config() == config


def run_saving_test(model, inputs, tmp_path, call=None, atol: float = 1e-6) -> None:
    """`.keras` save and `load_model` give the same weights and the same outputs."""
    call = call or (lambda m: m(inputs))
    expected = keras.tree.map_structure(np.asarray, call(model))
    path = str(tmp_path / "model.keras")
    model.save(path)
    restored = keras.saving.load_model(path)
    assert len(restored.weights) == len(model.weights)
    for original, loaded in zip(model.weights, restored.weights, strict=True):
        np.testing.assert_array_equal(np.asarray(original), np.asarray(loaded))
    actual = keras.tree.map_structure(np.asarray, call(restored))
    keras.tree.map_structure(
        lambda a, b: np.testing.assert_allclose(a, b, atol=atol, rtol=0), expected, actual
    )


# Tests run tiny inputs the quickest way on each backend: JAX op by op compiles every operation
# anew for each input shape, so whole functions are jitted there; on TensorFlow an XLA compile
# costs seconds, far more than such small computations eagerly (RAFT-small's input gradients
# at 64 px: 10 CPU-s compiled, 0.7 eagerly). Other tests check that compiled and eager agree.


def jitted_on_jax(fn: Callable) -> Callable:
    """`fn` jitted on JAX; on TensorFlow `fn` itself, run eagerly."""
    if keras.backend.backend() == "jax":
        import jax

        return jax.jit(fn)
    return fn


def eager_on_tensorflow(raft):
    """`raft` (a `flows.RAFT`) with `run_eagerly` on TensorFlow, so that its `compute_flow` runs
    op by op instead of compiling per input shape; unchanged on JAX. Returns it."""
    raft.run_eagerly = keras.backend.backend() == "tensorflow"
    return raft
