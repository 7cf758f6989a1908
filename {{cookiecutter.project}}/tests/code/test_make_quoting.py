"""Values given to make (DATA, BASE, VERSION, ...) reach commands as data, never as code."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.conftest import ROOT

HOSTILE = [
    'x"; touch pwned; echo "',
    "`touch pwned`",
    "x; touch pwned",
    "it's a 'file' with \"quotes\" and spaces.csv",
    "$(shell touch pwned)",  # make code: expanded if the value were exported or read as $(X)
]
# (target, variable it takes, other make arguments)
TARGETS = [
    ("drift-check", "DATA", ()),
    ("metrics-diff", "BASE", ()),
    ("deploy-canary", "BAD", ()),
    ("serve", "VERSION", ()),
    ("deploy-staging", "VERSION", ()),
    ("deploy-staging", "IMAGE", ("TARGET=k8s",)),
    ("k8s-render", "VERSION", ()),
    ("k8s-render", "IMAGE", ()),
    ("score", "DATA", ()),
    ("performance", "LABELS", ()),
    ("remote", "URL", ()),
]


@pytest.fixture
def fake_tools(tmp_path: Path) -> Path:
    """A VENV whose python (and dvc) only record their arguments, one per line."""
    bin_dir = tmp_path / "venv" / "bin"
    bin_dir.mkdir(parents=True)
    for tool in ("python", "dvc"):
        script = bin_dir / tool
        script.write_text('#!/bin/sh\nprintf "%s\\n" "$@" >> "$ARGS_OUT"\n')
        script.chmod(0o755)
    return tmp_path / "venv"


@pytest.mark.skipif(shutil.which("make") is None, reason="needs GNU make")
@pytest.mark.parametrize("value", HOSTILE)
@pytest.mark.parametrize(("target", "variable", "more"), TARGETS)
def test_make_variables_are_not_shell_code(tmp_path, fake_tools, target, variable, more, value):
    """The hostile value runs nothing (no `pwned` file) and arrives as one exact argument."""
    work = tmp_path / "work"
    work.mkdir()
    record = tmp_path / "args.txt"
    env = {**os.environ, "ARGS_OUT": str(record)}
    env.pop("MAKEFLAGS", None)
    result = subprocess.run(
        [
            "make",
            "--no-print-directory",
            "-f",
            str(ROOT / "Makefile"),
            target,
            f"VENV={fake_tools}",
            f"{variable}={value}",
            *more,
        ],
        cwd=work,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert not (work / "pwned").exists(), result.stdout + result.stderr
    assert result.returncode == 0, result.stdout + result.stderr
    assert value in record.read_text().splitlines()
