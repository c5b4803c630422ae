"""Same weights and batch give the same Step I/II/III losses on TensorFlow and JAX, and on one
and two devices (data parallelism). Each check runs in a subprocess."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import keras
import numpy as np
import pytest

from tests.model.conftest import tiny_videos

REPO_ROOT = Path(__file__).resolve().parents[2]


def _inputs(batch: int, latent_dim: int, frames: int) -> dict:
    rng = np.random.default_rng(11)
    return {
        "videos": tiny_videos(batch, seed=5),
        "z_a": rng.standard_normal((batch, latent_dim)).astype("float32"),
        "z_m": rng.standard_normal((batch, latent_dim)).astype("float32"),
        "real_frame_index": rng.integers(0, frames, batch).astype("int32"),
        "fake_frame_index": rng.integers(0, frames, batch).astype("int32"),
    }


def _run_worker(backend: str, *args: str) -> dict:
    env = {**os.environ, "KERAS_BACKEND": backend, "PYTHONPATH": str(REPO_ROOT)}
    completed = subprocess.run(
        [sys.executable, "-m", "tests.model.step_losses_worker", *args],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
    )
    lines = [line for line in completed.stdout.splitlines() if line.startswith("RESULTS ")]
    assert completed.returncode == 0 and lines, completed.stderr[-4000:]
    return json.loads(lines[-1][len("RESULTS ") :])


def _assert_same_losses(expected: dict, actual: dict) -> None:
    assert set(expected) == set(actual)
    for name in expected:
        np.testing.assert_allclose(actual[name], expected[name], rtol=2e-4, atol=2e-5, err_msg=name)


def test_step_losses_match_on_the_other_backend(make_tiny_model, tmp_path):
    other = "jax" if keras.backend.backend() == "tensorflow" else "tensorflow"
    if importlib.util.find_spec(other if other == "jax" else "tensorflow") is None:
        pytest.skip(f"{other} is not installed")
    model = make_tiny_model()
    inputs = _inputs(2, model.latent_dim, model.frames)
    np.savez(tmp_path / "inputs.npz", **inputs)
    model.save_weights(str(tmp_path / "weights.weights.h5"))
    if keras.backend.backend() == "jax":
        import jax

        losses = jax.jit(model.compute_step_losses)(**inputs)
    else:
        losses = model.compute_step_losses(**inputs)
    here = {k: float(keras.ops.convert_to_numpy(v)) for k, v in losses.items()}
    there = _run_worker(other, "parity", str(tmp_path))
    _assert_same_losses(here, there)
    assert here["motion_reconstruction_loss"] > 0


def _distributed(tmp_path, fit: bool) -> dict:
    from tests.model.conftest import TINY_CONFIG

    np.savez(tmp_path / "inputs.npz", **_inputs(4, TINY_CONFIG["latent_dim"], 4))
    args = ["distributed", str(tmp_path)] + (["fit"] if fit else [])
    return _run_worker(keras.backend.backend(), *args)


def test_data_parallel_two_devices_give_the_same_step_losses(tmp_path):
    results = _distributed(tmp_path, fit=False)
    assert results["devices"] == 2
    _assert_same_losses(results["one_device"], results["two_devices"])


@pytest.mark.slow
def test_data_parallel_fit_on_two_devices(tmp_path):
    results = _distributed(tmp_path, fit=True)
    assert results["devices"] == 2
    assert results["iterations"] == [2, 2, 2, 2]
    assert all(np.isfinite(v) for v in results["fit"].values())
