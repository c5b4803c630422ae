"""AVLAE (Adversarial Video Latent AutoEncoder) in Keras 3, for TensorFlow and JAX.

The model and networks are imported on first use, so that `avlae_keras.data` (which needs
neither Keras nor TensorFlow) stays light to import.
"""

import importlib

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


def __getattr__(name: str):
    if name in _EXPORTS:
        value = getattr(importlib.import_module(_EXPORTS[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'avlae_keras' has no attribute {name!r}")


def __dir__():
    return sorted([*globals(), *__all__])
