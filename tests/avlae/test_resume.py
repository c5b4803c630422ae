"""A rerun of a work directory: each option is applied or refused with its fix, config.json
describes what the checkpoint holds, a refused command writes nothing, flags.txt reruns the run,
and one avlae-train at a time writes a work directory.

The work directory is a checkpoint of step 1 of an untrained tiny model; the reruns ask for
`steps=1`, so they resume, apply or refuse, and end without a training step."""

import json
import os
import shutil
import socket
import subprocess
import sys
import time

import keras
import numpy as np
import pytest
from absl import flags

from avlae_keras.cli.config_flags import config_from_flags, define_flags
from avlae_keras.config import TrainConfig
from avlae_keras.trainer import train
from avlae_keras.workdir import (
    CheckpointManager,
    WorkDir,
    WorkDirLock,
    WorkDirLockedError,
    load_trained_model,
)
from tests.conftest import REPO_ROOT, TRAINED_RUN, shared_file

# The session's tiny run (tests/conftest.py), untrained and without XLA: a rerun only resumes.
TINY = {**TRAINED_RUN, "jit_compile": False, "r1_gamma": 0.0}  # R1 switched on below


@pytest.fixture(scope="module")
def checkpointed_run(tmp_path_factory):
    """config.json, flags.txt and a checkpoint of step 1 as the trainer writes them (the model
    is not trained: a step costs minutes on JAX without XLA; RAFT-small has random weights)."""
    from avlae_keras.model import AVLAE
    from avlae_keras.optimizer_group import default_optimizers
    from flows import RAFT

    folder = tmp_path_factory.mktemp("resume") / "run"
    config = TrainConfig(workdir=str(folder), **TINY)
    keras.utils.set_random_seed(config.seed)
    flow_estimator = RAFT(variant="small", unroll=config.raft_unroll)
    model = AVLAE(**{**config.model_arguments(), "flow_estimator": flow_estimator})
    model.compile(optimizers=default_optimizers(config.learning_rate), jit_compile=False)
    seed_state = np.asarray(model.seed_generator.state).tolist()
    state = {"config": config.to_dict(), "seed_state": seed_state, "data_epoch": 0}
    CheckpointManager(folder / "checkpoints").save(model, 1, state)
    WorkDir(folder).write_config(config)
    WorkDir(folder).write_flags(config)
    return folder


@pytest.fixture
def run(checkpointed_run, tmp_path, monkeypatch):
    monkeypatch.setenv("FLOWS_WEIGHTS_DIR", str(shared_file("weights/raft/raft-small.pth").parent))
    folder = tmp_path / "run"
    shutil.copytree(checkpointed_run, folder)
    return folder


def rerun(folder, **options) -> dict:
    return train(TrainConfig(workdir=str(folder), **{**TINY, **options}))


def contents(folder) -> dict:
    return {
        str(path.relative_to(folder)): path.read_bytes()
        for path in sorted(folder.rglob("*"))
        if path.is_file()
    }


def saved_config(folder) -> dict:
    return json.loads((folder / "config.json").read_text())


def test_schedule_applies_without_a_word(run, capsys):
    schedule = {"log_every": 3, "sample_every": 7, "checkpoint_every": 9, "keep_checkpoints": 5}
    state_before = (run / "checkpoints" / "ckpt-00000001" / "state.json").read_text()
    rerun(run, **schedule, data_workers=2)
    recorded = saved_config(run)
    assert {key: recorded[key] for key in schedule} == schedule
    assert "changes" not in recorded
    assert " -> " not in capsys.readouterr().out
    # Nothing the checkpoint holds changed: it is not saved again.
    assert (run / "checkpoints" / "ckpt-00000001" / "state.json").read_text() == state_before


def test_learning_rate_applies_to_the_four_optimizers_and_is_recorded(run, capsys):
    rerun(run, learning_rate=0.005)
    assert "--learning_rate: 0.0002 -> 0.005 from step 1" in capsys.readouterr().out
    change = {"step": 1, "option": "learning_rate", "old": 0.0002, "new": 0.005}
    assert saved_config(run)["learning_rate"] == 0.005
    assert saved_config(run)["changes"] == [change]
    model, checkpoint, _ = load_trained_model(run)
    assert checkpoint.read_state()["changes"] == [change]
    rates = [float(keras.ops.convert_to_numpy(o.learning_rate)) for o in model.optimizers]
    np.testing.assert_allclose(rates, [0.005] * 4)


def test_training_option_refused_with_its_fix_and_nothing_written(run):
    before = contents(run)
    with pytest.raises(ValueError) as refused:
        rerun(run, r1_gamma=10.0)
    message = str(refused.value)
    assert "--r1_gamma: the checkpoint" in message
    assert "trained with 0.0, this command gives 10.0" in message
    assert "--r1_gamma=0.0" in message and "--override_resumed_options" in message
    assert contents(run) == before


def test_architecture_refused_even_with_override(run):
    with pytest.raises(
        ValueError, match=r"--base_channels: .* trained with 8, this command gives 16"
    ):
        rerun(run, base_channels=16, override_resumed_options=True)


