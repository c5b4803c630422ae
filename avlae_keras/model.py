"""AVLAE (Adversarial Video Latent AutoEncoder) as a Keras model trained with Algorithm 1."""

from __future__ import annotations

import keras
import numpy as np
from keras import ops

from avlae_keras import losses
from avlae_keras.backend import (
    TrainStep,
    apply_gradients,
    default_jit_compile,
    draw_per_replica,
    input_gradients,
    loss_and_gradients,
    value_range,
)
from avlae_keras.logged_metrics import (
    RunningMean,
    health_names,
    loss_term_names,
)
from avlae_keras.networks import (
    AppearanceEncoder,
    ImageLatentDiscriminator,
    MappingNetwork,
    MotionEncoder,
    VideoDiscriminator,
    VideoGenerator,
)
from avlae_keras.networks.video_generator import with_initial_frames_of_older_runs
from avlae_keras.optimizer_group import UPDATE_GROUPS, OptimizerGroup, default_optimizers

SEED_STATE_KEY = "latent_seed_generator_state"
# `model.optimizer.iterations`, saved with the model's own variables (see `OptimizerGroup`).
ITERATIONS_KEY = "optimizer_iterations"


def batch_spread(videos):
    """Mean over pixels of the standard deviation across the batch (B, ...) -> scalar."""
    return ops.mean(ops.std(ops.cast(videos, "float32"), axis=0))


def relative_reconstruction_error(target_codes, encoded_codes):
    """E||w - w'||^2 / E||w - E[w]||^2 over the batch: 1 for an encoder that outputs the mean."""
    target_codes = ops.cast(target_codes, "float32")
    error = ops.mean(ops.square(target_codes - ops.cast(encoded_codes, "float32")))
    return error / (ops.mean(ops.var(target_codes, axis=0)) + 1e-8)


def _accuracy(logits, real: bool):
    correct = ops.greater(logits, 0.0) if real else ops.less(logits, 0.0)
    return ops.mean(ops.cast(correct, "float32"))


# Videos are floats in [-1, 1]; a little past it is rounding (e.g. from bfloat16), not a mistake.
_RANGE_TOLERANCE = 1e-3


def _static_shape(values) -> tuple | None:
    """The shape as a tuple, None for dimensions not known as numbers (traced batch sizes,
    JAX's symbolic dimensions); None when even the rank is unknown."""
    try:
        dimensions = tuple(values.shape)
    except (TypeError, ValueError):  # a TensorFlow shape of unknown rank
        return None
    return tuple(int(d) if isinstance(d, int | np.integer) else None for d in dimensions)


def select_frames(videos, frame_indices):
    """videos (B, T, H, W, C), frame_indices (B,) -> frames (B, H, W, C), differentiable."""
    one_hot = ops.one_hot(frame_indices, videos.shape[1], dtype=videos.dtype)
    return ops.sum(videos * one_hot[:, :, None, None, None], axis=1)


def _resolve_flow_estimator(flow_estimator, dtype: str = "float32", unroll: bool = True):
    if isinstance(flow_estimator, str):
        from flows import RAFT

        return RAFT.from_preset(flow_estimator, dtype=dtype, unroll=unroll)
    if isinstance(flow_estimator, dict):
        return keras.saving.deserialize_keras_object(flow_estimator)
    if flow_estimator is None:
        raise ValueError("use_motion_encoder=True needs a flow_estimator (a flows.RAFT or name).")
    return flow_estimator


