"""The seven AVLAE networks: FA and FM (MappingNetwork), G, EA, DI, EM (with EM*) and DV."""

from avlae_keras.networks.appearance_encoder import AppearanceEncoder
from avlae_keras.networks.image_latent_discriminator import ImageLatentDiscriminator
from avlae_keras.networks.mapping_network import MappingNetwork
from avlae_keras.networks.motion_encoder import FlowSequenceEncoder, MotionEncoder
from avlae_keras.networks.video_discriminator import VideoDiscriminator
from avlae_keras.networks.video_generator import SpatioTemporalUpBlock, VideoGenerator

__all__ = [
    "AppearanceEncoder",
    "FlowSequenceEncoder",
    "ImageLatentDiscriminator",
    "MappingNetwork",
    "MotionEncoder",
    "SpatioTemporalUpBlock",
    "VideoDiscriminator",
    "VideoGenerator",
]
