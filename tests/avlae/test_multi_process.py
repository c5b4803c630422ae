"""Training across processes (`--distribution=multi_process`): two processes on this machine
over loopback train the same steps as one process on the same global batches.

The end-to-end tests start three Python processes (one reference, two cooperating) of the
tiny model without RAFT; the rest are quick checks of the settings and of the batch shards.
"""

import json
import os
import socket
import subprocess
import sys

import keras
import numpy as np
import pytest

from avlae_keras import distributed
from avlae_keras.config import ConfigError, TrainConfig
from avlae_keras.data import training_batches
from tests.conftest import REPO_ROOT, TEST_XLA_FLAGS

# The tiny model of test_trainer without RAFT; batch 4 in groups of 2 so that each process's two
# rows hold whole minibatch-stddev groups (as every device's share must on TensorFlow).
TINY_NO_RAFT = {
    "dataset": "sprites",
    "num_videos": 16,
    "resolution": 16,
    "frames": 4,
    "batch_size": 4,
    "minibatch_stddev_group": 2,
    "base_channels": 4,
    "latent_dim": 8,
    "use_motion_encoder": False,
    "k1": 0.0,
    "log_every": 1,
    "sample_every": 2,
    "checkpoint_every": 2,
    "steps": 2,
}

# Losses of a step are means over the global batch. The two processes compute them from per-device
# partial sums that are then all-reduced, so they may differ from one process's in the last bits
# of float32 (seen: at most 2e-7 relative, after two steps, on both backends); Adam's first update
# (lr * g / |g|) could amplify such a difference only for a gradient that is almost exactly 0.
RTOL, ATOL = 1e-5, 1e-6

_RUN = """
import json, sys
from avlae_keras.trainer import TrainConfig, train
summary = train(TrainConfig(workdir=sys.argv[1], **json.loads(sys.argv[2])))
print("final step", summary["step"], flush=True)
"""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _environment(backend: str) -> dict:
    # The session's cache (tests/conftest.py) stays: out of the home folder, and the resumed
    # processes find the programs the first ones compiled.
    env = {
        key: value
        for key, value in os.environ.items()
        if key == "AVLAE_CACHE_DIR"
        or not key.startswith(("TF_CONFIG", "AVLAE_", "KERAS_DISTRIBUTION_", "SLURM_", "JAX_"))
    }
    env.update(
        KERAS_BACKEND=backend,
        JAX_PLATFORMS="cpu",
        CUDA_VISIBLE_DEVICES="",
        TF_CPP_MIN_LOG_LEVEL="3",
        PYTHONPATH=str(REPO_ROOT),
        PYTHONUNBUFFERED="1",
    )
    env["XLA_FLAGS"] = TEST_XLA_FLAGS  # without a device count: one CPU device per process
    return env


def _start(workdir, options: dict, env: dict, log) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-c", _RUN, str(workdir), json.dumps(options)],
        cwd=REPO_ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        text=True,
    )


def _losses(workdir) -> list[dict]:
    rows = [
        json.loads(line) for line in (workdir / "logs" / "metrics.jsonl").read_text().splitlines()
    ]
    return [{k: v for k, v in row.items() if k.endswith("_loss")} for row in rows]


def _train(tmp_path, runs: dict[str, dict], env: dict) -> dict[str, str]:
    """Starts one process per {log name: options} at once; returns their outputs."""
    logs = {name: open(tmp_path / f"{name}.log", "w") for name in runs}
    processes = {
        name: _start(tmp_path / options.pop("run"), options, env, logs[name])
        for name, options in ((n, dict(o)) for n, o in runs.items())
    }
    try:
        codes = {name: p.wait(timeout=1500) for name, p in processes.items()}
    finally:
        for p in processes.values():
            if p.poll() is None:
                p.kill()
        for log in logs.values():
            log.close()
    outputs = {name: (tmp_path / f"{name}.log").read_text() for name in runs}
    report = "\n".join(f"--- {n} {codes[n]}\n{outputs[n][-3000:]}" for n in runs)
    assert set(codes.values()) == {0}, report
    return outputs


def _cluster(backend: str) -> dict:
    """A new cluster's address (JAX: the coordinator; TensorFlow: every worker)."""
    workers = 1 if backend == "jax" else 2
    return {"coordinator_address": ",".join(f"127.0.0.1:{_free_port()}" for _ in range(workers))}


def _processes(options: dict, cluster: dict) -> dict[str, dict]:
    multi = {**options, "run": "multi", "distribution": "multi_process", "num_processes": 2}
    return {f"process{i}": {**multi, **cluster, "process_id": i} for i in range(2)}


