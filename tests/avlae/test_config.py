"""The run configurations are the single source of truth: flags, model arguments, checks,
config.json, entry points and the package's layering all follow from them."""

import ast
import dataclasses
import inspect
import json
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
from absl import flags

from avlae_keras.cli.config_flags import config_from_flags, define_flags, resolve_flagfiles
from avlae_keras.config import (
    ARCHITECTURE_OPTIONS,
    ConfigError,
    EvalConfig,
    ExportConfig,
    PrepareDataConfig,
    SampleConfig,
    TrainConfig,
)
from tests.conftest import REPO_ROOT

CONFIGS = (TrainConfig, EvalConfig, SampleConfig, ExportConfig, PrepareDataConfig)
# The application of each configuration: a module whose `run(config)` returns a report.
APPLICATIONS = {
    TrainConfig: "avlae_keras.trainer",
    EvalConfig: "avlae_keras.evaluation",
    SampleConfig: "avlae_keras.figures",
    ExportConfig: "avlae_keras.export",
    PrepareDataConfig: "avlae_keras.prepare_data",
}


@pytest.mark.parametrize("config_class", CONFIGS, ids=lambda c: c.__name__)
def test_every_field_has_exactly_one_flag_with_its_default(config_class):
    flag_values = flags.FlagValues()
    define_flags(config_class, flag_values)
    flagged = [f for f in config_class.fields() if f.metadata["flag"]]
    assert sorted(flag_values) == sorted(f.name for f in flagged)
    defaults = config_class()
    for field in flagged:
        default = flag_values[field.name].default
        expected = getattr(defaults, field.name)
        assert (tuple(default) if isinstance(default, list) else default) == expected, field.name
        assert flag_values[field.name].help.endswith(field.metadata["help"])


def test_the_train_command_defines_every_train_config_flag():
    from avlae_keras.cli import train as train_command

    flag_values = flags.FlagValues()
    define_flags(TrainConfig, flag_values)
    assert train_command.define_flags is define_flags  # the command uses the generated flags
    assert {f.name for f in TrainConfig.fields()} == set(flag_values)


def test_a_flagfile_a_python_call_and_config_json_describe_a_run_the_same_way(tmp_path):
    flag_values = flags.FlagValues()
    define_flags(TrainConfig, flag_values)
    argv = resolve_flagfiles(["train", "--flagfile=demo.flags", f"--workdir={tmp_path}"])
    flag_values(argv)
    from_flags = config_from_flags(TrainConfig, flag_values)
    lines = (REPO_ROOT / "configs" / "demo.flags").read_text().splitlines()
    options = dict(line.removeprefix("--").split("=", 1) for line in lines if line.startswith("--"))
    types = TrainConfig.field_types()
    python = {}
    for key, text in options.items():
        kind = types[key] if key != "flagfile" else str
        python[key] = (
            text.lower() == "true" if kind is bool else type(getattr(from_flags, key))(text)
        )
    from_python = TrainConfig(**{**python, "workdir": str(tmp_path)})
    assert from_flags == from_python
    (tmp_path / "config.json").write_text(json.dumps(from_python.to_dict()))
    assert TrainConfig.from_dict(json.loads((tmp_path / "config.json").read_text())) == from_python


def test_model_arguments_are_avlae_arguments():
    from avlae_keras.model import AVLAE

    parameters = inspect.signature(AVLAE.__init__).parameters
    arguments = TrainConfig(workdir="w").model_arguments()
    assert set(arguments) <= set(parameters)
    for name in arguments:
        # flow_estimator: the RAFT preset, or None without EM; seed: AVLAE alone draws one.
        if name not in ("flow_estimator", "seed"):
            assert parameters[name].default == getattr(TrainConfig(), name), name
    assert (
        TrainConfig(workdir="w", use_motion_encoder=False, k1=0).model_arguments()["flow_estimator"]
        is None
    )
    assert set(ARCHITECTURE_OPTIONS) <= set(arguments)


