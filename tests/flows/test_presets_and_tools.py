"""Presets (lookup, md5, offline failure), conversion to Keras files, visualisation, demo."""

import os
import subprocess
import sys
import zipfile

import numpy as np
import pytest

from flows import RAFT, PresetUnavailableError, flow_to_color
from flows.convert import main as convert_main
from flows.raft import raft_presets
from flows.visualize import color_wheel, color_wheel_legend
from tests.conftest import REPO_ROOT, shared_file


@pytest.fixture
def isolated_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("FLOWS_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.delenv("FLOWS_WEIGHTS_DIR", raising=False)
    return tmp_path / "cache"


def test_preset_from_weights_dir(isolated_cache, monkeypatch):
    folder = shared_file("weights/raft/raft-small.pth").parent
    monkeypatch.setenv("FLOWS_WEIGHTS_DIR", str(folder))
    resolved = raft_presets.resolve_preset("raft_small", download=False)
    assert resolved.checkpoint_path == folder / "raft-small.pth"
    model = RAFT.from_preset("raft_small")
    assert model.variant == "small" and model.parameter_count() == 990_162


def test_offline_failure_names_file_and_variable(isolated_cache, monkeypatch):
    def no_network(*args, **kwargs):
        raise OSError("network unreachable")

    monkeypatch.setattr(raft_presets.urllib.request, "urlopen", no_network)
    with pytest.raises(PresetUnavailableError) as error:
        RAFT.from_preset("raft_things")
    message = str(error.value)
    assert "raft-things.pth" in message and "FLOWS_WEIGHTS_DIR" in message
    assert "network unreachable" in message


def test_download_extracts_and_checks_models_zip(isolated_cache, monkeypatch, tmp_path):
    """The download path with the network replaced by a local models.zip of the real files."""
    archive = tmp_path / "models.zip"
    with zipfile.ZipFile(archive, "w") as z:
        z.write(shared_file("weights/raft/raft-small.pth"), "models/raft-small.pth")

    def local_urlopen(url, timeout):
        assert url == raft_presets.MODELS_ZIP_URL
        return open(archive, "rb")

    monkeypatch.setattr(raft_presets.urllib.request, "urlopen", local_urlopen)
    model = RAFT.from_preset("raft_small")
    assert (isolated_cache / "raft-small.pth").is_file()
    assert model.variant == "small"


def test_md5_mismatch_is_reported(isolated_cache, monkeypatch, tmp_path):
    folder = tmp_path / "weights"
    folder.mkdir()
    data = shared_file("weights/raft/raft-small.pth").read_bytes()
    (folder / "raft-small.pth").write_bytes(data[:-1] + bytes([data[-1] ^ 1]))
    monkeypatch.setenv("FLOWS_WEIGHTS_DIR", str(folder))
    with pytest.raises(ValueError, match="md5"):
        RAFT.from_preset("raft_small")


def test_unknown_preset():
    with pytest.raises(ValueError, match="raft_sintel"):
        RAFT.from_preset("raft_imaginary")


@pytest.mark.parametrize("suffix", ["preset", "model.keras", "model.weights.h5"])
def test_convert_writes_loadable_files(tmp_path, suffix):
    source = shared_file("weights/raft/raft-small.pth")
    output = tmp_path / suffix
    assert convert_main([str(source), str(output)]) == 0
    reference = RAFT.from_checkpoint(source)
    if suffix == "preset":
        model = RAFT.from_preset(str(output))
        assert (output / "metadata.json").read_text().count("990162") == 1
    elif suffix.endswith(".keras"):
        import keras

        model = keras.saving.load_model(output)
    else:
        model = RAFT(variant="small")
        model.load_weights(output)
    for a, b in zip(reference.weights, model.weights, strict=True):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))


def test_convert_reports_bad_input(tmp_path, capsys):
    bad = tmp_path / "bad.pth"
    bad.write_bytes(b"not a checkpoint")
    assert convert_main([str(bad), str(tmp_path / "out")]) == 1
    assert "bad.pth" in capsys.readouterr().err


def test_flow_to_color_directions():
    wheel = color_wheel()
    assert wheel.shape == (55, 3)
    flow = np.array([[[1.0, 0.0], [-1.0, 0.0], [0.0, 0.0], [np.nan, 0.0]]])
    colours = flow_to_color(flow)
    right, left, still, invalid = colours[0]
    assert right[0] == 255 and right[1] < 10 and right[2] < 10  # rightward motion is red
    assert left[0] < 10 and left[1] > 150 and left[2] == 255  # leftward motion is blue-cyan
    np.testing.assert_array_equal(still, [255, 255, 255])  # no motion is white
    np.testing.assert_array_equal(invalid, [0, 0, 0])
    legend = color_wheel_legend(32)
    assert legend.shape == (32, 32, 3) and legend.dtype == np.uint8
    with pytest.raises(ValueError, match=r"\(H, W, 2\)"):
        flow_to_color(np.zeros((4, 4, 3)))


def test_flow_demo_script(tmp_path):
    weights = shared_file("weights/raft/raft-small.pth").parent
    out = tmp_path / "demo.png"
    env = {**os.environ, "FLOWS_WEIGHTS_DIR": str(weights)}
    result = subprocess.run(
        [
            sys.executable,
            "scripts/flow_demo.py",
            "--preset=raft_small",
            "--iters=4",
            f"--out={out}",
        ],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr
    from PIL import Image

    picture = np.asarray(Image.open(out))
    assert picture.shape[0] == 128 and picture.shape[1] > 3 * 160
