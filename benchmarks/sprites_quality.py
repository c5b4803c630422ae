"""Does AVLAE learn sprites? Trains a sprites configuration, then measures what it generates.

    KERAS_BACKEND=tensorflow python benchmarks/sprites_quality.py --flagfile=demo.flags \
        --workdir=out/sprites_quality --name="demo (CPU)"

Runs `scripts/train.py` with the flagfile (plus `--steps` when given) in a subprocess and times
it whole (start-up and compilation included; a rerun on the same --workdir resumes, so its time
is only that of the missing steps). Then, on the newest checkpoint:

- the sprites judge (`evaluate.py --metrics=judge`): per-factor Inception Score next to real
  clips', how the judge's labels behave under latent swaps, each factor's selectivity, temporal
  consistency, and the diversity ratio (the spread of 64 generated videos, the std across
  samples averaged over pixels, over the same for 64 held-out real clips);
- the latent-swap consistency ratios (`evaluate.py --metrics=disentanglement`), with a smaller
  number of pairs and flows at 64 px so that the CPU finishes in minutes.

Appends a section with the figures, the machine and the wall times to benchmarks/RESULTS.md,
copies the final samples picture to benchmarks/results/ and keeps the whole report in
<workdir>/eval/sprites_quality_report.json (`--from_report` writes a section from it again).
"""

from __future__ import annotations

import datetime
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

from absl import app, flags
from machine import describe_machine

REPO_ROOT = Path(__file__).resolve().parents[1]
FLAGS = flags.FLAGS
flags.DEFINE_string("flagfile_name", "demo.flags", "Training flagfile (a configs/ name or path).")
flags.DEFINE_string("workdir", "out/sprites_quality", "Work directory of the training run.")
flags.DEFINE_integer("steps", None, "Training steps (default: the flagfile's).")
flags.DEFINE_list("extra_flags", [], "More training flags, e.g. --extra_flags=--r1_gamma=0.")
flags.DEFINE_string("name", None, "Title of the RESULTS.md section (default: the flagfile).")
flags.DEFINE_integer("num_pairs", 64, "Latent-swap pairs of the consistency metrics.")
flags.DEFINE_integer("judge_pairs", 256, "Latent-swap pairs (and samples) the judge labels.")
flags.DEFINE_string("results", str(REPO_ROOT / "benchmarks" / "RESULTS.md"), "File to append to.")
flags.DEFINE_bool("skip_training", False, "Only measure the newest checkpoint of --workdir.")
flags.DEFINE_string("from_report", None, "Only write the section of a saved report JSON.")


def train(workdir: str) -> float:
    """Runs the training job; returns its wall time in seconds."""
    command = [
        sys.executable,
        str(REPO_ROOT / "scripts" / "train.py"),
        f"--flagfile={FLAGS.flagfile_name}",
        f"--workdir={workdir}",
        *([f"--steps={FLAGS.steps}"] if FLAGS.steps else []),
        *FLAGS.extra_flags,
    ]
    print(" ".join(command), flush=True)
    start = time.perf_counter()
    subprocess.run(command, check=True, cwd=REPO_ROOT)
    return time.perf_counter() - start


def measure(workdir: str) -> dict:
    from avlae_keras.config import EvalConfig
    from avlae_keras.evaluation import evaluate

    start = time.perf_counter()
    report = evaluate(
        EvalConfig(
            workdir=workdir,
            metrics=("judge", "disentanglement"),
            num_pairs=FLAGS.num_pairs,
            judge_pairs=FLAGS.judge_pairs,
            flow_min_size=64,
            out=str(Path(workdir) / "eval" / "sprites_quality.json"),
        )
    )
    report["diversity_ratio"] = report["metrics"]["diversity_ratio"]
    report["evaluation_seconds"] = time.perf_counter() - start
    return report


