"""Trains AVLAE: `python scripts/train.py --flagfile=configs/uva.flags --workdir=runs/uva`.

The backend comes from KERAS_BACKEND (tensorflow or jax). Flagfiles compose (later flags win);
a flagfile name that is not a path from the working directory is looked up in configs/, so
`--flagfile=uva.flags` works too. Rerunning the same command resumes from the newest checkpoint
in --workdir.
"""

from __future__ import annotations

import dataclasses
import os
import sys
from pathlib import Path

from absl import app, flags

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))

from avlae_keras.trainer import TrainConfig, TrainingDivergedError, train  # noqa: E402

FLAGS = flags.FLAGS
_DEFAULTS = TrainConfig(workdir="")

flags.DEFINE_string("workdir", None, "Folder for checkpoints, logs, samples; reruns resume.")
flags.DEFINE_enum(
    "dataset",
    _DEFAULTS.dataset,
    [
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
    ],
    "Dataset kind: generated (sprites, moving_mnist) or a layout on disk.",
)
flags.DEFINE_string("data_path", None, "Dataset folder (or MNIST idx file for moving_mnist).")
flags.DEFINE_string("ucf_split_dir", None, "UCF-101 ucfTrainTestlist folder (optional).")
flags.DEFINE_integer("ucf_split", _DEFAULTS.ucf_split, "UCF-101 split number (1-3).")
flags.DEFINE_integer("num_videos", _DEFAULTS.num_videos, "Clips of the generated sprites set.")
flags.DEFINE_integer("resolution", _DEFAULTS.resolution, "Frame height and width (64 or 128).")
flags.DEFINE_integer("frames", _DEFAULTS.frames, "Frames per clip T.")
flags.DEFINE_integer("frame_stride", _DEFAULTS.frame_stride, "Take every N-th frame.")
flags.DEFINE_boolean("flip", _DEFAULTS.flip, "Random horizontal flips of whole clips.")
flags.DEFINE_integer("batch_size", _DEFAULTS.batch_size, "Videos per step.")
flags.DEFINE_float(
    "learning_rate", _DEFAULTS.learning_rate, "Adam's learning rate, the same for all four groups."
)
flags.DEFINE_integer("steps", _DEFAULTS.steps, "Total training steps (Algorithm 1 iterations).")
flags.DEFINE_integer("latent_dim", _DEFAULTS.latent_dim, "Size of zA, zM, wA, wM.")
flags.DEFINE_integer("base_channels", _DEFAULTS.base_channels, "Network width.")
flags.DEFINE_float("k1", _DEFAULTS.k1, "Weight of the wM reconstruction (0 disables it).")
flags.DEFINE_float("k2", _DEFAULTS.k2, "Weight of the wA reconstruction (0 disables it).")
flags.DEFINE_boolean("use_motion_encoder", True, "False: the paper's -EM ablation (needs k1=0).")
flags.DEFINE_enum(
    "generator_normalization",
    _DEFAULTS.generator_normalization,
    ["layer", "instance"],
    "G's normalisation: per position over channels (layer) or per sample and channel (instance).",
)
flags.DEFINE_boolean(
    "generator_normalize_each_conv",
    _DEFAULTS.generator_normalize_each_conv,
    "Normalise + ReLU after both convolutions of each G block (G3AN); false: after the pair.",
)
flags.DEFINE_boolean("generator_bias", _DEFAULTS.generator_bias, "Biases in G's convolutions.")
flags.DEFINE_enum(
    "latent_injection",
    _DEFAULTS.latent_injection,
    ["input", "every_block", "split"],
    "wV enters G's first block only (input, the paper), modulates every block (every_block), "
    "or every block with wM after temporal and wA after spatial convolutions (split).",
)
flags.DEFINE_float(
    "mapping_lr_multiplier",
    _DEFAULTS.mapping_lr_multiplier,
    "Learning-rate multiplier of FA and FM (1: plain Dense layers at the optimizer's rate).",
)
flags.DEFINE_boolean(
    "normalize_latents", _DEFAULTS.normalize_latents, "Normalise z to unit RMS before FA, FM."
)
flags.DEFINE_integer(
    "minibatch_stddev_group",
    _DEFAULTS.minibatch_stddev_group,
    "DV and DI see their features' spread across groups of this many samples (0: off).",
)
flags.DEFINE_boolean(
    "step3_updates_mappings",
    _DEFAULTS.step3_updates_mappings,
    "Step III also updates FA, FM through G's input (ALAE's code); the targets stay constant.",
)
flags.DEFINE_float("r1_gamma", _DEFAULTS.r1_gamma, "R1 penalty on real inputs (0: off).")
flags.DEFINE_string("raft", _DEFAULTS.raft, "RAFT preset, .pth checkpoint or converted folder.")
flags.DEFINE_integer("raft_iters", _DEFAULTS.raft_iters, "RAFT iterations inside EM.")
flags.DEFINE_boolean("mixed_precision", False, "Run under the mixed_bfloat16 policy.")
flags.DEFINE_boolean("jit_compile", True, "Compile the training step with XLA.")
flags.DEFINE_integer("seed", _DEFAULTS.seed, "Seed of data order, latents and initialisation.")
flags.DEFINE_integer("log_every", _DEFAULTS.log_every, "Steps between log lines.")
flags.DEFINE_integer("sample_every", _DEFAULTS.sample_every, "Steps between sample pictures.")
flags.DEFINE_integer("checkpoint_every", _DEFAULTS.checkpoint_every, "Steps between checkpoints.")
flags.DEFINE_integer("keep_checkpoints", _DEFAULTS.keep_checkpoints, "Checkpoints kept.")
flags.DEFINE_enum("distribution", "none", ["none", "data_parallel"], "Scale-out strategy.")
flags.DEFINE_integer("data_workers", _DEFAULTS.data_workers, "Threads loading batches.")
flags.DEFINE_float(
    "collapse_warning_ratio",
    _DEFAULTS.collapse_warning_ratio,
    "Warn of mode collapse when the generated/real diversity ratio stays below this.",
)


