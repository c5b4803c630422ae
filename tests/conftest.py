import atexit
import os
import shutil
import tempfile
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("AVLAE_SHARED_DIR", REPO_ROOT.parent / "shared"))

# Two-device tests run XLA's CPU collectives while the other backend's session shares the two
# cores: a device thread can reach an all-to-all over 40 s after the other (seen once in CI),
# and XLA then aborts the process. Their wait is given 10 minutes instead. Processes the tests
# start inherit it. (LLVM's optimization level 0 would halve some compiles, but it changes
# JAX's float32 results: from the same weights TF against JAX moved from 5e-6 to 0.9% for Step
# II's gradient, next to test_backends_and_devices's 1% bound; the tests run the code users run.)
TEST_XLA_FLAGS = "--xla_cpu_collective_call_terminate_timeout_seconds=600"
if "xla_cpu_collective_call_terminate_timeout_seconds" not in os.environ.get("XLA_FLAGS", ""):
    os.environ["XLA_FLAGS"] = f"{os.environ.get('XLA_FLAGS', '')} {TEST_XLA_FLAGS}".strip()

# One user cache (trained judges, JAX's compiled programs) for the whole session and the
# processes it starts, kept out of the home folder.
if "AVLAE_CACHE_DIR" not in os.environ:
    os.environ["AVLAE_CACHE_DIR"] = tempfile.mkdtemp(prefix="avlae-test-cache-")
    atexit.register(shutil.rmtree, os.environ["AVLAE_CACHE_DIR"], ignore_errors=True)

# JAX: this process keeps its compiled programs where the training processes that the tests
# start keep theirs (the trainer's folder), so that each reuses what the other compiled (e.g.
# test_trainer's in-process run and its subprocess runs of the same tiny model).
if os.environ.get("KERAS_BACKEND") == "jax":
    from avlae_keras import backend
    from avlae_keras.config import user_cache_dir

    backend.enable_compilation_cache(user_cache_dir("compiled"))


def shared_file(relative: str) -> Path:
    """A file from ../shared, or a skip naming it when this checkout has no ../shared."""
    path = SHARED / relative
    if not path.exists():
        pytest.skip(f"needs {path} (the shared test material beside the checkout)")
    return path


# The session's tiny run: one real training step of `avlae_keras.trainer.train` (sprites, 32 px,
# 4 frames, RAFT-small with its real weights), as scripts/train.py leaves it. Evaluation, figure,
# judge and export tests read it; a test that changes a work directory changes a copy of it.
TRAINED_RUN = {
    "dataset": "sprites",
    "num_videos": 8,
    "resolution": 32,
    "frames": 4,
    "batch_size": 2,
    "base_channels": 8,
    "latent_dim": 16,
    "raft": "raft_small",
    "raft_iters": 1,
    "r1_gamma": 1.0,  # the demo's recipe: R1's double backward compiled with XLA on both backends
    "steps": 1,
    "log_every": 1,
    "sample_every": 100,
    "checkpoint_every": 1,
    "data_workers": 1,
}


@pytest.fixture(scope="session")
def trained_workdir(tmp_path_factory) -> Path:
    """The work directory of TRAINED_RUN (config.json, logs, the checkpoint of step 1)."""
    from avlae_keras.trainer import TrainConfig, train

    # With XLA, the trainer's default on both backends: the suite's one training run with XLA on
    # TensorFlow (other training tests leave it out there, each compile costing ~30 s of CPU).
    weights = shared_file("weights/raft/raft-small.pth").parent
    folder = tmp_path_factory.mktemp("trained") / "run"
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("FLOWS_WEIGHTS_DIR", str(weights))
        train(TrainConfig(workdir=str(folder), **TRAINED_RUN))
    return folder


# Tests that take about half a minute or more on a 2-core CPU (measured with
# `pytest --durations`): training runs, XLA compiles of a training step, processes of their own.
# `make test` runs them all; `pytest -m "not slow"` leaves them out for a quick round.
SLOW_TESTS = {
    "tests/avlae/test_multi_process.py::test_two_processes_train_and_resume_as_one",
    "tests/avlae/test_trainer.py::test_resume_continues_exactly",
    "tests/avlae/test_trainer.py::test_sigkill_during_checkpoint_write_then_resume",
    "tests/avlae/test_trainer.py::test_data_parallel_on_two_devices",
    "tests/avlae/test_export.py::test_export_matches_in_memory_model_in_fresh_process",
    "tests/model/test_backends_and_devices.py::"
    "test_step_losses_and_one_step_match_on_the_other_backend",
    "tests/model/test_backends_and_devices.py::"
    "test_data_parallel_two_devices_give_the_same_step_losses_and_step",
    "tests/model/test_training.py::test_fit_accepts_pydataset_and_continues",
    "tests/model/test_training.py::test_fit_accepts_tf_data",
    "tests/model/test_training.py::test_trains_under_mixed_bfloat16",
    "tests/flows/test_raft_loop.py::test_looped_model_matches_unrolled_values_and_input_gradients",
}


def pytest_collection_modifyitems(config, items):
    for item in items:
        if item.nodeid.split("[")[0] in SLOW_TESTS:
            item.add_marker(pytest.mark.slow)
