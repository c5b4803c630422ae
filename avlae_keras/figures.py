"""The paper's qualitative figures of a trained run, as PNG frame strips and animated GIFs.

- `samples`: random videos G(FA(zA), FM(zM)), frames 1, 10, 16 (Fig. 2).
- `fixed_appearance`: one row per fixed zA, one column per zM (the same zM in every row), so a
  row should keep its look while its columns move differently (Fig. 3).
- `fixed_motion`: one row per fixed zM, one column per zA: a row should move alike while its
  columns look different (Fig. 4).
- `reconstructions`: held-out real clips next to G(EA(x_t), EM(x)) (Fig. 5); each row is one
  clip, input then reconstruction.

Latents are drawn with NumPy from `seed`, so a figure depends only on the checkpoint and seed.
`run(SampleConfig)` writes them for a work directory's checkpoint (`avlae-sample`),
`write_figures` for a model in memory.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import keras
import numpy as np
from PIL import Image

from avlae_keras.config import SampleConfig, TrainConfig
from avlae_keras.metrics.disentanglement import generate_from_latents
from avlae_keras.metrics.extractors import to_float32_array
from avlae_keras.visualization import (
    enlarge,
    frame_strip,
    frame_strip_grid,
    save_gif,
)


def _generate(model, z_a: np.ndarray, z_m: np.ndarray, batch_size: int = 16) -> np.ndarray:
    return generate_from_latents(lambda a, m: model.generate(z_a=a, z_m=m), z_a, z_m, batch_size)


def _write_png(image: np.ndarray, path: Path) -> str:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(image).save(path)
    return os.fspath(path)


def _write_grid(grid: np.ndarray, out: Path, name: str) -> list[str]:
    """(rows, columns, T, H, W, 3) videos -> `name`.png (frame strips) and `name`.gif."""
    rows, columns = grid.shape[:2]
    flat = grid.reshape(rows * columns, *grid.shape[2:])
    large = enlarge(flat)
    png = _write_png(
        frame_strip_grid(large.reshape(rows, columns, *large.shape[1:])), out / f"{name}.png"
    )
    gif = save_gif(flat, out / f"{name}.gif", columns=columns)
    return [png, gif]


def swap_grid(
    model, fixed: str, rows: int, columns: int, seed: int = 0, batch_size: int = 16
) -> np.ndarray:
    """(rows, columns, T, H, W, 3) videos: row r fixes code `fixed` ("appearance" fixes zA,
    "motion" fixes zM) to its r-th draw, column c sets the other code to its c-th draw."""
    if fixed not in ("appearance", "motion"):
        raise ValueError(f"fixed must be 'appearance' or 'motion', got {fixed!r}")
    rng = np.random.default_rng(seed)
    fixed_codes = rng.standard_normal((rows, model.latent_dim)).astype(np.float32)
    varied_codes = rng.standard_normal((columns, model.latent_dim)).astype(np.float32)
    row_codes = np.repeat(fixed_codes, columns, axis=0)
    column_codes = np.tile(varied_codes, (rows, 1))
    if fixed == "appearance":
        videos = _generate(model, row_codes, column_codes, batch_size)
    else:
        videos = _generate(model, column_codes, row_codes, batch_size)
    return videos.reshape(rows, columns, *videos.shape[1:])


def write_figures(
    model,
    run_config: TrainConfig | dict,
    out: str | os.PathLike,
    num: int = 8,
    rows: int = 4,
    seed: int = 0,
    batch_size: int = 16,
    real_clips: np.ndarray | None = None,
) -> dict[str, Any]:
    """Writes every figure into `out`; returns {figure: [png, gif]} plus notes.

    `num` is the number of random samples, of columns in the swap grids and of reconstructed
    clips; `rows` the number of fixed codes. `real_clips` (videos in [-1, 1]) replaces the
    held-out clips of the run's dataset (see `avlae_keras.data.heldout_source`).
    """
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    written: dict[str, Any] = {}
    rng = np.random.default_rng(seed)
    z_a = rng.standard_normal((num, model.latent_dim)).astype(np.float32)
    z_m = rng.standard_normal((num, model.latent_dim)).astype(np.float32)
    progress = keras.utils.Progbar(4, unit_name="figure")

    videos = _generate(model, z_a, z_m, batch_size)
    written["samples"] = [
        _write_png(frame_strip(enlarge(videos)), out / "samples.png"),
        save_gif(videos, out / "samples.gif"),
    ]
    progress.add(1)
    for index, fixed in enumerate(("appearance", "motion")):
        grid = swap_grid(model, fixed, rows, num, seed=seed + 1 + index, batch_size=batch_size)
        written[f"fixed_{fixed}"] = _write_grid(grid, out, f"fixed_{fixed}")
        progress.add(1)

    held_out = True
    if real_clips is None:
        from avlae_keras.data import evaluation_clips, heldout_source

        if isinstance(run_config, dict):
            run_config = TrainConfig.from_dict(run_config)
        source, held_out = heldout_source(run_config, num)
        real_clips, _ = evaluation_clips(source, run_config, num)
    real_clips = np.asarray(real_clips, np.float32)[:num]
    reconstructions = []
    for i in range(0, len(real_clips), batch_size):
        reconstructions.append(to_float32_array(model.reconstruct(real_clips[i : i + batch_size])))
    pairs = np.stack([real_clips, np.concatenate(reconstructions)], axis=1)
    written["reconstructions"] = _write_grid(pairs, out, "reconstructions")
    written["reconstructions_held_out"] = held_out
    progress.add(1)
    return written


def run(config: SampleConfig) -> dict[str, Any]:
    """Loads a run's checkpoint (newest, or `config.step`) and writes its figures into
    `config.out` (default `WorkDir.figures`). Returns the report: `step`, `checkpoint`, `out`,
    `figures` ({figure: [png, gif]}) and `reconstructions_held_out` (False when the dataset has
    no held-out split and the reconstructions use training videos). Raises `ConfigError` for
    unusable options and `CheckpointLoadError` when the work directory has no usable
    checkpoint."""
    from avlae_keras.workdir import WorkDir, load_trained_model

    config.validate()
    model, checkpoint, run_config = load_trained_model(config.workdir, config.step)
    out = Path(config.out) if config.out else WorkDir(config.workdir).figures
    written = write_figures(
        model,
        run_config,
        out,
        num=config.num,
        rows=config.rows,
        seed=config.seed,
        batch_size=config.batch_size,
    )
    held_out = written.pop("reconstructions_held_out")
    return {
        "step": checkpoint.step,
        "checkpoint": os.fspath(checkpoint.path),
        "out": os.fspath(out),
        "figures": written,
        "reconstructions_held_out": held_out,
    }
