"""Recipe experiments scored by the judge's verdict: train a sprites setting with several seeds,
measure chosen checkpoints, and keep one row per (setting, seed, step).

    KERAS_BACKEND=tensorflow python benchmarks/verdict_runs.py --name=baseline --seeds=0,1 \
        --steps=3000 --eval_steps=1000,3000 --runs_dir=runs/verdict

    # the table of every recorded setting (mean over seeds, and each seed):
    python benchmarks/verdict_runs.py --table

Each seed trains `scripts/train.py --flagfile=<--flagfile_name> --seed=<seed>` plus
`--extra_flags` into `<runs_dir>/<name>_s<seed>` (a rerun resumes, so a longer `--steps` extends
a run), keeping a checkpoint and a samples picture at every `--eval_steps` step. Each such
checkpoint not yet in `--results` is then measured with `evaluate --metrics=judge` (the verdict
and the diversity ratio; `avlae_keras.metrics.sprites_judge`), and a row is appended to
`--results` (JSON lines) with the commit, the machine, the flags and the wall time; the samples
picture is copied beside it. `--table` prints the Markdown table of
`benchmarks/VERDICT_EXPERIMENTS.md` from that file.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import subprocess
import sys
import time
from collections import defaultdict
from pathlib import Path

from absl import app, flags
from machine import commit, describe_machine

REPO_ROOT = Path(__file__).resolve().parents[1]
RESULTS_DIR = REPO_ROOT / "benchmarks" / "results" / "verdict"
FLAGS = flags.FLAGS
flags.DEFINE_string("name", None, "Name of the setting (a row of the table).")
flags.DEFINE_string("flagfile_name", "demo.flags", "Training flagfile (a configs/ name or path).")
flags.DEFINE_list("extra_flags", [], "Training flags of the setting, e.g. --extra_flags=--k2=0.")
flags.DEFINE_list("seeds", ["0", "1"], "Training seeds.")
flags.DEFINE_integer("steps", 3000, "Training steps.")
flags.DEFINE_list("eval_steps", ["1000", "3000"], "Checkpoints to measure.")
flags.DEFINE_string("runs_dir", "runs/verdict", "Folder of the work directories.")
flags.DEFINE_string("results", str(RESULTS_DIR / "experiments.jsonl"), "Rows (JSON lines).")
flags.DEFINE_integer("judge_pairs", 256, "Latent-swap pairs the judge labels.")
flags.DEFINE_bool("table", False, "Only print the Markdown table of --results.")
flags.DEFINE_bool(
    "remeasure", False, "Measure every row of --results again (after a change of the judge)."
)

# The columns of the table: (metric key, header).
COLUMNS = (
    ("judge_selectivity_appearance", "S app."),
    ("judge_selectivity_motion", "S motion"),
    ("judge_selectivity_min", "S min"),
    ("judge_temporal_consistency", "temporal"),
    ("judge_sprite_absent_frames", "no sprite"),
    ("judge_is_ratio_min", "IS ratio min"),
    ("diversity_ratio", "diversity"),
)


def train(workdir: Path, seed: int, eval_steps: list[int]) -> float:
    every = math.gcd(*eval_steps)
    command = [
        sys.executable,
        str(REPO_ROOT / "scripts" / "train.py"),
        f"--flagfile={FLAGS.flagfile_name}",
        f"--workdir={workdir}",
        f"--seed={seed}",
        f"--steps={FLAGS.steps}",
        f"--checkpoint_every={every}",
        f"--sample_every={every}",
        f"--keep_checkpoints={FLAGS.steps // every + 1}",
        *FLAGS.extra_flags,
    ]
    print(" ".join(command), flush=True)
    start = time.perf_counter()
    subprocess.run(command, check=True, cwd=REPO_ROOT)
    return time.perf_counter() - start


def measure(workdir: Path, step: int) -> dict:
    from avlae_keras.config import EvalConfig
    from avlae_keras.evaluation import evaluate

    report = evaluate(
        EvalConfig(
            workdir=str(workdir),
            metrics=("judge",),
            step=step,
            judge_pairs=FLAGS.judge_pairs,
            verbose=0,
            out=str(workdir / "eval" / f"verdict_step_{step}.json"),
        )
    )
    judge = report["judge"]
    return {
        "metrics": report["metrics"],
        "selectivity": {k: v["selectivity"] for k, v in judge["selectivity"].items()},
        "sprite_absent_by_frame": judge["temporal"]["sprite_absent_by_frame"],
    }


def recorded() -> set[tuple]:
    """(setting, seed, step) of the rows already in --results."""
    if not os.path.exists(FLAGS.results):
        return set()
    with open(FLAGS.results) as f:
        rows = [json.loads(line) for line in f if line.strip()]
    return {(row["name"], row["seed"], row["step"]) for row in rows}


def run_setting() -> None:
    eval_steps = sorted(int(s) for s in FLAGS.eval_steps)
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    trained_with = commit()  # before training: later commits during a long run do not count
    for seed in (int(s) for s in FLAGS.seeds):
        workdir = Path(FLAGS.runs_dir).resolve() / f"{FLAGS.name}_s{seed}"
        train_seconds = train(workdir, seed, eval_steps)
        done = recorded()
        for step in eval_steps:
            if (FLAGS.name, seed, step) in done:  # a longer rerun measures only new steps
                continue
            row = {
                "name": FLAGS.name,
                "seed": seed,
                "step": step,
                "flags": [f"--flagfile={FLAGS.flagfile_name}", *FLAGS.extra_flags],
                "commit": trained_with,
                "machine": describe_machine(),
                "backend": os.environ.get("KERAS_BACKEND", "jax"),
                "train_seconds_to_final_step": round(train_seconds, 1),
                **measure(workdir, step),
            }
            picture = workdir / "samples" / f"step_{step:08d}.png"
            if picture.exists():
                name = f"{FLAGS.name}_s{seed}_step{step}.png"
                shutil.copyfile(picture, RESULTS_DIR / name)
                row["picture"] = f"results/verdict/{name}"
            with open(FLAGS.results, "a") as f:
                f.write(json.dumps(row) + "\n")
            print(json.dumps(row), flush=True)


def table(rows: list[dict]) -> str:
    """Markdown: one line per (setting, step), each column the mean over seeds and, in
    brackets, each seed's value."""
    groups: dict[tuple, list[dict]] = defaultdict(list)
    for row in rows:
        groups[(row["name"], row["step"])].append(row)
    header = ["setting", "step", "seeds", *(title for _, title in COLUMNS)]
    lines = ["| " + " | ".join(header) + " |", "|" + " --- |" * len(header)]
    for (name, step), members in groups.items():
        members = sorted(members, key=lambda r: r["seed"])
        cells = [f"`{name}`", str(step), ",".join(str(r["seed"]) for r in members)]
        for key, _ in COLUMNS:
            values = [r["metrics"].get(key, float("nan")) for r in members]
            each = "/".join(f"{v:.2f}" for v in values)
            cells.append(f"{sum(values) / len(values):.2f} ({each})")
        lines.append("| " + " | ".join(cells) + " |")
    lines.append("")
    settings = {row["name"]: row for row in rows}
    for name, row in settings.items():
        lines.append(f"- `{name}`: `{' '.join(row['flags'])}` ({row['commit']}, {row['machine']})")
    return "\n".join(lines)


def remeasure() -> None:
    with open(FLAGS.results) as f:
        rows = [json.loads(line) for line in f if line.strip()]
    for row in rows:
        workdir = Path(FLAGS.runs_dir).resolve() / f"{row['name']}_s{row['seed']}"
        row.update(measure(workdir, row["step"]), measured_with=commit())
        print(row["name"], row["seed"], row["step"], flush=True)
    with open(FLAGS.results, "w") as f:
        f.writelines(json.dumps(row) + "\n" for row in rows)


def main(argv):
    del argv
    if FLAGS.remeasure:
        remeasure()
        return
    if FLAGS.table:
        with open(FLAGS.results) as f:
            print(table([json.loads(line) for line in f if line.strip()]))
        return
    if not FLAGS.name:
        raise app.UsageError("--name is required (or --table)")
    run_setting()


if __name__ == "__main__":
    app.run(main)
