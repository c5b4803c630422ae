"""The training job: resume after a kill (also mid-checkpoint), exact continuation, bad flags."""

import json
import math
import os
import shutil
import signal
import subprocess
import sys
import time

import keras
import numpy as np
import pytest

from avlae_keras.monitoring import MetricsLogger
from avlae_keras.trainer import TrainConfig, steps_of_next_call, train
from tests.conftest import REPO_ROOT, TRAINED_RUN, shared_file

# The session's tiny run (tests/conftest.py) at 16 px and half the width, as these tests train
# several steps in several processes; each test sets its steps and checkpoints.
TINY = {
    **{k: v for k, v in TRAINED_RUN.items() if k not in ("steps", "checkpoint_every")},
    "num_videos": 16,
    "resolution": 16,
    "base_channels": 4,
    "latent_dim": 8,
    "keep_checkpoints": 2,
}


@pytest.fixture
def raft_weights(monkeypatch):
    folder = shared_file("weights/raft/raft-small.pth").parent
    monkeypatch.setenv("FLOWS_WEIGHTS_DIR", str(folder))
    return folder


def final_weights(workdir, step=None):
    from avlae_keras.workdir import CheckpointManager

    checkpoints = CheckpointManager(workdir / "checkpoints").all()
    checkpoint = checkpoints[-1] if step is None else next(c for c in checkpoints if c.step == step)
    model = keras.saving.load_model(checkpoint.model_path)
    return checkpoint.step, [np.asarray(w, dtype=float) for w in model.weights]


def test_session_run_trains_r1_with_xla(trained_workdir):
    """The suite's one XLA-compiled training step on TensorFlow (tests/conftest.py) is the
    demo's recipe with R1: its double backward compiles and gives positive, finite penalties."""
    config = json.loads((trained_workdir / "config.json").read_text())
    assert config["jit_compile"] is True and config["r1_gamma"] > 0
    (row,) = MetricsLogger(trained_workdir / "logs", tensorboard=False).read()
    for name in ("video_r1_penalty", "image_r1_penalty"):
        assert row[name] is not None and row[name] > 0, row  # None: logged as not finite