@pytest.mark.parametrize(
    "changes, flag",
    [
        ({"resolution": 4}, "resolution"),
        ({"resolution": 24}, "resolution"),
        ({"frames": 1}, "frames"),
        ({"use_motion_encoder": False}, "k1"),
        ({"batch_size": 6}, "minibatch_stddev_group"),
        ({"dataset": "nope"}, "dataset"),
        ({"dataset": "folder"}, "data_path"),
        ({"latent_injection": "split", "generator_normalize_each_conv": False}, "latent_injection"),
        ({"steps_per_execution": 0}, "steps_per_execution"),
        ({"steps_per_execution": 2, "distribution": "data_parallel"}, "steps_per_execution"),
    ],
)
def test_validation_names_the_flag(changes, flag):
    with pytest.raises(ConfigError, match=f"--{flag}"):
        TrainConfig(workdir="w", **changes).validate(check_files=False)


def test_the_smallest_resolution_the_networks_take_is_valid():
    TrainConfig(workdir="w", resolution=8).validate(check_files=False)
    with pytest.raises(ConfigError, match="--metrics"):
        EvalConfig(workdir="w", metrics=("fvd", "nope")).validate()


def test_flagfile_is_looked_up_in_configs():
    resolved = resolve_flagfiles(["train.py", "--flagfile=uva.flags", "--steps=3"])
    assert resolved[1] == f"--flagfile={REPO_ROOT / 'configs' / 'uva.flags'}"
    with pytest.raises(SystemExit, match="demo.flags"):
        resolve_flagfiles(["train.py", "--flagfile=nonexistent.flags"])


def test_entry_points_exist_and_scripts_are_thin_wrappers():
    project = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())["project"]
    for name, target in project["scripts"].items():
        module_name, function = target.split(":")
        module = __import__(module_name, fromlist=[function])
        assert callable(getattr(module, function)), name
    for script in (REPO_ROOT / "scripts").glob("*.py"):
        text = script.read_text()
        assert "sys.path" not in text and "def main" not in text, script.name


def _imports(path: Path) -> set[str]:
    """Every module a file imports, at any depth (lazy imports included)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module:
            found.add(node.module)
            found.update(f"{node.module}.{alias.name}" for alias in node.names)  # submodules
        elif isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
    return found


def test_applications_never_import_each_other():
    applications = set(APPLICATIONS.values())
    package = REPO_ROOT / "avlae_keras"
    for module in applications:
        path = package / f"{module.split('.')[-1]}.py"
        others = _imports(path) & (applications - {module})
        assert not others, f"{module} imports {others}"
    for path in [*package.rglob("*.py")]:
        if "cli" in path.parts:
            continue
        module = ".".join(path.relative_to(REPO_ROOT).with_suffix("").parts)
        if module in applications:
            continue
        assert not _imports(path) & applications, f"{module} imports an application"


@pytest.mark.parametrize("config_class", CONFIGS, ids=lambda c: c.__name__)
def test_each_command_runs_its_application_with_its_configuration(config_class):
    import importlib
    import typing

    module_name = APPLICATIONS[config_class]
    run = importlib.import_module(module_name).run
    assert typing.get_type_hints(run)["config"] is config_class
    command = importlib.import_module(f"avlae_keras.cli.{config_class.APPLICATION}")
    assert f'"{module_name}"' in inspect.getsource(command.main)  # run_application's argument


def test_no_import_cycles_inside_data():
    folder = REPO_ROOT / "avlae_keras" / "data"
    graph = {}
    for path in folder.glob("*.py"):
        if path.name == "__init__.py":
            continue
        name = f"avlae_keras.data.{path.stem}"
        graph[name] = {m for m in _imports(path) if m.startswith("avlae_keras.data.")}

    def visit(node, trail):
        assert node not in trail, " -> ".join([*trail, node])
        for following in graph.get(node, ()):
            visit(following, [*trail, node])

    for node in graph:
        visit(node, [])


_WITHOUT_PYAV = """
import sys
class NoPyAV:
    def find_spec(self, name, path=None, target=None):
        if name == "av" or name.startswith("av."):
            raise ImportError("No module named 'av' (hidden by the test)")
