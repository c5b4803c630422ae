"""Video-generation metrics: Frechet distance (FID/FVD), Inception Score, I3D and 3D ResNeXt."""

from avlae_keras.metrics.converters import (
    assign_torch_state,
    load_i3d_weights,
    load_resnext3d_weights,
)
from avlae_keras.metrics.extractors import (
    FeatureExtractor,
    I3DFeatureExtractor,
    KerasVideoFeatureExtractor,
    ResNeXtFeatureExtractor,
    VideoFeatureModel,
)
from avlae_keras.metrics.frechet import (
    FeatureStatistics,
    RunningStatistics,
    feature_statistics,
    frechet_distance,
    frechet_distance_from_statistics,
    trace_sqrt_product,
)
from avlae_keras.metrics.i3d import InceptionI3D, i3d_state_dict_shapes
from avlae_keras.metrics.inception_score import inception_score
from avlae_keras.metrics.initializers import HostConstant
from avlae_keras.metrics.resnext3d import KINETICS_MEAN, ResNeXt3D, resnext3d_state_dict_shapes
from avlae_keras.metrics.video_metrics import (
    compute_fvd,
    compute_inception_score,
    compute_video_fid,
    downsample_videos,
    generated_feature_statistics,
    real_feature_statistics,
)

__all__ = [
    "KINETICS_MEAN",
    "FeatureExtractor",
    "FeatureStatistics",
    "HostConstant",
    "I3DFeatureExtractor",
    "InceptionI3D",
    "KerasVideoFeatureExtractor",
    "ResNeXt3D",
    "ResNeXtFeatureExtractor",
    "RunningStatistics",
    "VideoFeatureModel",
    "assign_torch_state",
    "compute_fvd",
    "compute_inception_score",
    "compute_video_fid",
    "downsample_videos",
    "feature_statistics",
    "frechet_distance",
    "frechet_distance_from_statistics",
    "generated_feature_statistics",
    "i3d_state_dict_shapes",
    "inception_score",
    "load_i3d_weights",
    "load_resnext3d_weights",
    "real_feature_statistics",
    "resnext3d_state_dict_shapes",
    "trace_sqrt_product",
]