def test_resume_continues_exactly(tmp_path, raft_weights, capsys):
    """A run that stopped after step 2's checkpoint, with step 3's and 4's log lines written
    and step 4's checkpoint lost, resumes to the weights and logs of a run that never stopped;
    so does it with both remaining steps in one compiled call."""
    options = {**TINY, "raft": "raft_small", "checkpoint_every": 2, "steps": 4}
    # XLA on JAX (eager JAX steps are slow); TensorFlow's XLA step is trained by the session's
    # run (tests/conftest.py), as each compile costs about 30 s of CPU here.
    options["jit_compile"] = keras.backend.backend() == "jax"
    train(TrainConfig(workdir=str(tmp_path / "straight"), **options))
    shutil.copytree(tmp_path / "straight", tmp_path / "resumed")
    shutil.rmtree(tmp_path / "resumed" / "checkpoints" / "ckpt-00000004")
    capsys.readouterr()
    summary = train(TrainConfig(workdir=str(tmp_path / "resumed"), **options))
    assert summary["step"] == 4
    assert "resuming from step 2" in capsys.readouterr().out
    step_a, weights_a = final_weights(tmp_path / "straight")
    step_b, weights_b = final_weights(tmp_path / "resumed")
    assert step_a == step_b == 4
    for a, b in zip(weights_a, weights_b, strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
    logged = [
        row["step"]
        for row in MetricsLogger(tmp_path / "resumed" / "logs", tensorboard=False).read()
    ]
    assert logged == [1, 2, 3, 4]

    # The same resume with steps 3 and 4 in one compiled call (--steps_per_execution=2): each
    # step logged with its own values, and the weights of one call per step. Another program
    # rounds differently, and Adam's first steps move a weight by about the learning rate
    # whatever its gradient's size (a near-zero gradient whose sign flips lands it up to twice
    # the rate away), so the weights are compared with what the two steps moved them: a step
    # missed or applied twice would be off by half of that or more.
    shutil.copytree(tmp_path / "straight", tmp_path / "in_pairs")
    shutil.rmtree(tmp_path / "in_pairs" / "checkpoints" / "ckpt-00000004")
    train(TrainConfig(workdir=str(tmp_path / "in_pairs"), **options, steps_per_execution=2))
    step_c, weights_c = final_weights(tmp_path / "in_pairs")
    assert step_c == 4
    moved, off = (
        math.sqrt(sum(np.sum((x - y) ** 2.0) for x, y in zip(end, other, strict=True)))
        for end, other in (
            (weights_a, final_weights(tmp_path / "straight", step=2)[1]),
            (weights_a, weights_c),
        )
    )
    assert off < 0.05 * moved, (off, moved)  # 0.001 (JAX) and 0.013 (TensorFlow) measured
    straight, in_pairs = (
        MetricsLogger(tmp_path / name / "logs", tensorboard=False).read()
        for name in ("straight", "in_pairs")
    )
    assert [row["step"] for row in in_pairs] == [1, 2, 3, 4]
    # Step 3 starts from the same weights. Step 4's values follow weights that differ as above;
    # its accuracies (of 2 samples) could flip on a logit near 0, and Step III's motion term is
    # the most sensitive (6e-5 apart on TensorFlow).
    names = straight[2].keys() - {"step", "steps_per_second"}
    for name in names:
        np.testing.assert_allclose(in_pairs[2][name], straight[2][name], rtol=1e-5, err_msg=name)
    for name in {n for n in names if not n.endswith("_accuracy")}:
        np.testing.assert_allclose(in_pairs[3][name], straight[3][name], rtol=1e-3, err_msg=name)


def test_calls_of_k_steps_end_at_every_sample_checkpoint_and_the_end():
    config = TrainConfig(steps=23, sample_every=10, checkpoint_every=15, steps_per_execution=4)
    calls, step = [], 0
    while step < config.steps:
        calls.append(steps_of_next_call(step, config))
        step += calls[-1]
    # To 10: 4, 4, 1, 1; to 15: 4, 1; to 20: 4, 1; to 23: one at a time.
    assert calls == [4, 4, 1, 1, 4, 1, 4, 1, 1, 1, 1]
    assert steps_of_next_call(0, config.replace(steps_per_execution=1)) == 1


def test_sigkill_during_checkpoint_write_then_resume(tmp_path, raft_weights):
    """Kills the job while a checkpoint is being written, then resumes it. Catching a write
    in progress is a race: when the run finishes first, or the write completes between being
    seen and the kill, the test is skipped, not failed."""
    workdir = tmp_path / "run"
    command = [
        sys.executable,
        "scripts/train.py",
        f"--workdir={workdir}",
        "--steps=6",
        "--checkpoint_every=1",
        "--raft=raft_small",
        # XLA on JAX (eager steps take minutes there; the second process finds the compiled
        # step in the session's cache), not on TensorFlow (a minute of XLA compile per process).
        "--jit_compile" if keras.backend.backend() == "jax" else "--nojit_compile",
        *(f"--{k}={v}" for k, v in TINY.items()),
    ]
    env = {**os.environ, "FLOWS_WEIGHTS_DIR": str(raft_weights), "TF_CPP_MIN_LOG_LEVEL": "3"}
    # Output to a file, not a pipe that nobody reads while the job runs (it could fill up).
    log = tmp_path / "first_run.log"
    with log.open("w") as output:
        process = subprocess.Popen(
            command, cwd=REPO_ROOT, env=env, stdout=output, stderr=subprocess.STDOUT, text=True
        )
    checkpoints = workdir / "checkpoints"

    def names() -> list[str]:
        return [p.name for p in checkpoints.iterdir()] if checkpoints.is_dir() else []

    killed = False
    deadline = time.time() + 600
    while process.poll() is None and time.time() < deadline:
        current = names()
        if any(n.startswith("ckpt-") for n in current) and any(
            n.startswith(".tmp-") for n in current
        ):
            process.send_signal(signal.SIGKILL)
            killed = True
            break
        time.sleep(0.005)
    if process.poll() is None and not killed:
        process.kill()
        process.wait(timeout=60)
        pytest.fail("the training job ran past 600 s: " + log.read_text()[-3000:])
    returncode = process.wait(timeout=60)
    if returncode == 0:
        pytest.skip("missed the timing window: the run finished before a checkpoint write was seen")
    assert killed and returncode == -signal.SIGKILL, log.read_text()[-3000:]
    if not any(n.startswith(".tmp-") for n in names()):
        pytest.skip("missed the timing window: the checkpoint write ended before the kill landed")

    rerun = subprocess.run(
        command, cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=900
    )
    assert rerun.returncode == 0, rerun.stdout[-2000:] + rerun.stderr[-3000:]
    assert "resuming from step " in rerun.stdout
    assert not [p for p in checkpoints.iterdir() if p.name.startswith(".tmp-")]
    step, _ = final_weights(workdir)
    assert step == 6
    assert (workdir / "samples" / "step_00000006.png").is_file()


@pytest.mark.parametrize(
    "options,flag",
    [
        ({"dataset": "weizmann", "data_path": "/no/such/folder"}, "--data_path"),
        ({"resolution": 48}, "--resolution"),
        ({"use_motion_encoder": False, "k1": 1.0}, "--k1"),
        ({"raft": "raft_things"}, "--raft"),
        ({"batch_size": 0}, "--batch_size"),
        ({"batch_size": 6}, "--minibatch_stddev_group"),
        ({"mapping_lr_multiplier": 0.0}, "--mapping_lr_multiplier"),
        ({"learning_rate": 0.0}, "--learning_rate"),
        (
            {"latent_injection": "split", "generator_normalize_each_conv": False},
            "--latent_injection",
        ),
    ],
)
def test_bad_flags_fail_before_any_work(tmp_path, monkeypatch, options, flag):
    monkeypatch.setenv("FLOWS_CACHE_DIR", str(tmp_path / "empty-cache"))
    monkeypatch.setenv("FLOWS_WEIGHTS_DIR", str(tmp_path / "no-weights"))
    from flows.raft import raft_presets

    monkeypatch.setattr(raft_presets, "download_official_models", _offline)
    with pytest.raises(ValueError, match=flag):
        train(TrainConfig(workdir=str(tmp_path / "w"), **{**TINY, **options}))
    assert not (tmp_path / "w" / "checkpoints").exists()


def _offline(*args, **kwargs):
    raise OSError("offline")


_DATA_PARALLEL_RUN = """
import sys
import keras
if keras.backend.backend() == "tensorflow":
    import tensorflow as tf
    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
from avlae_keras.trainer import TrainConfig, steps_of_next_call, train
options = dict(eval(sys.argv[2]))
summary = train(TrainConfig(workdir=sys.argv[1], steps=2, checkpoint_every=2, **options))
print("final step", summary["step"])
"""


def test_data_parallel_on_two_devices(tmp_path, raft_weights):
    options = {**TINY, "raft": "raft_small", "distribution": "data_parallel"}
    env = {
        **os.environ,
        "FLOWS_WEIGHTS_DIR": str(raft_weights),
        "XLA_FLAGS": os.environ.get("XLA_FLAGS", "") + " --xla_force_host_platform_device_count=2",
        "TF_CPP_MIN_LOG_LEVEL": "3",
    }
    result = subprocess.run(
        [sys.executable, "-c", _DATA_PARALLEL_RUN, str(tmp_path / "run"), repr(options)],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-3000:]
    assert "data parallel over 2 devices" in result.stdout
    assert "final step 2" in result.stdout
    rows = [line for line in (tmp_path / "run" / "logs" / "metrics.jsonl").read_text().splitlines()]
    assert len(rows) == 2 and "null" not in rows[-1]


_REPLICA_ROWS = """
import keras
import numpy as np
import tensorflow as tf
cpu = tf.config.list_physical_devices("CPU")[0]
tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
from avlae_keras import backend

class RowsSeen(keras.Model):
    def __init__(self):
        super().__init__()
        self.dense = keras.layers.Dense(1)

    def call(self, x):
        return self.dense(x)

    def train_step(self, data):
        x, _, _ = keras.utils.unpack_x_y_sample_weight(data)
        return {"rows": tf.cast(tf.shape(x)[0], "float32")}

with tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"]).scope():
    model = RowsSeen()
    model.compile()
    print("rows per replica", backend.train_on_batch(model, np.zeros((4, 3), "float32"))["rows"])
"""


def test_each_tensorflow_replica_trains_on_its_share_of_the_batch():
    """The trainer's step under MirroredStrategy: a batch of 4 over 2 replicas is 2 rows each
    (Keras's own train_on_batch hands each replica all 4)."""
    if keras.backend.backend() != "tensorflow":
        pytest.skip("JAX lays a global batch out over the devices itself")
    result = subprocess.run(
        [sys.executable, "-c", _REPLICA_ROWS],
        cwd=REPO_ROOT,
        env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert "rows per replica 2.0" in result.stdout, result.stdout[-2000:]
