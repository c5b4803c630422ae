"""`import avlae_keras` is enough for `keras.saving.load_model` to find the package's classes,
in either import order, without importing the model (and Keras) at `import avlae_keras`."""

import subprocess
import sys

import keras
import numpy as np

import avlae_keras
from avlae_keras.networks import MappingNetwork
from tests.conftest import REPO_ROOT

_IN_A_FRESH_PROCESS = """
import sys
import avlae_keras
assert "keras" not in sys.modules and "avlae_keras.model" not in sys.modules
import keras
network = keras.saving.load_model(sys.argv[1]).layers[0]
print(type(network).__module__, type(network).__name__, network.num_layers)
assert "avlae_keras.model" in sys.modules  # imported by loading, registering the real classes
print(keras.saving.get_registered_object("avlae_keras>AVLAE").__module__)
"""


def test_saved_classes_are_every_registered_class_of_the_package():
    import avlae_keras.model

    registered = {
        name.split(">", 1)[1]: cls.__module__
        for name, cls in keras.saving.get_custom_objects().items()
        if name.startswith("avlae_keras>")
    }
    assert registered == avlae_keras.SAVED_CLASSES


def test_load_after_import_avlae_keras_then_keras_in_a_fresh_process(tmp_path):
    path = tmp_path / "mapping.keras"
    keras.Sequential([keras.Input((4,)), MappingNetwork(4, 4, num_layers=2)]).save(path)
    result = subprocess.run(
        [sys.executable, "-c", _IN_A_FRESH_PROCESS, str(path)],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.split() == [
        "avlae_keras.networks.mapping_network",
        "MappingNetwork",
        "2",
        "avlae_keras.model",
    ]


def test_load_model_through_the_stand_ins(make_tiny_model, tmp_path):
    """As after `import keras, avlae_keras` in a fresh process: the registry holds the stand-ins
    until loading imports the model."""
    model = make_tiny_model()  # (the tiny model of other tests: its shapes are compiled)
    path = tmp_path / "avlae.keras"
    model.save(path)
    registry = keras.saving.get_custom_objects()
    names = [f"avlae_keras>{name}" for name in avlae_keras.SAVED_CLASSES]
    real = {name: registry.pop(name) for name in names}
    try:
        avlae_keras._register_with_keras()
        assert type(registry["avlae_keras>AVLAE"]).__name__ == "_ImportedWhenLoaded"
        with keras.saving.custom_object_scope({}):
            loaded = keras.saving.load_model(path)
    finally:
        registry.update(real)
    assert type(loaded) is type(model)
    for saved, restored in zip(model.weights, loaded.weights, strict=True):
        np.testing.assert_array_equal(np.asarray(saved), np.asarray(restored))