@keras.saving.register_keras_serializable(package="avlae_keras")
class AVLAE(TrainStep, keras.Model):
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

    Args:
        resolution: frame height and width (64 or 128 in the paper; any power of two >= 8).
        frames: frames per video T.
        latent_dim: size of zA, zM, wA, wM.
        base_channels: width of G, EA, EM* and DV.
        mapping_layers: Dense layers in FA and FM.
        discriminator_hidden_dim: width of the DI and DV heads.
        flow_estimator: a `flows.RAFT` instance or a preset name such as "raft_sintel".
        raft_iters: RAFT refinement iterations inside EM.
        raft_dtype: dtype policy of a RAFT built from a preset name: "float32" (default) or
            "mixed_bfloat16" (correlation, coordinates and flow stay float32; on the golden
            frames 0.005 px mean EPE from float32 for raft-sintel; benchmarks/RESULTS.md).
        raft_unroll: True (default): RAFT's iterations unrolled; False: one XLA loop, so that
            compilation does not grow with `raft_iters` (12 iterations compile in 1.04x the time
            of 1), but the step is slower (backward up to 2x on CPU, 5% on an H200, with 27%
            more device memory; benchmarks/RESULTS.md). Applies to a RAFT built from a preset
            name; a `flows.RAFT` instance keeps its own `unroll`.
        k1: weight of the wM reconstruction term (0 removes it).
        k2: weight of the wA reconstruction term (0 removes it).
        use_motion_encoder: False is the paper's "-EM" ablation: no EM, DV sees the video only
            (there is then no wM' to reconstruct, so k1 must be 0).
        r1_gamma: R1 penalty weight on real inputs of DV and DI (0: off, as in the paper).
        step3_updates_mappings: False (the paper): Step III updates EA, EM*, G, with FA(zA),
            FM(zM) as constant targets. True: FA and FM are updated too, through G's input only
            (ALAE's code); the targets stay constants either way.
        The next nine options are where the paper is silent, except the mapping networks'
        learning-rate multiplier, a departure (the paper trains every network at 2e-4). Their
        defaults are the recipe (README, "Training recipe"); `configs/paper_literal.flags`
        selects the literal reading (layer, False, False, "input", "zeros", 4 initial frames,
        1.0, False, 0).
        generator_normalization: "layer", "instance" or "frame" (see `SpatioTemporalUpBlock`).
        generator_normalize_each_conv: normalise after both of each block's convolutions.
        generator_bias: biases in G's convolutions.
        latent_injection: "input" (the paper), "every_block" (wV modulates every block) or
            "split" (wM after temporal, wA after spatial convolutions; see `VideoGenerator`).
        generator_temporal_padding: "zeros" or "replicate": what G's temporal convolutions see
            beyond the end frames (see `SpatioTemporalUpBlock`).
        generator_initial_frames: frames of G's first block, doubled by the next blocks (None:
            every frame, no temporal upsampling; see `VideoGenerator`).
        mapping_lr_multiplier: learning-rate multiplier of FA and FM (1: plain Dense layers;
            otherwise `ScaledDense` layers).
        normalize_latents: FA and FM normalise z to unit root-mean-square first.
        minibatch_stddev_group: DV and DI see the standard deviation of their features across
            groups of this many samples (0: off); the batch on each device must be a multiple.
        seed: seed of the random latents and frame choices.
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
                _resolve_flow_estimator(flow_estimator, raft_dtype, raft_unroll),
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
        self.resolution = resolution
        self.frames = frames
        self.latent_dim = latent_dim
        self.base_channels = base_channels
        self.mapping_layers = mapping_layers
        self.discriminator_hidden_dim = discriminator_hidden_dim
        self.raft_iters = raft_iters
        self.raft_dtype = raft_dtype
        self.raft_unroll = raft_unroll
        self.k1 = k1
        self.k2 = k2
        self.use_motion_encoder = use_motion_encoder
        self.r1_gamma = r1_gamma
        self.step3_updates_mappings = step3_updates_mappings
        self.generator_normalization = generator_normalization
        self.generator_normalize_each_conv = generator_normalize_each_conv
        self.generator_bias = generator_bias
        self.latent_injection = latent_injection
        self.generator_temporal_padding = generator_temporal_padding
        self.generator_initial_frames = generator_initial_frames
        self.mapping_lr_multiplier = mapping_lr_multiplier
        self.normalize_latents = normalize_latents
        self.minibatch_stddev_group = minibatch_stddev_group
        self.seed = seed
        self.optimizers = []

        self._build_networks()

    def _build_networks(self) -> None:
        video_shape = (None, self.frames, self.resolution, self.resolution, 3)
        latent_shape = (None, self.latent_dim)
        self.appearance_mapping.build(latent_shape)
        self.motion_mapping.build(latent_shape)
        self.video_generator.build((None, 2 * self.latent_dim))
        self.appearance_encoder.build((None, self.resolution, self.resolution, 3))
        self.image_discriminator.build(latent_shape)
        if self.motion_encoder is not None:
            self.motion_encoder.build(video_shape)
        self.video_discriminator.build(
            video_shape, latent_shape if self.motion_encoder is not None else None
        )
        self.built = True

    def build(self, input_shape=None):
        # Every network is built in the constructor from the static configuration.
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

    def compile(
        self,
        optimizers: list | None = None,
        jit_compile: bool | None = None,
        run_eagerly: bool = False,
        steps_per_execution: int = 1,
    ) -> None:
        """`optimizers`: four optimizers, one per update group (`UPDATE_GROUPS` order);
        default the paper's Adam for each. `jit_compile` defaults to XLA on both backends (off
        under a multi-replica `tf.distribute` strategy, which XLA cannot compile)."""
        optimizers = default_optimizers() if optimizers is None else list(optimizers)
        if len(optimizers) != len(UPDATE_GROUPS):
            raise ValueError(
                f"AVLAE needs {len(UPDATE_GROUPS)} optimizers, one per update group "
                f"{UPDATE_GROUPS}; got {len(optimizers)}."
            )
        if jit_compile is None:
            jit_compile = default_jit_compile()
        super().compile(
            optimizer=optimizers[0],
            jit_compile=jit_compile,
            run_eagerly=run_eagerly,
            steps_per_execution=steps_per_execution,
        )
        self.optimizers = optimizers
        self.optimizer = OptimizerGroup(optimizers, self.update_groups().values())
        self.optimizer.build()

    def _optimizer_group(self) -> OptimizerGroup | None:
        """`self.optimizer` once compiled, else None."""
        group = getattr(self, "optimizer", None)
        return group if isinstance(group, OptimizerGroup) else None

    def get_compile_config(self) -> dict:
        if not self.compiled:
            return {}
        return {
            "optimizers": [keras.saving.serialize_keras_object(o) for o in self.optimizers],
            "jit_compile": self.jit_compile,
            "run_eagerly": self.run_eagerly,
            "steps_per_execution": self.steps_per_execution,
        }

    def compile_from_config(self, config: dict) -> None:
        config = dict(config)
        config["optimizers"] = [
            keras.saving.deserialize_keras_object(o) for o in config["optimizers"]
        ]
        self.compile(**config)

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
        return self._discriminator_outputs(videos, fake_videos, real_frame_index, fake_frame_index)[
            0
        ]

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
            "video_real_accuracy": _accuracy(real_video_logits, real=True),
            "video_fake_accuracy": _accuracy(fake_video_logits, real=False),
            "image_real_accuracy": _accuracy(real_image_logits, real=True),
            "image_fake_accuracy": _accuracy(fake_image_logits, real=False),
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
        if self.k1 != 0:
            encoded_motion = self.motion_encoder(fake_videos)
            terms["motion_reconstruction_loss"] = self.k1 * losses.latent_reconstruction_loss(
                target_m, encoded_motion
            )
            health["motion_reconstruction_error"] = relative_reconstruction_error(
                target_m, encoded_motion
            )
        if self.k2 != 0:
            encoded_appearance = self.appearance_encoder(
                select_frames(fake_videos, fake_frame_index)
            )
            terms["appearance_reconstruction_loss"] = self.k2 * losses.latent_reconstruction_loss(
                target_a, encoded_appearance
            )
            health["appearance_reconstruction_error"] = relative_reconstruction_error(
                target_a, encoded_appearance
            )
        return terms, health

    def compute_step_losses(self, videos, z_a, z_m, real_frame_index, fake_frame_index) -> dict:
        """The three steps' losses for given latents and frame indices, without updating
        anything: {"step_1", "step_2", "step_3"} and every term. Deterministic, for checks."""
        videos = ops.cast(self._check_videos(videos, "compute_step_losses"), "float32")
        fake_videos = ops.stop_gradient(self.synthesize(*self.map_latents(z_a, z_m)))
        terms = self.discriminator_loss_terms(
            videos, fake_videos, real_frame_index, fake_frame_index
        )
        step_1 = sum(terms.values())
        generator_terms = self.generator_loss_terms(z_a, z_m, fake_frame_index)
        reconstruction_terms = self.latent_reconstruction_terms(z_a, z_m, fake_frame_index)
        return {
            "step_1": step_1,
            "step_2": sum(generator_terms.values()),
            "step_3": sum(reconstruction_terms.values()),
            **terms,
            **generator_terms,
            **reconstruction_terms,
        }

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

    # --- inference --------------------------------------------------------------------------

    def generate(self, num: int | None = None, z_a=None, z_m=None, seed: int | None = None):
        """Videos G(FA(zA), FM(zM)) in [-1, 1], (num, T, H, W, 3). Missing latents are drawn
        from N(0, I) with `seed`; given ones are (num, latent_dim) floats."""
        if num is not None and not ops.is_tensor(num):
            if isinstance(num, bool) or not isinstance(num, int | np.integer):
                raise TypeError(
                    f"generate: num, the number of videos to make, must be a whole number; "
                    f"got {num!r} of type {type(num).__name__}"
                )
            if num < 1:
                raise ValueError(
                    f"generate: num, the number of videos to make, must be at least 1; got {num}"
                )
        z_a, z_m = self._check_latents(z_a, z_m, num)
        given = z_a if z_a is not None else z_m
        if num is None:
            if given is None:
                raise ValueError(
                    "generate() needs `num` (the number of videos) or latents z_a / z_m."
                )
            num = ops.shape(given)[0]
        if z_a is None or z_m is None:  # (a SeedGenerator is a variable: only when needed)
            seed_generator = keras.random.SeedGenerator(seed)
            if z_a is None:
                z_a = keras.random.normal((num, self.latent_dim), seed=seed_generator)
            if z_m is None:
                z_m = keras.random.normal((num, self.latent_dim), seed=seed_generator)
        return self.synthesize(*self.map_latents(z_a, z_m))

    def encode(self, videos, frame_index: int | None = None):
        """(wA', wM') = (EA(x_t), EM(x)) for videos x (B, T, H, W, 3) in [-1, 1]; x_t is frame
        `frame_index` (default the middle one)."""
        return self._encode(videos, frame_index, "encode")

    def reconstruct(self, videos, frame_index: int | None = None):
        """G(EA(x_t), EM(x)) for real videos x (B, T, H, W, 3) in [-1, 1]."""
        return self.synthesize(*self._encode(videos, frame_index, "reconstruct"))

    def _encode(self, videos, frame_index, caller: str):
        if self.motion_encoder is None:
            raise ValueError(
                f"{caller}: this AVLAE has no motion encoder (use_motion_encoder=False)."
            )
        videos = ops.cast(self._check_videos(videos, caller), "float32")
        if frame_index is None:
            frame_index = self.frames // 2
        elif isinstance(frame_index, int | np.integer) and not (
            -self.frames <= frame_index < self.frames
        ):
            raise ValueError(
                f"{caller}: frame_index {frame_index} is not a frame of this model's "
                f"{self.frames}-frame videos; pass 0 to {self.frames - 1} (or None: the middle)"
            )
        return self.appearance_encoder(videos[:, frame_index]), self.motion_encoder(videos)

    # --- input checks, in Python before any compiled call -----------------------------------

    def _check_videos(self, videos, caller: str, check_range: bool = True):
        """`videos` (as an array when given as a list) after checking that they are what the
        model takes: (batch, frames, resolution, resolution, 3) floats in [-1, 1]. The range
        is checked only when the values are known (NumPy, eager tensors), never while traced.
        Raises ValueError naming `caller`, what is wrong and how to convert."""
        if not hasattr(videos, "shape"):
            videos = np.asarray(videos)
        shape = _static_shape(videos)
        expected = (self.frames, self.resolution, self.resolution, 3)
        layout = f"(batch, {', '.join(map(str, expected))})"
        if shape is not None and len(shape) != 5:
            hint = "; for one video add a batch axis: videos[None]" if len(shape) == 4 else ""
            raise ValueError(
                f"{caller}: videos must be 5-D {layout} (batch, frames, height, width, RGB), "
                f"got shape {shape}{hint}"
            )
        if shape is not None:
            names = ("frames", "height", "width", "channels")
            wrong = [
                f"{got} {name} instead of {want}"
                for name, got, want in zip(names, shape[1:], expected, strict=True)
                if got is not None and got != want
            ]
            if wrong:
                raise ValueError(
                    f"{caller}: this model (frames={self.frames}, resolution="
                    f"{self.resolution}) takes videos of shape {layout}, got {shape}: "
                    f"{', '.join(wrong)}. Cut or resize the clips (RGB, 3 channels) to match"
                )
        dtype = keras.backend.standardize_dtype(videos.dtype)
        if not keras.backend.is_float_dtype(dtype):
            raise ValueError(
                f"{caller}: videos must be floats in [-1, 1], got dtype {dtype}; convert "
                "8-bit pixels with `videos.astype('float32') / 127.5 - 1`"
            )
        values = value_range(videos) if check_range else None
        if values is not None and not (
            -1 - _RANGE_TOLERANCE <= values[0] and values[1] <= 1 + _RANGE_TOLERANCE
        ):
            raise ValueError(
                f"{caller}: videos must be in [-1, 1] (the range of the training data), got "
                f"values from {values[0]:.4g} to {values[1]:.4g}; rescale them: pixels in "
                "[0, 255] with `videos / 127.5 - 1`, images in [0, 1] with `videos * 2 - 1`"
            )
        return videos

    def _check_latents(self, z_a, z_m, num=None):
        """(z_a, z_m) as given (lists as arrays) after checking that each is None or a float
        (batch, latent_dim), with the same batch as each other and as `num`."""
        latents = {"z_a": z_a, "z_m": z_m}
        batches = {}
        for name, z in latents.items():
            if z is None:
                continue
            if not hasattr(z, "shape"):
                z = latents[name] = np.asarray(z, "float32")
            shape = _static_shape(z)
            if shape is not None and (len(shape) != 2 or shape[1] not in (None, self.latent_dim)):
                raise ValueError(
                    f"generate: {name} must have shape (batch, {self.latent_dim}) (the model's "
                    f"latent_dim), got {shape}"
                )
            dtype = keras.backend.standardize_dtype(z.dtype)
            if not keras.backend.is_float_dtype(dtype):
                raise ValueError(
                    f"generate: {name} must be floats (draws of N(0, I)), got dtype {dtype}"
                )
            if shape is not None and shape[0] is not None:
                batches[name] = shape[0]
        if len(set(batches.values())) > 1:
            raise ValueError(
                f"generate: z_a and z_m must have the same batch size, got {batches['z_a']} "
                f"and {batches['z_m']}"
            )
        if batches and isinstance(num, int | np.integer) and num not in batches.values():
            name, batch = next(iter(batches.items()))
            raise ValueError(
                f"generate: num={num} videos, but {name} holds {batch} latents; pass one of "
                "them (num is then the latents' batch size)"
            )
        return latents["z_a"], latents["z_m"]

    def call(self, videos):
        return self.reconstruct(videos)

    def save_own_variables(self, store) -> None:
        super().save_own_variables(store)
        # The latent/frame random stream is training state too: resume it exactly.
        store[SEED_STATE_KEY] = keras.ops.convert_to_numpy(self.seed_generator.state.value)
        if self._optimizer_group() is not None:
            store[ITERATIONS_KEY] = self.optimizer.iterations.numpy()

    def load_own_variables(self, store) -> None:
        keys = list(store.keys())
        if SEED_STATE_KEY in keys:
            self.seed_generator.state.assign(store[SEED_STATE_KEY])
        # Without a compiled optimizer group there is no counter to restore (as Keras drops the
        # optimizer state of a model loaded with compile=False).
        if ITERATIONS_KEY in keys and self._optimizer_group() is not None:
            self.optimizer.iterations.assign(np.asarray(store[ITERATIONS_KEY]).reshape(()))
        own_keys = (SEED_STATE_KEY, ITERATIONS_KEY)
        super().load_own_variables({k: store[k] for k in keys if k not in own_keys})

    @classmethod
    def from_config(cls, config: dict) -> AVLAE:
        return super().from_config(with_initial_frames_of_older_runs(config, default_frames=16))

    def get_config(self) -> dict:
        config = super().get_config()
        flow_estimator = None
        if self.motion_encoder is not None:
            flow_estimator = keras.saving.serialize_keras_object(self.motion_encoder.flow_estimator)
        return {
            **config,
            "resolution": self.resolution,
            "frames": self.frames,
            "latent_dim": self.latent_dim,
            "base_channels": self.base_channels,
            "mapping_layers": self.mapping_layers,
            "discriminator_hidden_dim": self.discriminator_hidden_dim,
            "flow_estimator": flow_estimator,
            "raft_iters": self.raft_iters,
            "raft_dtype": self.raft_dtype,
            "raft_unroll": self.raft_unroll,
            "k1": self.k1,
            "k2": self.k2,
            "use_motion_encoder": self.use_motion_encoder,
            "r1_gamma": self.r1_gamma,
            "step3_updates_mappings": self.step3_updates_mappings,
            "generator_normalization": self.generator_normalization,
            "generator_normalize_each_conv": self.generator_normalize_each_conv,
            "generator_bias": self.generator_bias,
            "latent_injection": self.latent_injection,
            "generator_temporal_padding": self.generator_temporal_padding,
            "generator_initial_frames": self.generator_initial_frames,
            "mapping_lr_multiplier": self.mapping_lr_multiplier,
            "normalize_latents": self.normalize_latents,
            "minibatch_stddev_group": self.minibatch_stddev_group,
            "seed": self.seed,
        }
