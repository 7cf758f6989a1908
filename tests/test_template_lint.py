"""The template's own code (tests, benchmarks) is held to the standard of what it generates."""

from __future__ import annotations

import sys
from pathlib import Path

from .conftest import TEMPLATE, run


def test_ruff_check_and_format():
    """ruff finds nothing and would reformat nothing in bench/ and tests/."""
    ruff = str(Path(sys.executable).parent / "ruff")
    run([ruff, "check", "bench", "tests"], TEMPLATE)
    run([ruff, "format", "--check", "bench", "tests"], TEMPLATE)
