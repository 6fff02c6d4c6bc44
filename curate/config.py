"""Typed, strict configuration: a frozen dataclass per section; unknown keys are errors."""

from __future__ import annotations

import difflib
import json
from dataclasses import dataclass, field, fields, is_dataclass
from pathlib import Path
from typing import Any, TypeVar, get_type_hints

import tomllib

from curate.errors import ConfigError

T = TypeVar("T")
CONFIG_FILE = "curate.toml"


@dataclass(frozen=True)
class ProjectSection:
    name: str


@dataclass(frozen=True)
class DatabaseSection:
    # A SQLite path is relative to the project directory; or a postgresql:// URL for a shared server.
    url: str = "sqlite:///curate.db"


@dataclass(frozen=True)
class ModelsSection:
    # Hub ids (resolved offline from the Hugging Face cache or a packaged model) or local folders.
    embedding: str = "sentence-transformers/all-MiniLM-L6-v2"
    policy: str = "HuggingFaceTB/SmolLM2-135M-Instruct"  # packaged as GGUF, dequantised into cache/models


@dataclass(frozen=True)
class ProjectConfig:
    """Everything in ``curate.toml``."""

    project: ProjectSection
    database: DatabaseSection = field(default_factory=DatabaseSection)
    models: ModelsSection = field(default_factory=ModelsSection)


def from_mapping(cls: type[T], data: Any, *, where: str) -> T:
    """Build dataclass ``cls`` from ``data``; unknown or misspelt keys and wrong types raise ConfigError."""
    if not isinstance(data, dict):
        raise ConfigError(f"{where}: expected a table of keys, got {type(data).__name__}")
    hints = get_type_hints(cls)
    names = [f.name for f in fields(cls)]  # type: ignore[arg-type]
    for key in data:
        if key not in names:
            close = difflib.get_close_matches(key, names, n=1)
            hint = f"; did you mean '{close[0]}'?" if close else ""
            raise ConfigError(f"unknown key '{key}' in {where}{hint} (valid keys: {', '.join(names)})")
    values = {}
    for name in names:
        if name not in data:
            continue
        kind, value = hints[name], data[name]
        if is_dataclass(kind):
            values[name] = from_mapping(kind, value, where=f"{where} [{name}]")
        elif not _matches(kind, value):
            raise ConfigError(f"{where}: '{name}' must be {_type_name(kind)}, got {value!r}")
        else:
            values[name] = value
    try:
        return cls(**values)
    except TypeError as err:
        missing = [f.name for f in fields(cls) if f.name not in values]  # type: ignore[arg-type]
        raise ConfigError(f"{where}: missing required key(s): {', '.join(missing)}") from err


def _matches(kind: Any, value: Any) -> bool:
    if kind is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if kind is int:
        return isinstance(value, int) and not isinstance(value, bool)
    return isinstance(value, kind) if isinstance(kind, type) else True


def _type_name(kind: Any) -> str:
    return {str: "text", int: "an integer", float: "a number", bool: "true or false"}.get(kind, str(kind))


def load_config(path: Path) -> ProjectConfig:
    """Read and validate ``curate.toml``."""
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as err:
        raise ConfigError(f"{path}: cannot read ({err.strerror})") from None
    except tomllib.TOMLDecodeError as err:
        raise ConfigError(f"{path}: invalid TOML ({err})") from None
    return from_mapping(ProjectConfig, data, where=str(path))


def dump_config(config: ProjectConfig) -> str:
    """TOML text for ``config`` (sections of scalar values)."""
    lines = ["# curate project configuration (strict: unknown keys are errors)"]
    for section in fields(config):
        lines.append(f"\n[{section.name}]")
        for item in fields(getattr(config, section.name)):
            value = getattr(getattr(config, section.name), item.name)
            lines.append(f"{item.name} = {json.dumps(value) if isinstance(value, str) else value}")
    return "\n".join(lines) + "\n"
