"""Video-generation metrics: Frechet distance (FID/FVD), Inception Score, I3D and 3D ResNeXt,
and the disentanglement of appearance and motion codes."""

from avlae_keras.metrics.converters import (
    assign_torch_state,
    load_i3d_weights,
    load_resnext3d_weights,
)
from avlae_keras.metrics.disentanglement import (
    appearance_consistency,
    colour_histogram_features,
    encode_videos,
    encoder_factor_table,
    end_point_error,
    factor_predictability,
    format_factor_table,
    latent_swap_consistency,
    motion_consistency,
    raft_encoder_features,
    raft_flow_fn,
    video_flows,
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
from avlae_keras.metrics.host_constant import HostConstant
from avlae_keras.metrics.i3d import InceptionI3D, i3d_state_dict_shapes
from avlae_keras.metrics.inception_score import inception_score
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
    "appearance_consistency",
    "assign_torch_state",
    "colour_histogram_features",
    "compute_fvd",
    "compute_inception_score",
    "compute_video_fid",
    "downsample_videos",
    "encode_videos",
    "encoder_factor_table",
    "end_point_error",
    "factor_predictability",
    "feature_statistics",
    "format_factor_table",
    "frechet_distance",
    "frechet_distance_from_statistics",
    "generated_feature_statistics",
    "i3d_state_dict_shapes",
    "inception_score",
    "latent_swap_consistency",
    "load_i3d_weights",
    "load_resnext3d_weights",
    "motion_consistency",
    "raft_encoder_features",
    "raft_flow_fn",
    "real_feature_statistics",
    "resnext3d_state_dict_shapes",
    "trace_sqrt_product",
    "video_flows",
]
