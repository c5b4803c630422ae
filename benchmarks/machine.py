"""What every benchmark figure is written with: the machine it ran on, the commit, and peak
memory."""

from __future__ import annotations

import os
import platform
import resource
import subprocess
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]


def describe_machine() -> str:
    """'<cores> cores <CPU model>[, GPU <names>]' (cores usable by this process)."""
    cpu = platform.processor() or "unknown CPU"
    try:
        with open("/proc/cpuinfo") as f:
            info = f.read()
        cpu = next(
            line.split(":", 1)[1].strip() for line in info.splitlines() if "model name" in line
        )
        # Generic model names ("Intel(R) Xeon(R) Processor") hide what matters for speed.
        flags = set(next(line for line in info.splitlines() if line.startswith("flags")).split())
        cpu += (
            " (AVX-512)" if "avx512f" in flags else " (AVX2, no AVX-512)" if "avx2" in flags else ""
        )
    except (OSError, StopIteration):
        pass
    gpu = ""
    try:
        names = subprocess.run(
            ["nvidia-smi", "--query-gpu=name", "--format=csv,noheader"],
            capture_output=True,
            text=True,
            timeout=10,
        ).stdout.strip()
        gpu = f", GPU {names}" if names else ""
    except (OSError, subprocess.SubprocessError):
        pass
    return f"{len(os.sched_getaffinity(0))} cores {cpu}{gpu}"


def peak_rss_mib() -> float:
    """Peak resident set size of this process so far, in MiB."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def commit() -> str:
    """The checkout's short commit, with "+changes" when tracked files differ from it."""
    result = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], cwd=REPO_ROOT, capture_output=True, text=True
    )
    dirty = subprocess.run(
        ["git", "status", "--porcelain", "--untracked-files=no"],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
    ).stdout.strip()
    return result.stdout.strip() + ("+changes" if dirty else "")