def _format_section(name: str, report: dict, train_seconds: float | None, picture: str) -> str:
    """A RESULTS.md section: setting, headline numbers and the judge's tables."""
    judge, values = report.get("judge", {}), report.get("metrics", {})
    timing = f"evaluation {report['evaluation_seconds'] / 60:.1f} min"
    if train_seconds is not None:
        timing = f"training {train_seconds / 60:.1f} min (start-up, compilation included); {timing}"
    lines = [
        f"## Sprites quality: {name} (`benchmarks/sprites_quality.py`), "
        f"{datetime.date.today().isoformat()}",
        "",
        f"Machine: {describe_machine()}; backend {os.environ.get('KERAS_BACKEND', 'jax')}. "
        f"`--flagfile={FLAGS.flagfile_name}` {' '.join(FLAGS.extra_flags)}, step "
        f"{report['step']}; {timing}.",
        "",
        "| measure | value |",
        "| --- | --- |",
        f"| diversity ratio (64 generated / 64 real videos) | {report['diversity_ratio']:.2f} |",
    ]
    lines += [
        f"| {key} | {value:.3f} |"
        for key, value in sorted(values.items())
        if not key.startswith("factor_accuracy")
    ]
    if judge:
        accuracy = judge["classifier"]["heldout"]["accuracy"]
        fixed_appearance, fixed_motion = judge["fixed_appearance"], judge["fixed_motion"]
        lines += [
            "",
            f"Judge ({judge['num_pairs']} pairs): per factor, its held-out accuracy on real "
            "clips, the Inception Score of generated and of real clips, and how often its label "
            "stays the same (kept) or changes under latent swaps, beside the change rate of two "
            "independent real clips.",
            "",
            "| factor | judge accuracy | IS generated | IS real | kept, zM swapped | "
            "kept, zA swapped | changed, real pairs | selectivity S |",
            "| --- | --- | --- | --- | --- | --- | --- | --- |",
        ]
        for factor, factor_accuracy in accuracy.items():
            kept_zm = fixed_appearance.get("appearance_kept", {}).get(factor) or {
                "fraction": 1 - fixed_appearance["motion_changed"][factor]["fraction"]
            }
            kept_za = fixed_motion.get("motion_kept", {}).get(factor) or {
                "fraction": 1 - fixed_motion["appearance_changed"][factor]["fraction"]
            }
            lines.append(
                f"| {factor} | {factor_accuracy:.3f} "
                f"| {judge['samples'][factor]['inception_score']:.2f} "
                f"| {judge['real_samples'][factor]['inception_score']:.2f} "
                f"| {kept_zm['fraction']:.2f} | {kept_za['fraction']:.2f} "
                f"| {judge['real_random_pairs_changed'][factor]['fraction']:.2f} "
                f"| {judge['selectivity'][factor]['selectivity']:+.2f} |"
            )
        by_frame = judge["temporal"]["sprite_absent_by_frame"]
        lines += [
            "",
            "Frames without a sprite (frame judge), by frame index: "
            + ", ".join(f"{value:.2f}" for value in by_frame)
            + ".",
        ]
    factors = sorted({key.split("/")[1] for key in values if key.startswith("factor_accuracy")})
    if factors:
        lines += [
            "",
            "Encoders' factor table (ridge classifiers on held-out real clips' codes):",
            "",
            "| factor | from wA | from wM | chance |",
            "| --- | --- | --- | --- |",
        ]
        lines += [
            f"| {f} | {values[f'factor_accuracy/{f}/wA']:.2f} "
            f"| {values[f'factor_accuracy/{f}/wM']:.2f} "
            f"| {values[f'factor_accuracy/{f}/chance']:.2f} |"
            for f in factors
        ]
    lines += ["", f"![final samples]({picture})", ""]
    return "\n".join(lines)


def main(argv):
    del argv
    workdir = str(Path(FLAGS.workdir).resolve())
    if FLAGS.from_report:
        report = json.loads(Path(FLAGS.from_report).read_text())
        train_seconds = report.get("training_seconds")
    else:
        train_seconds = None if FLAGS.skip_training else train(workdir)
        report = {**measure(workdir), "training_seconds": train_seconds}
        saved = Path(workdir) / "eval" / "sprites_quality_report.json"
        saved.write_text(json.dumps(report, indent=1, default=str))
    samples = sorted((Path(workdir) / "samples").glob("step_*.png"))
    name = FLAGS.name or FLAGS.flagfile_name
    slug = "".join(c if c.isalnum() else "_" for c in name).strip("_").lower()
    picture = f"results/sprites_quality_{slug}.png"
    if samples:
        shutil.copyfile(samples[-1], REPO_ROOT / "benchmarks" / picture)
    section = _format_section(name, report, train_seconds, picture)
    with open(FLAGS.results, "a") as f:
        f.write("\n" + section)
    print(section)


if __name__ == "__main__":
    app.run(main)
