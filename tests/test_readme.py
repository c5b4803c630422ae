"""The README's Python code runs as written, at tiny sizes.

Each ```python block runs in a folder where `runs/demo` and `runs/sprites` are a tiny sprites
run (config.json and a checkpoint of an untrained model, RAFT-small), after the substitutions
in `TINY_SIZES` (more videos, pairs, RAFT iterations and a larger RAFT are only slower). A block
preceded by `<!-- readme-test: skip (reason) -->` (training, a dataset, an export) only has its
imports run, so that a moved module still fails here. The blocks run on the TensorFlow backend;
on JAX, whose op-by-op eager execution makes them minutes on a CPU, only their imports run (the
same calls are tested on both backends elsewhere).
"""

import ast
import dataclasses
import json
import os
import re

import keras
import pytest

from avlae_keras.trainer import TrainConfig, build_model
from avlae_keras.workdir import CheckpointManager
from tests.conftest import REPO_ROOT, TRAINED_RUN, shared_file

README = REPO_ROOT / "README.md"
_BLOCK = re.compile(
    r"(?:<!-- readme-test: skip \((?P<reason>[^)]*)\) -->\n)?```python\n(?P<code>.*?)```", re.S
)
TINY_SIZES = {
    "model.generate(8, seed=0)": "model.generate(1, seed=0)",
    'preset="raft_sintel", iters=12': (
        'preset="raft_small", iters=1, min_size=None, jit_compile=False'
    ),
    "num_pairs=256": "num_pairs=2",
    'RAFT.from_preset("raft_sintel")': 'RAFT.from_preset("raft_small")',
    "frame2, iters=12)": "frame2, iters=1)",
}
# The session's tiny run (tests/conftest.py) with 16 clips, untrained and without XLA.
TINY_RUN = {**TRAINED_RUN, "num_videos": 16, "jit_compile": False}


def readme_blocks() -> list[tuple[int, str, str | None]]:
    """(line, code, skip reason or None) of every ```python block of the README."""
    text = README.read_text()
    return [
        (text.count("\n", 0, match.start("code")) + 1, match["code"], match["reason"])
        for match in _BLOCK.finditer(text)
    ]


BLOCKS = readme_blocks()


@pytest.fixture(scope="module")
def readme_folder(tmp_path_factory):
    """A folder with runs/demo and runs/sprites: one tiny sprites run, as avlae-train leaves it
    (built and checkpointed by the trainer's own functions, not trained)."""
    weights = shared_file("weights/raft/raft-small.pth").parent
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("FLOWS_WEIGHTS_DIR", str(weights))
        folder = tmp_path_factory.mktemp("readme")
        run = folder / "runs" / "demo"
        config = TrainConfig(workdir=str(run), **TINY_RUN)
        keras.utils.set_random_seed(config.seed)
        state = {"config": dataclasses.asdict(config), "data_epoch": 0}
        CheckpointManager(run / "checkpoints").save(build_model(config), 1, state)
        (run / "config.json").write_text(json.dumps(dataclasses.asdict(config), indent=2))
        os.symlink(run, folder / "runs" / "sprites")
        patch.chdir(folder)
        yield folder


def test_substitutions_still_match_the_readme():
    running = "".join(code for _, code, reason in BLOCKS if reason is None)
    for original in TINY_SIZES:
        assert original in running, f"README no longer has {original!r}: update TINY_SIZES"
    assert sum(reason is not None for _, _, reason in BLOCKS) <= 4, "keep README skips few"


@pytest.mark.parametrize(("line", "code", "skip"), BLOCKS, ids=[f"line{b[0]}" for b in BLOCKS])
def test_readme_block_runs(line, code, skip, request):
    if skip is not None or keras.backend.backend() != "tensorflow":
        imports = [
            node for node in ast.parse(code).body if isinstance(node, ast.Import | ast.ImportFrom)
        ]
        exec(compile(ast.Module(imports, type_ignores=[]), f"README.md:{line}", "exec"), {})
        return
    request.getfixturevalue("readme_folder")
    for original, tiny in TINY_SIZES.items():
        code = code.replace(original, tiny)
    namespace = {"__name__": "readme"}
    exec(compile(code, f"README.md:{line}", "exec"), namespace)
