"""absl flags generated from a configuration dataclass, and the configuration read back."""

from __future__ import annotations

import os
import sys
import types
import typing
from pathlib import Path
from typing import Any

from absl import flags

from avlae_keras.config import RunConfig

# configs/ of a source checkout (also where an editable install finds it).
PACKAGED_CONFIGS = Path(__file__).resolve().parents[2] / "configs"


def _unwrap_optional(annotation: Any) -> Any:
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        members = [a for a in typing.get_args(annotation) if a is not type(None)]
        if len(members) == 1:
            return members[0]
    return annotation


def define_flags(config_class: type[RunConfig], flag_values: flags.FlagValues = flags.FLAGS):
    """Defines one flag per option of `config_class` with its name, type, default, help and
    choices (options declared with `flag=False` are skipped). They are registered as the main
    program's own flags, so `--help` lists them."""
    types_ = config_class.field_types()
    defaults = config_class()
    for field in config_class.fields():
        if not field.metadata.get("flag", True):
            continue
        name, help_text = field.name, field.metadata["help"]
        default = getattr(defaults, name)
        choices = field.metadata.get("choices")
        annotation = _unwrap_optional(types_[name])
        common = {"flag_values": flag_values, "module_name": sys.argv[0]}
        if typing.get_origin(annotation) in (tuple, list):
            flags.DEFINE_list(name, list(default), help_text, **common)
        elif annotation is bool:
            flags.DEFINE_boolean(name, default, help_text, **common)
        elif annotation is int:
            flags.DEFINE_integer(name, default, help_text, **common)
        elif annotation is float:
            flags.DEFINE_float(name, default, help_text, **common)
        elif annotation is str and choices:
            flags.DEFINE_enum(name, default, list(choices), help_text, **common)
        elif annotation is str:
            flags.DEFINE_string(name, default, help_text, **common)
        else:
            raise TypeError(f"{config_class.__name__}.{name}: no flag type for {annotation}")


def config_from_flags(
    config_class: type[RunConfig], flag_values: flags.FlagValues = flags.FLAGS
) -> RunConfig:
    """The configuration the parsed flags describe (options without a flag keep defaults)."""
    values = {
        field.name: flag_values[field.name].value
        for field in config_class.fields()
        if field.name in flag_values
    }
    return config_class.from_dict(values)


def resolve_flagfiles(argv: list[str], configs_dir: Path = PACKAGED_CONFIGS) -> list[str]:
    """`--flagfile=NAME` that is not a path from the working directory becomes
    `<configs_dir>/NAME` when that exists, so `--flagfile=uva.flags` works from anywhere."""
    resolved = []
    for arg in argv:
        if arg.startswith("--flagfile="):
            name = arg.split("=", 1)[1]
            candidate = configs_dir / name
            if not os.path.exists(name) and candidate.exists():
                arg = f"--flagfile={candidate}"
            elif not os.path.exists(name):
                known = sorted(p.name for p in configs_dir.glob("*.flags"))
                raise SystemExit(
                    f"--flagfile: {name} not found here nor in {configs_dir}; "
                    f"available: {', '.join(known) or 'none'}"
                )
        resolved.append(arg)
    return resolved