def test_override_applies_training_options_and_records_them(run, capsys):
    rerun(run, r1_gamma=10.0, raft_iters=2, k1=0.5, override_resumed_options=True)
    output = capsys.readouterr().out
    assert "--r1_gamma: 0.0 -> 10.0 from step 1" in output
    recorded = saved_config(run)
    assert (recorded["r1_gamma"], recorded["raft_iters"], recorded["k1"]) == (10.0, 2, 0.5)
    assert recorded["override_resumed_options"] is False
    assert {(c["option"], c["old"], c["new"]) for c in recorded["changes"]} == {
        ("r1_gamma", 0.0, 10.0),
        ("raft_iters", 1, 2),
        ("k1", 1.0, 0.5),
    }
    # config.json describes the checkpoint: the loader of sample/evaluate/export accepts it.
    model, checkpoint, run_config = load_trained_model(run)
    assert checkpoint.read_state()["changes"] == recorded["changes"]
    assert (model.r1_gamma, model.k1, model.motion_encoder.raft_iters) == (10.0, 0.5, 2)
    assert "video_r1_penalty" in [metric.name for metric in model.metrics]
    assert run_config.r1_gamma == 10.0
    # The same options again need no override and change nothing.
    rerun(run, r1_gamma=10.0, raft_iters=2, k1=0.5)
    assert saved_config(run)["changes"] == recorded["changes"]


@pytest.mark.parametrize("options", [{"steps": -5}, {"resolution": 48}])
def test_a_rejected_command_writes_nothing(run, tmp_path, options):
    before = contents(run)
    with pytest.raises(ValueError, match=f"--{next(iter(options))}"):
        rerun(run, **options)
    assert contents(run) == before
    with pytest.raises(ValueError):
        rerun(tmp_path / "new", **options)
    assert not (tmp_path / "new").exists()


def test_flags_txt_is_a_flagfile_of_the_run(run):
    rerun(run, log_every=5)
    text = (run / "flags.txt").read_text()
    assert "test_random_seed" not in text and "--log_every=5" in text
    assert all(line.startswith("--") and "=" in line for line in text.splitlines())
    flag_values = flags.FlagValues()
    define_flags(TrainConfig, flag_values)
    flag_values(["avlae-train", f"--flagfile={run / 'flags.txt'}"])
    assert config_from_flags(TrainConfig, flag_values) == TrainConfig.from_dict(saved_config(run))


def test_a_live_holder_refuses_a_second_run(run):
    with WorkDirLock(run):
        started = time.perf_counter()
        with pytest.raises(WorkDirLockedError) as locked:
            rerun(run, steps=2)
        assert time.perf_counter() - started < 10
    message = str(locked.value)
    assert f"process {os.getpid()} on host {socket.gethostname()}" in message
    assert "since " in message and "--workdir" in message
    assert not (run / "logs").exists()  # nothing written
    rerun(run)  # released: the lock is free again
    WorkDirLock(run).acquire().release()


def test_a_stale_lock_does_not_block(run):
    dead = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True
    )
    holder = {"pid": int(dead.stdout), "host": socket.gethostname(), "since": "earlier"}
    # Left by a killed run: the kernel released its flock.
    (run / ".lock").write_text(json.dumps(holder))
    WorkDirLock(run).acquire().release()
    # Still locked by a descriptor that outlived its holder (a child that inherited it).
    inherited = open(run / ".lock", "a+")
    try:
        import fcntl

        fcntl.flock(inherited, fcntl.LOCK_EX | fcntl.LOCK_NB)
        inherited.write(json.dumps(holder))
        inherited.flush()
        with WorkDirLock(run):
            pass
    finally:
        inherited.close()


def test_the_command_exits_at_once_when_the_workdir_is_held(run):
    with WorkDirLock(run):
        started = time.perf_counter()
        result = subprocess.run(
            # (flags.txt names the fixture's folder: --workdir after it wins)
            [
                sys.executable,
                "scripts/train.py",
                f"--flagfile={run / 'flags.txt'}",
                f"--workdir={run}",
            ],
            cwd=REPO_ROOT,
            env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"},
            capture_output=True,
            text=True,
            timeout=120,
        )
        elapsed = time.perf_counter() - started
    assert result.returncode == 4, result.stderr[-2000:]
    assert f"process {os.getpid()}" in result.stderr
    assert elapsed < 30, elapsed  # (the imports of TensorFlow / JAX take most of it)


def test_override_applies_precision_and_raft_settings(run):
    try:
        rerun(
            run,
            mixed_precision=True,
            raft_dtype="mixed_bfloat16",
            raft_unroll=False,
            override_resumed_options=True,
        )
    finally:
        keras.config.set_dtype_policy("float32")  # train() sets the global policy
    model, _, run_config = load_trained_model(run)
    flow_estimator = model.motion_encoder.flow_estimator
    assert model.dtype_policy.name == "mixed_bfloat16"
    assert model.video_generator.dtype_policy.name == "mixed_bfloat16"
    assert (flow_estimator.dtype_policy.name, flow_estimator.unroll) == ("mixed_bfloat16", False)
    assert (run_config.mixed_precision, run_config.raft_dtype, run_config.raft_unroll) == (
        True,
        "mixed_bfloat16",
        False,
    )