sys.meta_path.insert(0, NoPyAV())
import avlae_keras, avlae_keras.trainer
from avlae_keras.config import TrainConfig
from avlae_keras.data import read_video, training_batches
batches = training_batches(TrainConfig(workdir="w", resolution=16, frames=4, num_videos=8,
                                       batch_size=2))
print("batch", batches.load_clips(0).shape)
try:
    read_video(sys.argv[1])
except ImportError as error:
    print("error:", error)
"""


def test_training_data_works_without_pyav_and_decoding_names_it(tmp_path):
    video = tmp_path / "clip.mp4"
    video.write_bytes(b"not read")
    result = subprocess.run(
        [sys.executable, "-c", _WITHOUT_PYAV, str(video)],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert "batch (2, 4, 16, 16, 3)" in result.stdout
    assert "pip install av" in result.stdout


def test_config_dataclasses_are_frozen_in_shape():
    # Every option has help text; choices are only on string or list options.
    for config_class in CONFIGS:
        for field in dataclasses.fields(config_class):
            assert field.metadata["help"], field.name


# What the paper fixes or, where it is silent, its plainest reading (README, "Training recipe").
PAPER_LITERAL = {
    "generator_normalization": "layer",
    "generator_normalize_each_conv": False,
    "generator_bias": False,
    "latent_injection": "input",
    "generator_temporal_padding": "zeros",
    "generator_initial_frames": 4,
    "mapping_lr_multiplier": 1.0,
    "normalize_latents": False,
    "minibatch_stddev_group": 0,
    "learning_rate": 2e-4,
    "r1_gamma": 0.0,
}


@pytest.mark.parametrize(
    "flagfile",
    sorted(
        p.name for p in (REPO_ROOT / "configs").glob("*.flags") if p.name != "paper_literal.flags"
    ),
)
def test_paper_literal_restores_every_literal_setting_after_any_flagfile(flagfile, tmp_path):
    flag_values = flags.FlagValues()
    define_flags(TrainConfig, flag_values)
    argv = [
        "train",
        f"--flagfile={flagfile}",
        "--flagfile=paper_literal.flags",
        f"--workdir={tmp_path}",
    ]
    flag_values(resolve_flagfiles(argv))
    config = config_from_flags(TrainConfig, flag_values)
    assert {key: getattr(config, key) for key in PAPER_LITERAL} == PAPER_LITERAL
    alone = flags.FlagValues()
    define_flags(TrainConfig, alone)
    alone(resolve_flagfiles(["train", f"--flagfile={flagfile}", f"--workdir={tmp_path}"]))
    # The ablations' own settings survive.
    for key in ("k1", "k2", "use_motion_encoder", "resolution", "frames", "dataset"):
        assert getattr(config, key) == alone[key].value, key


@pytest.mark.parametrize(
    "config",
    [
        TrainConfig(
            workdir="runs/a b",
            flip=True,
            jit_compile=False,
            learning_rate=1.5e-4,
            k1=0.0,
            generator_initial_frames=4,
            raft="/weights/raft-small.pth",
        ),
        EvalConfig(workdir="w", metrics=("fvd", "judge"), step=3),
    ],
    ids=lambda c: type(c).__name__,
)
def test_to_flags_is_a_flagfile_that_gives_the_configuration_back(config, tmp_path):
    flagfile = tmp_path / "flags.txt"
    flagfile.write_text("\n".join(config.to_flags()) + "\n")
    flag_values = flags.FlagValues()
    define_flags(type(config), flag_values)
    flag_values(["app", f"--flagfile={flagfile}"])
    assert config_from_flags(type(config), flag_values) == config


def test_metric_names_are_lower_case_each_once_in_order():
    from avlae_keras.config import metric_names

    assert metric_names(" FVD,fid,,fvd ") == ("fvd", "fid")
    assert metric_names(("Judge", "judge", "IS")) == ("judge", "is")
    assert metric_names("nope") == ("nope",)  # kept for the check that names it
