"""The one base of every typed file (params.yaml, contract.yaml, profile.yaml, the records,
the deploy state) and the one way to word what is wrong with one.

Unknown keys are errors and values are immutable, so a typo never falls back to a default
and nothing edits a loaded file behind its reader's back.
"""

from __future__ import annotations

from typing import Any, TypeVar

from pydantic import BaseModel, ConfigDict, ValidationError

from .errors import ConfigError, ExpectedError


class Frozen(BaseModel):
    """A typed file or a section of one: unknown keys are errors, values are immutable."""

    model_config = ConfigDict(extra="forbid", frozen=True)


M = TypeVar("M", bound=BaseModel)


def describe(error: ValidationError, source: str, at: str = "") -> str:
    """`source:` then one line per problem: the dotted key, the value given, what is allowed."""
    lines = []
    for problem in error.errors():
        key = ".".join(str(part) for part in (at, *problem["loc"]) if part != "") or "(top level)"
        given = problem.get("input")
        if problem["type"] == "extra_forbidden":
            lines.append(f"  {key}: unknown key (a typo?)")
        elif problem["type"] == "missing":
            lines.append(f"  {key}: missing")
        elif isinstance(given, (dict, list, tuple)):  # a whole section: its repr says nothing
            lines.append(f"  {key}: {problem['msg']}")
        else:
            lines.append(f"  {key}: {given!r} is not allowed: {problem['msg']}")
    return f"{source}:\n" + "\n".join(lines)


def parse(
    kind: type[M],
    raw: Any,
    source: str,
    error: type[ExpectedError] = ConfigError,
    at: str = "",
) -> M:
    """Validate `raw` as `kind`; `error` (a ConfigError by default) names every bad key."""
    try:
        return kind.model_validate(raw)
    except ValidationError as problem:
        raise error(describe(problem, source, at)) from None
