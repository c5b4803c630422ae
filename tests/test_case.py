"""Checks every Keras model and layer of the project must pass (keras-hub's TestCase, in small)."""

from __future__ import annotations

import json

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
