"""SavedModel export: a model trained one step on this backend, exported from its work directory
and reloaded in a fresh process that imports only TensorFlow and NumPy, matches the in-memory
model on every endpoint and batch size; a missing or mismatched checkpoint fails clearly."""

import json
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest

from tests.conftest import REPO_ROOT

pytest.importorskip("tensorflow")

BATCH_SIZES = (1, 3)
CHECKER = REPO_ROOT / "tests" / "avlae" / "savedmodel_checker.py"
FLOAT_TOLERANCE = 1e-4


@pytest.fixture(scope="module")
def workdir(trained_workdir):
    """A work directory with one training step of a tiny model (RAFT-small, real weights): the
    session's (tests/conftest.py: TRAINED_RUN, 32 px, 4 frames)."""
    return trained_workdir


def _videos(batch: int, seed: int) -> np.ndarray:
    """Smooth moving gradients in [-1, 1], (batch, 4, 32, 32, 3)."""
    rng = np.random.default_rng(seed)
    ys, xs = np.mgrid[:32, :32].astype(np.float32) / 31.0
    videos = np.empty((batch, 4, 32, 32, 3), np.float32)
    for b in range(batch):
        phase, speed, color = rng.uniform(0, 6), rng.uniform(0.2, 0.6), rng.uniform(0.3, 1, 3)
        for t in range(4):
            wave = np.sin(6 * xs + 3 * ys + phase + speed * t)
            videos[b, t] = (wave[..., None] * color).astype(np.float32)
    return videos


def _inputs(latent_dim: int) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(0)
    inputs = {}
    for batch in BATCH_SIZES:
        z_a = rng.standard_normal((batch, latent_dim)).astype(np.float32)
        z_m = rng.standard_normal((batch, latent_dim)).astype(np.float32)
        for signature in ("generate", "serving_default"):
            inputs[f"{signature}/b{batch}/z_a"] = z_a
            inputs[f"{signature}/b{batch}/z_m"] = z_m
        inputs[f"sample/b{batch}/batch_size"] = np.int32(batch)
        inputs[f"sample/b{batch}/seed"] = np.int64(40 + batch)
        for signature in ("encode", "reconstruct"):
            inputs[f"{signature}/b{batch}/videos"] = _videos(batch, seed=batch)
    return inputs


def _expected(model, signature: str, arguments: dict) -> dict[str, np.ndarray]:
    """The in-memory model's outputs for one call, with the export's own uint8 mapping."""
    from keras import ops

    from avlae_keras.export import sample_latents, videos_to_uint8

    if signature in ("generate", "serving_default"):
        videos = model.generate(z_a=arguments["z_a"], z_m=arguments["z_m"])
    elif signature == "sample":
        batch, seed = int(arguments["batch_size"]), int(arguments["seed"])
        z_a, z_m = sample_latents(batch, seed, model.latent_dim)
        videos = model.generate(z_a=z_a, z_m=z_m)
    elif signature == "encode":
        w_a, w_m = model.encode(arguments["videos"])
        return {"w_a": ops.convert_to_numpy(w_a), "w_m": ops.convert_to_numpy(w_m)}
    else:
        videos = model.reconstruct(arguments["videos"])
    return {
        "videos_float": ops.convert_to_numpy(videos),
        "videos": ops.convert_to_numpy(videos_to_uint8(videos)),
    }


def _export(workdir, out, step=None) -> dict:
    from avlae_keras.config import ExportConfig
    from avlae_keras.export import run

    return run(ExportConfig(workdir=str(workdir), out=str(out), step=step))


