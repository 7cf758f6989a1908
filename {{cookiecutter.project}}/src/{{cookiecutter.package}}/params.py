"""Reading params.yaml, the one place every knob of the pipeline lives."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from .errors import ConfigError

PARAMS = Path("params.yaml")


class ParamsError(ConfigError):
    """params.yaml is missing a key or has a value of the wrong kind."""


def load_params(path: str | Path = PARAMS) -> dict[str, Any]:
    """Read params.yaml as a mapping."""
    path = Path(path)
    if not path.is_file():
        raise ParamsError(f"{path}: not found; run the command from the project root")
    params = yaml.safe_load(path.read_text(encoding="utf-8"))
    if not isinstance(params, dict):
        raise ParamsError(f"{path}: expected a mapping at the top level")
    return params


def require(params: dict[str, Any], dotted: str, kind: type | tuple[type, ...]) -> Any:
    """The value at `a.b.c`, checked to be of `kind`; ParamsError names the key otherwise."""
    value: Any = params
    for part in dotted.split("."):
        if not isinstance(value, dict) or part not in value:
            raise ParamsError(f"params.yaml: missing `{dotted}`")
        value = value[part]
    if not isinstance(value, kind) or (isinstance(value, bool) and bool not in _tuple(kind)):
        names = " or ".join(k.__name__ for k in _tuple(kind))
        raise ParamsError(f"params.yaml: `{dotted}` is {value!r}; expected {names}")
    return value


def _tuple(kind: type | tuple[type, ...]) -> tuple[type, ...]:
    return kind if isinstance(kind, tuple) else (kind,)
