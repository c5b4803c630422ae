"""What AVLAE logs at every step: the loss terms of Algorithm 1's three steps and the health
statistics beside them, each as a running mean with the direction in which it improves."""

from __future__ import annotations

import keras
from keras import ops

from avlae_keras.keras_internals import MetricsList, set_metric_direction


def loss_term_names(r1_gamma: float = 0.0) -> list[str]:
    """Names of the logged loss terms: Step I, Step II, Step III."""
    names = ["video_real_loss", "video_fake_loss", "image_real_loss", "image_fake_loss"]
    if r1_gamma > 0:
        names += ["video_r1_penalty", "image_r1_penalty"]
    return [
        *names,
        "generator_video_loss",
        "generator_image_loss",
        "motion_reconstruction_loss",
        "appearance_reconstruction_loss",
    ]


# Health statistics logged beside the losses (never differentiated):
# - diversity_ratio: spread of G's batch (the std across samples, averaged over pixels) over the
#   same for the real batch; near 0 when G gives every latent the same video;
# - *_accuracy: how often DV and DI put real (logit > 0) and fake (logit < 0) on the right side;
# - *_reconstruction_error: the Step III error over the variance of the code across the batch,
#   so 1 means "no better than predicting the mean code".
HEALTH_NAMES = (
    "diversity_ratio",
    "video_real_accuracy",
    "video_fake_accuracy",
    "image_real_accuracy",
    "image_fake_accuracy",
    "motion_reconstruction_error",
    "appearance_reconstruction_error",
)


# The direction in which each logged quantity improves, for `mode="auto"` of Keras's monitoring
# callbacks: every loss term goes "down" (each is what its step minimises; in a GAN a lower
# discriminator or generator loss is progress of that player, not better videos), and so do the
# relative reconstruction errors. The accuracies and the diversity ratio have no direction (the
# discriminators push accuracy up while G pushes it down; a diversity ratio above 1 is no
# better than 1): monitoring them needs an explicit `mode`.
UNDIRECTED_NAMES = (
    "diversity_ratio",
    "video_real_accuracy",
    "video_fake_accuracy",
    "image_real_accuracy",
    "image_fake_accuracy",
)


def direction_of(name: str) -> str | None:
    """How a logged quantity improves: "down" (lower is better), or None (no direction)."""
    return None if name in UNDIRECTED_NAMES else "down"


class RunningMean(MetricsList):
    """The running mean of one logged quantity, under its name, with the direction in which it
    improves (`direction_of`): `result()` is the mean, a scalar, as `keras.metrics.Mean`'s.

    It wraps its `keras.metrics.Mean` in a `MetricsList` because that is where Keras's
    `MonitorCallback` looks for a metric's direction when `mode="auto"`: so
    `EarlyStopping(monitor="generator_video_loss")`, `ModelCheckpoint(save_best_only=True,
    monitor=...)` and `ReduceLROnPlateau(monitor=...)` need no `mode` for a loss term, and raise
    Keras's "pass mode" error for a quantity without a direction."""

    def __init__(self, name: str):
        mean = keras.metrics.Mean(name=name)
        self.direction = direction_of(name)
        if self.direction is not None:
            set_metric_direction(mean, self.direction)
        super().__init__([mean], name=name)

    def update_state(self, value) -> None:
        self.metrics[0].update_state(value)

    def result(self):
        return self.metrics[0].result()


def health_names(k1: float = 1.0, k2: float = 1.0) -> list[str]:
    """The health statistics a model with these reconstruction weights logs."""
    skipped = {"motion_reconstruction_error"} if k1 == 0 else set()
    skipped |= {"appearance_reconstruction_error"} if k2 == 0 else set()
    return [name for name in HEALTH_NAMES if name not in skipped]


def batch_spread(videos):
    """Mean over pixels of the standard deviation across the batch (B, ...) -> scalar."""
    return ops.mean(ops.std(ops.cast(videos, "float32"), axis=0))


def relative_reconstruction_error(target_codes, encoded_codes):
    """E||w - w'||^2 / E||w - E[w]||^2 over the batch: 1 for an encoder that outputs the mean."""
    target_codes = ops.cast(target_codes, "float32")
    error = ops.mean(ops.square(target_codes - ops.cast(encoded_codes, "float32")))
    return error / (ops.mean(ops.var(target_codes, axis=0)) + 1e-8)


def sign_accuracy(logits, real: bool):
    """How often a discriminator puts real (logit > 0) or fake (logit < 0) samples right."""
    correct = ops.greater(logits, 0.0) if real else ops.less(logits, 0.0)
    return ops.mean(ops.cast(correct, "float32"))
