"""One family of expected failures, each with its documented exit code.

An `ExpectedError` is something the user can fix (bad data, bad configuration, a refused
promotion or deploy, an unreachable service): `run_main` (the one place, used by `cli.py` and
every `python -m` entry point) prints its message and exits with its code. Anything else is
a bug and keeps its traceback (exit code 1). Each module's own errors subclass one of these,
so a caller catches the family it can act on, never a bare `RuntimeError`.

| exit code | meaning |
| --- | --- |
| 0 | done |
| 1 | a bug: an unexpected exception, with its traceback |
| 2 | wrong command line (argparse) |
| 3 | `ConfigError`: params.yaml or contract.yaml says something impossible |
| 4 | `DataError`: a data file or a model file is not what the contract expects |
| 5 | `RefusedError`: a gate, a drift check, a promotion or a deploy said no |
| 6 | `ServiceError`: a registry, remote or server could not be reached or used |
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import ClassVar


class ExpectedError(Exception):
    """A failure the user can fix: reported in one line, never as a traceback."""

    exit_code: ClassVar[int] = 1


class ConfigError(ExpectedError, ValueError):
    """params.yaml or contract.yaml is missing a key or has a value that is not allowed."""

    exit_code = 3


class DataError(ExpectedError, ValueError):
    """A data or model file cannot be used as the contract describes."""

    exit_code = 4


class RefusedError(ExpectedError):
    """A check said no: a gate failed, a promotion or a deploy was refused."""

    exit_code = 5


class ServiceError(ExpectedError, RuntimeError):
    """A registry, DVC remote or server could not be reached or did not do what was asked."""

    exit_code = 6


def run_main(name: str, main: Callable[[list[str]], int | None], argv: list[str]) -> int:
    """Run a command's `main`; an ExpectedError becomes one line on stderr and its exit code."""
    try:
        return int(main(argv) or 0)
    except ExpectedError as error:
        print(f"{name}: {error}", file=sys.stderr)
        return error.exit_code
