"""scripts/sample.py and scripts/evaluate.py on a tiny sprites run."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from avlae_keras import figures
from avlae_keras.config import SampleConfig
from avlae_keras.evaluation import EvalConfig, EvaluationSetupError, evaluate
from tests.conftest import REPO_ROOT, TRAINED_RUN, shared_file

TINY = TRAINED_RUN  # the session's tiny trained run (tests/conftest.py)
FAST_DISENTANGLEMENT = {
    "num_pairs": 4,
    "num_factor_videos": 24,
    "flow_raft": "raft_small",
    "flow_iters": 1,
    "flow_min_size": 32,
    "batch_size": 4,
    "verbose": 0,
}


@pytest.fixture(scope="module")
def trained_run(trained_workdir):
    """A tiny sprites run as scripts/train.py leaves it: config.json and the checkpoint of step 1
    (the session's, tests/conftest.py), with RAFT-small's weights in reach for the evaluation."""
    folder = shared_file("weights/raft/raft-small.pth").parent
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("FLOWS_WEIGHTS_DIR", str(folder))
        yield trained_workdir


def test_sample_script_writes_every_figure(trained_run, tmp_path):
    report = figures.run(
        SampleConfig(workdir=str(trained_run), out=str(tmp_path / "figures"), num=3, rows=2, seed=1)
    )
    assert report["step"] == 1 and report["out"] == str(tmp_path / "figures")
    assert report["reconstructions_held_out"] is True
    written = report["figures"]
    assert sorted(written) == ["fixed_appearance", "fixed_motion", "reconstructions", "samples"]
    names = ("samples", "fixed_appearance", "fixed_motion", "reconstructions")
    for name in names:
        png, gif = written[name]
        assert png.endswith(f"{name}.png") and gif.endswith(f"{name}.gif")
        assert Image.open(png).size[0] > 64
        assert Image.open(gif).n_frames == TINY["frames"]
    # The swap grids: 2 rows (fixed codes) of 3 videos, each 3 frames of 64 px (enlarged).
    width, height = Image.open(written["fixed_motion"][0]).size
    assert height == 2 * 64 + 8
    assert width == 3 * (3 * 64 + 2 * 2) + 2 * 8
    # Reconstructions: 3 clips, one per row, input then reconstruction.
    width, height = Image.open(written["reconstructions"][0]).size
    assert (width, height) == (2 * (3 * 64 + 4) + 8, 3 * 64 + 2 * 8)


def test_evaluate_disentanglement_report(trained_run, tmp_path):
    report = evaluate(
        EvalConfig(workdir=str(trained_run), metrics=("disentanglement",), **FAST_DISENTANGLEMENT)
    )
    path = trained_run / "eval" / "metrics_step_00000001.json"
    assert report["path"] == str(path)
    saved = json.loads(path.read_text())
    assert saved["step"] == 1 and saved["dataset"] == "sprites"
    metrics = saved["metrics"]
    for key in ("motion_consistency_ratio", "appearance_consistency_ratio"):
        assert np.isfinite(metrics[key]) and metrics[key] > 0
        assert np.isfinite(metrics[f"{key}_sem"]) and metrics[f"{key}_sem"] >= 0
    assert set(saved["details"]["factor_table"]["accuracy"]) == {
        "shape",
        "colour",
        "background",
        "direction",
        "speed",
        "trajectory",
    }
    for code in ("wA", "wM", "chance"):
        assert 0.0 <= metrics[f"factor_accuracy/colour/{code}"] <= 1.0
        assert 0.0 <= metrics[f"factor_accuracy/colour/{code}_sem"] <= 0.5
    assert saved["samples"]["disentanglement"] == {
        "pairs": 4,
        "generated": 16,
        "factor_videos": 24,
    }


class MomentExtractor:
    """A stand-in for I3D / ResNeXt: per-channel means and spreads of each video."""

    name = "moments"

    def __call__(self, videos):
        videos = np.asarray(videos, np.float64)
        return np.concatenate([videos.mean(axis=(1, 2, 3)), videos.std(axis=(1, 2, 3))], axis=1)


def test_fid_fvd_is_through_injected_extractors(trained_run, tmp_path):
    report = evaluate(
        EvalConfig(
            workdir=str(trained_run),
            metrics=("fvd", "fid", "is"),
            out=str(tmp_path / "report.json"),
            num_samples=8,
            num_real_samples=8,
            batch_size=4,
            verbose=0,
        ),
        extractors={"fvd": MomentExtractor(), "fid": MomentExtractor()},
    )
    metrics = json.loads((tmp_path / "report.json").read_text())["metrics"]
    assert set(metrics) == {"fvd", "fid", "is_i3d_kinetics400", "is_i3d_kinetics400_std"}
    assert metrics["fvd"] == pytest.approx(metrics["fid"]) and metrics["fid"] > 0
    assert report["samples"]["fid"]["generated"] == 8


@pytest.mark.parametrize(
    "metric,flag,weights",
    [
        ("fvd", "--i3d_weights", "rgb_imagenet.pt"),
        ("is", "--i3d_weights", "rgb_imagenet.pt"),
        ("fid", "--resnext_weights", "resnext-101-kinetics.pth"),
    ],
)
def test_missing_feature_weights_fail_first(tmp_path, metric, flag, weights):
    # No run at all in tmp_path: the weights are checked before the checkpoint is looked for.
    with pytest.raises(EvaluationSetupError, match=flag) as error:
        evaluate(EvalConfig(workdir=str(tmp_path), metrics=(metric, "disentanglement")))
    assert weights in str(error.value)
    config = EvalConfig(workdir=str(tmp_path), metrics=(metric,), i3d_weights="/no/file")
    config.resnext_weights = "/no/file"
    with pytest.raises(EvaluationSetupError, match="is not a file"):
        evaluate(config)
    assert not (tmp_path / "eval").exists()


def test_short_clips_refuse_fvd_before_loading(trained_run, tmp_path):
    weights = tmp_path / "rgb_imagenet.pt"
    weights.write_bytes(b"not read before the check")
    with pytest.raises(EvaluationSetupError, match="16-frame"):
        evaluate(EvalConfig(workdir=str(trained_run), metrics=("fvd",), i3d_weights=str(weights)))


def test_scripts_report_a_missing_run_without_traceback(tmp_path):
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    for script, extra in (("evaluate.py", ["--metrics=fvd"]), ("sample.py", [])):
        result = subprocess.run(
            [sys.executable, f"scripts/{script}", f"--workdir={tmp_path / 'none'}", *extra],
            cwd=REPO_ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert "Traceback" not in result.stderr, result.stderr[-2000:]
        if script == "evaluate.py":  # missing weights are reported first
            assert result.returncode == 2 and "--i3d_weights" in result.stderr
        else:
            assert result.returncode == 1 and "does not exist" in result.stderr