def resolve_flagfiles(argv: list[str]) -> list[str]:
    """`--flagfile=NAME` that is not a path from here becomes `configs/NAME` when that exists."""
    resolved = []
    for arg in argv:
        if arg.startswith("--flagfile="):
            name = arg.split("=", 1)[1]
            candidate = REPO_ROOT / "configs" / name
            if not os.path.exists(name) and candidate.exists():
                arg = f"--flagfile={candidate}"
            elif not os.path.exists(name):
                known = sorted(p.name for p in (REPO_ROOT / "configs").glob("*.flags"))
                raise SystemExit(
                    f"--flagfile: {name} not found here nor in {REPO_ROOT / 'configs'}; "
                    f"available: {', '.join(known)}"
                )
        resolved.append(arg)
    return resolved


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {argv[1:]}")
    if not FLAGS.workdir:
        raise app.UsageError("--workdir is required: the folder for checkpoints, logs, samples")
    config = TrainConfig(
        **{f.name: FLAGS[f.name].value for f in dataclasses.fields(TrainConfig) if f.name in FLAGS}
    )
    workdir = Path(config.workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    (workdir / "flags.txt").write_text(FLAGS.flags_into_string())
    try:
        summary = train(config)
    except ValueError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    except TrainingDivergedError as error:
        print(f"error: {error}", file=sys.stderr)
        return 3
    print(
        f"done: step {summary['step']}; checkpoint {summary['checkpoint']}; "
        f"samples in {summary['samples']} (GIFs and PNG strips of frames 1, 10, 16)"
    )
    return 0


if __name__ == "__main__":
    app.run(main, argv=resolve_flagfiles(sys.argv))