def test_export_matches_in_memory_model_in_fresh_process(workdir, tmp_path, capsys):
    from avlae_keras.cli.export import print_report
    from avlae_keras.visualization import to_uint8
    from avlae_keras.workdir import load_trained_model

    out = tmp_path / "saved_model"
    report = _export(workdir, out)
    assert report["path"] == str(out) and report["step"] == 1
    print_report(report)
    printed = capsys.readouterr().out
    for signature in ("generate", "sample", "encode", "reconstruct", "serving_default"):
        assert f"  {signature}(" in printed
    metadata = json.loads((out / "avlae_export.json").read_text())
    assert metadata["step"] == 1 and metadata["serving_default"] == "generate"

    model, _, _ = load_trained_model(workdir)
    inputs = _inputs(model.latent_dim)
    np.savez(tmp_path / "inputs.npz", **inputs)
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    env.pop("PYTHONPATH", None)
    result = subprocess.run(
        [sys.executable, str(CHECKER), str(out), str(tmp_path / "inputs.npz"), "outputs.npz"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-4000:]

    differences, expected_outputs = {}, {}
    with np.load(tmp_path / "outputs.npz") as outputs:
        cases = sorted({key.rsplit("/", 1)[0] for key in inputs})
        for case in cases:
            signature, batch = case.split("/")
            arguments = {k.rsplit("/", 1)[1]: v for k, v in inputs.items() if k.startswith(case)}
            # serving_default is generate on the same latents: one in-memory run serves both.
            same = ("generate" if signature == "serving_default" else signature, batch)
            if same not in expected_outputs:
                expected_outputs[same] = _expected(model, signature, arguments)
            for name, expected in expected_outputs[same].items():
                for prefix in ("", "method_") if signature != "serving_default" else ("",):
                    got = outputs[f"{case}/{prefix}{name}"]
                    assert got.shape == expected.shape, (case, name, got.shape)
                    assert got.shape[0] == int(batch[1:])
                    assert got.dtype == expected.dtype, (case, name, got.dtype)
                    difference = np.abs(got.astype(np.float64) - expected.astype(np.float64))
                    key = f"{signature}/{name}"
                    differences[key] = max(differences.get(key, 0.0), float(difference.max()))
            if f"{case}/videos" in outputs.files:
                # The exported uint8 is the documented mapping of the exported floats.
                exported_float = outputs[f"{case}/videos_float"]
                np.testing.assert_array_equal(outputs[f"{case}/videos"], to_uint8(exported_float))
    print("max abs differences:", json.dumps(differences, indent=1))
    for key, difference in differences.items():
        limit = 1 if key.endswith("/videos") else FLOAT_TOLERANCE
        assert difference <= limit, (key, difference)
    assert set(differences) == {
        "generate/videos",
        "generate/videos_float",
        "serving_default/videos",
        "serving_default/videos_float",
        "sample/videos",
        "sample/videos_float",
        "encode/w_a",
        "encode/w_m",
        "reconstruct/videos",
        "reconstruct/videos_float",
    }


def test_videos_to_uint8_is_the_visualization_mapping():
    from keras import ops

    from avlae_keras.export import videos_to_uint8
    from avlae_keras.visualization import to_uint8

    values = np.concatenate(
        [np.linspace(-1.2, 1.2, 4001, dtype=np.float32), (np.arange(256) / 127.5 - 1.0)]
    ).astype(np.float32)
    np.testing.assert_array_equal(ops.convert_to_numpy(videos_to_uint8(values)), to_uint8(values))


def test_missing_workdir_and_checkpoint_fail_clearly(tmp_path):
    from avlae_keras.workdir import CheckpointLoadError

    with pytest.raises(CheckpointLoadError, match="does not exist"):
        _export(tmp_path / "nowhere", tmp_path / "out")

    (tmp_path / "empty" / "checkpoints").mkdir(parents=True)
    with pytest.raises(CheckpointLoadError, match="no complete checkpoint.*train first"):
        _export(tmp_path / "empty", tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_mismatched_config_and_unknown_step_fail_clearly(workdir, tmp_path):
    from avlae_keras.workdir import CheckpointLoadError

    with pytest.raises(CheckpointLoadError, match="no checkpoint of step 5"):
        _export(workdir, tmp_path / "out", step=5)

    copy = tmp_path / "copy"
    shutil.copytree(workdir, copy)
    config = json.loads((copy / "config.json").read_text())
    (copy / "config.json").write_text(json.dumps({**config, "resolution": 64}))
    with pytest.raises(CheckpointLoadError, match="resolution: checkpoint 32 vs config 64"):
        _export(copy, tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_script_reports_errors_without_traceback(tmp_path):
    result = subprocess.run(
        [sys.executable, "scripts/export.py", f"--workdir={tmp_path / 'no'}", "--out=x"],
        cwd=REPO_ROOT,
        env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 1, result.stderr[-2000:]
    assert "error: work directory" in result.stderr and "Traceback" not in result.stderr


def test_model_without_motion_encoder_exports_generate_and_sample(tmp_path):
    import tensorflow as tf
    from keras import ops

    from avlae_keras import AVLAE
    from avlae_keras.export import ExportError, export_saved_model, sample_latents

    model = AVLAE(
        resolution=32,
        frames=4,
        latent_dim=16,
        base_channels=8,
        discriminator_hidden_dim=16,
        use_motion_encoder=False,
        k1=0.0,
        seed=3,
    )
    signatures = export_saved_model(model, tmp_path / "sm")
    assert sorted(signatures) == ["generate", "sample", "serving_default"]
    loaded = tf.saved_model.load(str(tmp_path / "sm"))
    for batch in (1, 3):
        z_a, z_m = sample_latents(batch, 5, 16)
        expected = ops.convert_to_numpy(model.generate(z_a=z_a, z_m=z_m))
        got = loaded.sample(tf.constant(batch), tf.constant(5, tf.int64))["videos_float"]
        np.testing.assert_allclose(got.numpy(), expected, atol=FLOAT_TOLERANCE)
    with pytest.raises(ExportError, match="not an empty folder"):
        export_saved_model(model, tmp_path / "sm")


def test_missing_tensorflow_is_a_clear_error(tmp_path, monkeypatch):
    from avlae_keras.export import ExportError

    monkeypatch.setitem(sys.modules, "tensorflow", None)
    with pytest.raises(ExportError, match=r'pip install "avlae-keras\[tensorflow\]"'):
        _export(tmp_path, tmp_path / "out")
