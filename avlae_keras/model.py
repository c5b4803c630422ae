"""AVLAE (Adversarial Video Latent AutoEncoder) as a Keras model trained with Algorithm 1."""

from __future__ import annotations

import inspect

import keras
from keras import ops

from avlae_keras import losses
from avlae_keras.backend import (
    TrainStep,
    apply_gradients,
    draw_per_replica,
    input_gradients,
    loss_and_gradients,
)
from avlae_keras.inference import Inference
from avlae_keras.logged_metrics import (
    RunningMean,
    batch_spread,
    health_names,
    loss_term_names,
    relative_reconstruction_error,
    sign_accuracy,
)
from avlae_keras.networks import (
    AppearanceEncoder,
    ImageLatentDiscriminator,
    MappingNetwork,
    MotionEncoder,
    VideoDiscriminator,
    VideoGenerator,
)
from avlae_keras.networks.motion_encoder import resolve_flow_estimator
from avlae_keras.networks.video_generator import with_initial_frames_of_older_runs
from avlae_keras.optimizer_group import OptimizedByGroups

SEED_STATE_KEY = "latent_seed_generator_state"


def select_frames(videos, frame_indices):
    """videos (B, T, H, W, C), frame_indices (B,) -> frames (B, H, W, C), differentiable."""
    one_hot = ops.one_hot(frame_indices, videos.shape[1], dtype=videos.dtype)
    return ops.sum(videos * one_hot[:, :, None, None, None], axis=1)