def _assert_same_losses(tmp_path, steps: int) -> None:
    single_losses, multi_losses = _losses(tmp_path / "single"), _losses(tmp_path / "multi")
    assert len(single_losses) == len(multi_losses) == steps
    for step, (a, b) in enumerate(zip(single_losses, multi_losses, strict=True), start=1):
        assert a.keys() == b.keys()
        for key in a:
            np.testing.assert_allclose(
                b[key], a[key], rtol=RTOL, atol=ATOL, err_msg=f"step {step} {key}"
            )


def test_processes_share_the_session_cache_and_drop_other_settings(monkeypatch):
    monkeypatch.setenv("AVLAE_PROCESS_ID", "5")
    env = _environment(keras.backend.backend())
    assert env["AVLAE_CACHE_DIR"] == os.environ["AVLAE_CACHE_DIR"]  # not the home folder
    assert "AVLAE_PROCESS_ID" not in env
    assert env["XLA_FLAGS"] == TEST_XLA_FLAGS  # no device count: one CPU device per process


def test_two_processes_train_and_resume_as_one(tmp_path):
    """Two processes train steps 1-2, stop, and resume to step 4 (a new cluster) with the
    losses of one process that trains steps 1-4 straight."""
    # The backend of this test run (make test runs the suite once per backend).
    backend = keras.backend.backend()
    env = _environment(backend)
    single = {**TINY_NO_RAFT, "run": "single", "steps": 4}
    if backend == "tensorflow":
        single["jit_compile"] = False
    first = {"single": single, **_processes(TINY_NO_RAFT, _cluster(backend))}
    outputs = _train(tmp_path, first, env)
    assert "process 0 of 2" in outputs["process0"] and "process 1 of 2" in outputs["process1"]
    # Process 0 wrote the work directory: one checkpoint, samples, config.
    run = tmp_path / "multi"
    assert [p.name for p in (run / "checkpoints").iterdir()] == ["ckpt-00000002"]
    assert (run / "samples" / "step_00000002.png").is_file()
    assert TrainConfig.from_dict(json.loads((run / "config.json").read_text())).process_id == 0

    resumed = _processes({**TINY_NO_RAFT, "steps": 4}, _cluster(backend))
    outputs = _train(tmp_path, resumed, env)
    assert all("resuming from step 2" in output for output in outputs.values()), outputs
    _assert_same_losses(tmp_path, 4)
    assert sorted(p.name for p in (run / "checkpoints").iterdir()) == [
        "ckpt-00000002",
        "ckpt-00000004",
    ]


# === Settings, validation and shards (no training) =============================================


def test_flags_override_environment_and_slurm_is_read():
    config = TrainConfig(workdir="w", distribution="multi_process", process_id=1)
    environ = {
        "AVLAE_COORDINATOR_ADDRESS": "node0:1234",
        "SLURM_NTASKS": "4",
        "SLURM_PROCID": "3",
    }
    settings = distributed.cluster_settings(config, environ)
    assert settings == distributed.ClusterSettings(("node0:1234",), 4, 1)
    keras_style = {
        "KERAS_DISTRIBUTION_JOB_ADDRESSES": "a:1,b:2",
        "KERAS_DISTRIBUTION_PROCESS_ID": "0",
    }
    settings = distributed.cluster_settings(TrainConfig(workdir="w"), keras_style)
    assert settings == distributed.ClusterSettings(("a:1", "b:2"), 2, 0)
    tf_config = {
        "cluster": {"worker": ["a:1", "b:2", "c:3"]},
        "task": {"type": "worker", "index": 2},
    }
    settings = distributed.cluster_settings(
        TrainConfig(workdir="w"), {"TF_CONFIG": json.dumps(tf_config)}
    )
    assert settings == distributed.ClusterSettings(("a:1", "b:2", "c:3"), 3, 2)


@pytest.mark.parametrize(
    "options,flag",
    [
        ({"num_processes": 2}, "--num_processes"),  # without --distribution=multi_process
        ({"distribution": "multi_process", "num_processes": 0}, "--num_processes"),
        ({"distribution": "multi_process", "num_processes": 2, "process_id": 2}, "--process_id"),
        ({"distribution": "multi_process", "num_processes": 3}, "--batch_size"),
    ],
)
def test_bad_process_flags(options, flag):
    with pytest.raises(ConfigError, match=flag):
        TrainConfig(workdir="w", batch_size=4, use_motion_encoder=False, k1=0, **options).validate()


def test_process_shards_make_up_the_global_batch():
    config = TrainConfig(workdir="w", **{**TINY_NO_RAFT, "batch_size": 4})
    batches = training_batches(config)
    shards = [batches.shard(distributed.shard_rows(4, i, 2)) for i in range(2)]
    for step in (0, 5):  # within the first epoch and in the second
        whole = batches.load_clips(step)
        parts = [shard.load_clips(step) for shard in shards]
        np.testing.assert_array_equal(np.concatenate(parts), whole)
    with pytest.raises(ValueError, match="--batch_size"):
        distributed.shard_rows(4, 0, 3)
