"""AVLAE (Adversarial Video Latent AutoEncoder) in Keras 3, for TensorFlow and JAX.

The model and networks are imported on first use, so that `avlae_keras.data` (which needs
neither Keras nor TensorFlow) and the commands' `--help` stay light to import. Their classes
are nevertheless known to `keras.saving.load_model` as soon as both `avlae_keras` and `keras`
are imported, in either order (see `_register_with_keras`).
"""

import importlib
import importlib.abc
import importlib.util
import sys

from flows.lazy_exports import lazy_exports

_EXPORTS = {
    "AVLAE": "avlae_keras.model",
    "UPDATE_GROUPS": "avlae_keras.optimizer_group",
    "default_optimizers": "avlae_keras.optimizer_group",
    "EvalConfig": "avlae_keras.config",
    "ExportConfig": "avlae_keras.config",
    "SampleConfig": "avlae_keras.config",
    "TrainConfig": "avlae_keras.config",
    "AppearanceEncoder": "avlae_keras.networks",
    "FlowSequenceEncoder": "avlae_keras.networks",
    "ImageLatentDiscriminator": "avlae_keras.networks",
    "MappingNetwork": "avlae_keras.networks",
    "MotionEncoder": "avlae_keras.networks",
    "SpatioTemporalUpBlock": "avlae_keras.networks",
    "VideoDiscriminator": "avlae_keras.networks",
    "VideoGenerator": "avlae_keras.networks",
}

__all__ = sorted(_EXPORTS)


__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)


# === Loading saved models without importing the model first ===================================
# Keras finds a saved object's class only in its registry of custom objects, filled by
# `keras.saving.register_keras_serializable` when the class's module is imported; importing
# avlae_keras.model here would import Keras and its backend (seconds) with every
# `import avlae_keras`. Instead each class a saved AVLAE or network may name gets a stand-in in
# the registry that imports avlae_keras.model when Keras asks it to build the object; importing
# that module registers the real classes over the stand-ins.

# The classes registered as "avlae_keras>NAME", by the module that defines them.
SAVED_CLASSES = {
    "AVLAE": "avlae_keras.model",
    "AppearanceEncoder": "avlae_keras.networks.appearance_encoder",
    "FactorizedConv3D": "avlae_keras.networks.factorized_conv3d",
    "FactorizedConv3DTranspose": "avlae_keras.networks.factorized_conv3d",
    "FlowSequenceEncoder": "avlae_keras.networks.motion_encoder",
    "FrameNormalization": "avlae_keras.networks.video_generator",
    "ImageLatentDiscriminator": "avlae_keras.networks.image_latent_discriminator",
    "LatentModulation": "avlae_keras.networks.video_generator",
    "MappingNetwork": "avlae_keras.networks.mapping_network",
    "MotionEncoder": "avlae_keras.networks.motion_encoder",
    "ScaledDense": "avlae_keras.networks.mapping_network",
    "SpatioTemporalUpBlock": "avlae_keras.networks.video_generator",
    "VideoDiscriminator": "avlae_keras.networks.video_discriminator",
    "VideoGenerator": "avlae_keras.networks.video_generator",
}


class _ImportedWhenLoaded:
    """Keras's registry entry for one class until its module is imported."""

    def __init__(self, name: str):
        self.name = name

    def from_config(self, config: dict):
        # The whole model, so that every class it may build (RAFT's too) is registered.
        importlib.import_module("avlae_keras.model")
        cls = getattr(importlib.import_module(SAVED_CLASSES[self.name]), self.name)
        return cls.from_config(config)


def _register_with_keras() -> None:
    registry = sys.modules["keras"].saving.get_custom_objects()
    for name in SAVED_CLASSES:
        registry.setdefault(f"avlae_keras>{name}", _ImportedWhenLoaded(name))


class _RegisterAfterKerasImport(importlib.abc.MetaPathFinder):
    """Runs `_register_with_keras` right after `keras` is imported (once), by wrapping the
    module loader's `exec_module`; finds nothing itself."""

    def find_spec(self, fullname, path=None, target=None):
        if fullname != "keras":
            return None
        sys.meta_path.remove(self)
        spec = importlib.util.find_spec("keras")
        if spec is None or spec.loader is None:
            return spec
        exec_module = spec.loader.exec_module

        def exec_module_then_register(module) -> None:
            exec_module(module)
            _register_with_keras()

        spec.loader.exec_module = exec_module_then_register
        return spec


if "keras" in sys.modules:
    _register_with_keras()
else:
    sys.meta_path.insert(0, _RegisterAfterKerasImport())