@keras.saving.register_keras_serializable(package="avlae_keras")
class AVLAE(TrainStep, OptimizedByGroups, Inference, keras.Model):
    """Adversarial Video Latent AutoEncoder (Algorithm 1 of the paper).

    Networks: FA, FM (`appearance_mapping`, `motion_mapping`), G (`video_generator`), EA
    (`appearance_encoder`), DI (`image_discriminator`), EM (`motion_encoder`: a frozen flow
    estimator plus EM*, `motion_encoder.flow_sequence_encoder`) and DV (`video_discriminator`).

    `fit` takes videos (B, T, H, W, 3) in [-1, 1] and runs, per batch, Step I (update EM*, DV
    with L_V and EA, DI with L_I), Step II (update FA, FM, G adversarially) and Step III (update
    EA, EM*, G with the latent reconstruction loss), each with fresh zA, zM. Keras's callbacks
    work with it (docs/training_with_fit.md): `model.optimizer` stands for the four optimizers
    (`OptimizerGroup`: learning-rate callbacks set each one's rate, `iterations` counts training
    steps) and the logged terms declare their direction (`direction_of`) for `mode="auto"`.

    Args: the options of the same names in `avlae_keras.config.TrainConfig` (roles "model" and
    "architecture"), with the same defaults; their help texts there say what each does, and the
    README's "Training recipe" which ones are the paper's. `configs/paper_literal.flags` selects
    the paper's literal reading. Besides those:
        flow_estimator: a `flows.RAFT` instance, its serialized config, or a preset name such
            as "raft_sintel" (then built with `raft_dtype` and `raft_unroll`).
        mapping_layers: Dense layers in FA and FM.
        discriminator_hidden_dim: width of the DI and DV heads.
        seed: seed of the random latents and frame choices (None: a random one).
    """

    def __init__(
        self,
        resolution: int = 128,
        frames: int = 16,
        latent_dim: int = 128,
        base_channels: int = 80,
        mapping_layers: int = 5,
        discriminator_hidden_dim: int = 256,
        flow_estimator="raft_sintel",
        raft_iters: int = 12,
        raft_dtype: str = "float32",
        raft_unroll: bool = True,
        k1: float = 1.0,
        k2: float = 1.0,
        use_motion_encoder: bool = True,
        r1_gamma: float = 0.0,
        step3_updates_mappings: bool = False,
        generator_normalization: str = "frame",
        generator_normalize_each_conv: bool = True,
        generator_bias: bool = True,
        latent_injection: str = "split",
        generator_temporal_padding: str = "zeros",
        generator_initial_frames: int | None = None,
        mapping_lr_multiplier: float = 0.01,
        normalize_latents: bool = True,
        minibatch_stddev_group: int = 4,
        seed: int | None = None,
        **kwargs,
    ):
        options = {name: value for name, value in locals().items() if name in self.OPTION_NAMES}
        if not use_motion_encoder and k1 != 0:
            raise ValueError(
                "use_motion_encoder=False removes EM, so there is no wM' to reconstruct: "
                f"set k1=0 (got k1={k1})."
            )
        super().__init__(**kwargs)
        policy = self.dtype_policy

        mapping_options = {
            "lr_multiplier": mapping_lr_multiplier,
            "normalize_latents": normalize_latents,
            "dtype": policy,
        }

        # === Layers ===
        self.appearance_mapping = MappingNetwork(
            latent_dim, latent_dim, mapping_layers, name="appearance_mapping", **mapping_options
        )
        self.motion_mapping = MappingNetwork(
            latent_dim, latent_dim, mapping_layers, name="motion_mapping", **mapping_options
        )
        self.video_generator = VideoGenerator(
            resolution,
            frames,
            base_channels,
            normalization=generator_normalization,
            normalize_each_conv=generator_normalize_each_conv,
            use_bias=generator_bias,
            latent_injection=latent_injection,
            temporal_padding=generator_temporal_padding,
            initial_frames=generator_initial_frames,
            dtype=policy,
            name="video_generator",
        )
        self.appearance_encoder = AppearanceEncoder(
            resolution, base_channels, latent_dim, dtype=policy, name="appearance_encoder"
        )
        self.image_discriminator = ImageLatentDiscriminator(
            discriminator_hidden_dim,
            minibatch_stddev_group=minibatch_stddev_group,
            dtype=policy,
            name="image_discriminator",
        )
        self.motion_encoder = None
        if use_motion_encoder:
            self.motion_encoder = MotionEncoder(
                resolve_flow_estimator(flow_estimator, raft_dtype, raft_unroll),
                raft_iters=raft_iters,
                resolution=resolution,
                base_channels=base_channels,
                latent_dim=latent_dim,
                dtype=policy,
                name="motion_encoder",
            )
        self.video_discriminator = VideoDiscriminator(
            resolution,
            frames,
            base_channels,
            motion_dim=latent_dim if use_motion_encoder else 0,
            hidden_dim=discriminator_hidden_dim,
            minibatch_stddev_group=minibatch_stddev_group,
            dtype=policy,
            name="video_discriminator",
        )
        self.seed_generator = keras.random.SeedGenerator(seed, name="latent_seed_generator")
        self._loss_trackers = [
            RunningMean(name) for name in loss_term_names(r1_gamma) + health_names(k1, k2)
        ]

        # === Config ===
        for name, value in options.items():
            setattr(self, name, value)
        self.optimizers = []

        self._build_networks()

    def _build_networks(self) -> None:
        # Every network is built here from the static configuration; `build` has nothing to do.
        video_shape = (None, self.frames, self.resolution, self.resolution, 3)
        latent_shape = (None, self.latent_dim)
        self.appearance_mapping.build(latent_shape)
        self.motion_mapping.build(latent_shape)
        self.video_generator.build((None, 2 * self.latent_dim))
        self.appearance_encoder.build((None, self.resolution, self.resolution, 3))
        self.image_discriminator.build(latent_shape)
        motion_shape = None
        if self.motion_encoder is not None:
            self.motion_encoder.build(video_shape)
            motion_shape = latent_shape
        self.video_discriminator.build(video_shape, motion_shape)
        self.built = True

    def build(self, input_shape=None):
        self.built = True

    # --- update groups and optimizers -------------------------------------------------------

    @property
    def motion_encoder_trainable_variables(self) -> list:
        """EM*: the motion encoder without its flow estimator."""
        if self.motion_encoder is None:
            return []
        return self.motion_encoder.flow_sequence_encoder.trainable_variables

    def update_groups(self) -> dict[str, list]:
        """The variables each optimizer updates, in the order of `UPDATE_GROUPS`."""
        motion = self.motion_encoder_trainable_variables
        appearance = self.appearance_encoder.trainable_variables
        mappings = (
            self.appearance_mapping.trainable_variables + self.motion_mapping.trainable_variables
        )
        generator = self.video_generator.trainable_variables
        return {
            "video_discriminator": motion + self.video_discriminator.trainable_variables,
            "image_discriminator": appearance + self.image_discriminator.trainable_variables,
            "generator": mappings + generator,
            "latent_reconstruction": (
                appearance + motion + generator + (mappings if self.step3_updates_mappings else [])
            ),
        }

    @property
    def metrics(self) -> list:
        """One `RunningMean` per logged loss term and health statistic, named after it."""
        return list(self._loss_trackers)

    # --- the networks composed --------------------------------------------------------------

    def map_latents(self, z_a, z_m):
        """(wA, wM) = (FA(zA), FM(zM))."""
        return self.appearance_mapping(z_a), self.motion_mapping(z_m)

    def synthesize(self, w_a, w_m):
        """Videos G(concat(wA, wM)) in [-1, 1] for codes (B, latent_dim) each."""
        return self.video_generator(ops.concatenate([w_a, ops.cast(w_m, w_a.dtype)], axis=-1))

    def _video_logits(self, videos):
        motion_codes = None if self.motion_encoder is None else self.motion_encoder(videos)
        return self._score_videos(videos, motion_codes)

    def _score_videos(self, videos, motion_codes):
        """DV(x, EM(x)) for given motion codes (None without a motion encoder)."""
        if motion_codes is None:
            return self.video_discriminator(videos)
        return self.video_discriminator(videos, motion_codes)

    def _image_logits(self, frames):
        return self.image_discriminator(self.appearance_encoder(frames))

    # --- the loss terms of each step (pure functions of their inputs) ------------------------

    def discriminator_loss_terms(self, videos, fake_videos, real_frame_index, fake_frame_index):
        """Step I terms: L_V (DV real/fake) and L_I (DI real/fake), plus R1 when enabled."""
        indices = (real_frame_index, fake_frame_index)
        return self._discriminator_outputs(videos, fake_videos, *indices)[0]

    def _discriminator_outputs(self, videos, fake_videos, real_frame_index, fake_frame_index):
        """(Step I loss terms, health statistics)."""
        batch_size = ops.shape(videos)[0]
        fake_videos = ops.cast(fake_videos, videos.dtype)
        real_motion = fake_motion = None
        if self.motion_encoder is not None:
            # One flow-estimator call for both halves; DV sees each half on its own, so that a
            # batch statistic (minibatch_stddev_group) never mixes real and fake samples.
            motion_codes = self.motion_encoder(ops.concatenate([videos, fake_videos], axis=0))
            real_motion, fake_motion = motion_codes[:batch_size], motion_codes[batch_size:]
        real_video_logits = self._score_videos(videos, real_motion)
        fake_video_logits = self._score_videos(fake_videos, fake_motion)
        real_frames = select_frames(videos, real_frame_index)
        real_image_logits = self._image_logits(real_frames)
        fake_image_logits = self._image_logits(select_frames(fake_videos, fake_frame_index))
        terms = {
            "video_real_loss": losses.real_logistic_loss(real_video_logits),
            "video_fake_loss": losses.fake_logistic_loss(fake_video_logits),
            "image_real_loss": losses.real_logistic_loss(real_image_logits),
            "image_fake_loss": losses.fake_logistic_loss(fake_image_logits),
        }
        if self.r1_gamma > 0:
            # Gradient wrt the real video with its motion code as a second input, so the
            # penalty does not differentiate twice through the flow estimator.
            video_gradients = input_gradients(lambda x: self._score_videos(x, real_motion), videos)
            image_gradients = input_gradients(self._image_logits, real_frames)
            terms["video_r1_penalty"] = losses.r1_penalty(video_gradients, self.r1_gamma)
            terms["image_r1_penalty"] = losses.r1_penalty(image_gradients, self.r1_gamma)
        health = {
            "diversity_ratio": batch_spread(fake_videos) / (batch_spread(videos) + 1e-8),
            "video_real_accuracy": sign_accuracy(real_video_logits, real=True),
            "video_fake_accuracy": sign_accuracy(fake_video_logits, real=False),
            "image_real_accuracy": sign_accuracy(real_image_logits, real=True),
            "image_fake_accuracy": sign_accuracy(fake_image_logits, real=False),
        }
        return terms, health

    def generator_loss_terms(self, z_a, z_m, fake_frame_index):
        """Step II terms: non-saturating losses of G's videos through DV(., EM(.)) and DI(EA)."""
        w_a, w_m = self.map_latents(z_a, z_m)
        fake_videos = self.synthesize(w_a, w_m)
        fake_frames = select_frames(fake_videos, fake_frame_index)
        return {
            "generator_video_loss": losses.generator_logistic_loss(self._video_logits(fake_videos)),
            "generator_image_loss": losses.generator_logistic_loss(self._image_logits(fake_frames)),
        }

    def latent_reconstruction_terms(self, z_a, z_m, fake_frame_index):
        """Step III terms: K1 ||FM(zM) - EM(x_hat)||^2 and K2 ||FA(zA) - EA(x_hat_t)||^2."""
        return self._latent_reconstruction_outputs(z_a, z_m, fake_frame_index)[0]

    def _latent_reconstruction_outputs(self, z_a, z_m, fake_frame_index):
        """(Step III loss terms, relative reconstruction errors)."""
        w_a, w_m = self.map_latents(z_a, z_m)
        # The targets are constants: otherwise L_rec could fall by shrinking w itself.
        target_a, target_m = ops.stop_gradient(w_a), ops.stop_gradient(w_m)
        if not self.step3_updates_mappings:
            w_a, w_m = target_a, target_m
        fake_videos = self.synthesize(w_a, w_m)
        zero = ops.zeros((), "float32")
        terms = {"motion_reconstruction_loss": zero, "appearance_reconstruction_loss": zero}
        health = {}

        def add_terms(name: str, weight: float, target, encoded) -> None:
            loss = losses.latent_reconstruction_loss(target, encoded)
            terms[f"{name}_reconstruction_loss"] = weight * loss
            health[f"{name}_reconstruction_error"] = relative_reconstruction_error(target, encoded)

        if self.k1 != 0:
            add_terms("motion", self.k1, target_m, self.motion_encoder(fake_videos))
        if self.k2 != 0:
            frames = select_frames(fake_videos, fake_frame_index)
            add_terms("appearance", self.k2, target_a, self.appearance_encoder(frames))
        return terms, health

    # --- Algorithm 1 ------------------------------------------------------------------------

    def train_iteration(self, videos) -> dict:
        """One iteration of Algorithm 1 on a batch of real videos; returns the running means of
        every loss term and health statistic."""
        # Shape and dtype only: checked once when the step is traced, free per step.
        videos = ops.cast(self._check_videos(videos, "fit", check_range=False), "float32")
        batch_size = ops.shape(videos)[0]
        logs = {}
        logs.update(self._step_discriminators(videos, batch_size))
        logs.update(self._step_generator(batch_size))
        logs.update(self._step_latent_reconstruction(batch_size))
        for tracker in self._loss_trackers:
            tracker.update_state(logs[tracker.name])
        if self._optimizer_group() is not None:
            self.optimizer.iterations.assign_add(1)
        return {tracker.name: tracker.result() for tracker in self._loss_trackers}

    def _step_discriminators(self, videos, batch_size) -> dict:
        """Step I: update EM*, DV with L_V and EA, DI with L_I (fake videos are constants)."""
        z_a, z_m = self._sample_latents(batch_size)
        real_frame_index = self._sample_frame_indices(batch_size)
        fake_frame_index = self._sample_frame_indices(batch_size)
        fake_videos = ops.stop_gradient(self.synthesize(*self.map_latents(z_a, z_m)))
        groups = self.update_groups()
        video_variables = groups["video_discriminator"]
        image_variables = groups["image_discriminator"]

        def loss_fn():
            terms, health = self._discriminator_outputs(
                videos, fake_videos, real_frame_index, fake_frame_index
            )
            # L_V depends only on EM*, DV and L_I only on EA, DI: one backward pass serves both.
            return sum(terms.values()), {**terms, **health}

        _, logs, gradients = loss_and_gradients(loss_fn, video_variables + image_variables)
        split = len(video_variables)
        apply_gradients(self.optimizers[0], gradients[:split], video_variables)
        apply_gradients(self.optimizers[1], gradients[split:], image_variables)
        return logs

    def _step_generator(self, batch_size) -> dict:
        """Step II: update FA, FM, G through DI(EA(x_hat_t)) and DV(x_hat, EM(x_hat))."""
        z_a, z_m = self._sample_latents(batch_size)
        fake_frame_index = self._sample_frame_indices(batch_size)
        variables = self.update_groups()["generator"]

        def loss_fn():
            terms = self.generator_loss_terms(z_a, z_m, fake_frame_index)
            return sum(terms.values()), terms

        _, terms, gradients = loss_and_gradients(loss_fn, variables)
        apply_gradients(self.optimizers[2], gradients, variables)
        return terms

    def _step_latent_reconstruction(self, batch_size) -> dict:
        """Step III: update EA, EM*, G with L_rec (the flow estimator only passes gradients)."""
        z_a, z_m = self._sample_latents(batch_size)
        fake_frame_index = self._sample_frame_indices(batch_size)
        variables = self.update_groups()["latent_reconstruction"]

        def loss_fn():
            terms, health = self._latent_reconstruction_outputs(z_a, z_m, fake_frame_index)
            return sum(terms.values()), {**terms, **health}

        _, logs, gradients = loss_and_gradients(loss_fn, variables)
        apply_gradients(self.optimizers[3], gradients, variables)
        return logs

    def _sample_latents(self, batch_size):
        def draw(rows):
            return keras.random.normal((rows, self.latent_dim), seed=self.seed_generator)

        return draw_per_replica(draw, batch_size), draw_per_replica(draw, batch_size)

    def _sample_frame_indices(self, batch_size):
        def draw(rows):
            return keras.random.randint((rows,), 0, self.frames, seed=self.seed_generator)

        return draw_per_replica(draw, batch_size)

    def save_own_variables(self, store) -> None:
        super().save_own_variables(store)
        # The latent/frame random stream is training state too: resume it exactly.
        store[SEED_STATE_KEY] = keras.ops.convert_to_numpy(self.seed_generator.state.value)

    def load_own_variables(self, store) -> None:
        keys = list(store.keys())
        if SEED_STATE_KEY in keys:
            self.seed_generator.state.assign(store[SEED_STATE_KEY])
        super().load_own_variables({k: store[k] for k in keys if k != SEED_STATE_KEY})

    @classmethod
    def from_config(cls, config: dict) -> AVLAE:
        return super().from_config(with_initial_frames_of_older_runs(config, default_frames=16))

    def get_config(self) -> dict:
        config = {**super().get_config()}
        config.update({name: getattr(self, name) for name in self.OPTION_NAMES})
        if self.motion_encoder is not None:
            flow_estimator = self.motion_encoder.flow_estimator
            config["flow_estimator"] = keras.saving.serialize_keras_object(flow_estimator)
        else:
            config["flow_estimator"] = None
        return config


# The constructor's arguments are the model's options, stored under their names and making up its
# config; but the flow estimator, a network that the motion encoder holds.
AVLAE.OPTION_NAMES = tuple(
    name
    for name in inspect.signature(AVLAE.__init__).parameters
    if name not in ("self", "kwargs", "flow_estimator")
)
