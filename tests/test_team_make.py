"""The team's make targets with real make, real DVC and hostile values.

`make push` right after `make remote` (the README's order) pushes what exists and says so;
WORKERS, INSTALLER and OVERRIDE reach commands as data, never as shell or make code; the
paths make itself uses (PYTHON, VENV, SERVER_VENV) refuse shell and make syntax.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from .conftest import bake, run
from .test_team import commit_all, make

HOSTILE = [
    'x"; touch pwned; echo "',
    "`touch pwned`",
    "x; touch pwned",
    "$(touch pwned)",
    "$(shell touch pwned)",
]


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    project = bake(tmp_path_factory.mktemp("make"))
    commit_all(project, "baked")
    return project


def test_push_before_the_first_repro_pushes_the_data_and_says_what(project: Path, tmp_path: Path):
    """After `make remote`, before any `dvc repro`: `make push` sends the raw data, names it,
    names each stage it could not push yet and what to run; then, after a stage has run, it
    pushes that stage's outputs too."""
    remote = tmp_path / "remote"
    make(project, "remote", f"URL={remote}")
    pushed = make(project, "push")
    out = pushed.stdout
    assert "sent to DVC remote 'storage': data/raw/churn.csv.dvc" in out, out
    for stage in ("validate", "train", "evaluate", "gate", "promote"):
        assert f"not pushed: stage {stage} has not run here" in out, out
    assert "run `dvc repro`" in out
    raw_md5 = (project / "data" / "raw" / "churn.csv.dvc").read_text().split("md5: ")[1].split()[0]
    stored = {p.name for p in remote.rglob("*") if p.is_file()}
    assert raw_md5[2:] in stored, stored  # DVC keeps files/md5/XX/REST

    make(project, "validate")
    again = make(project, "push").stdout
    assert "data/raw/churn.csv.dvc, validate" in again, again
    assert "not pushed: stage validate" not in again and "not pushed: stage train" in again
    validated = run(["dvc", "status", "--cloud", "validate"], project).stdout
    assert "Cache and remote 'storage' are in sync" in validated, validated


def fake_venv(root: Path, tools: tuple[str, ...]) -> Path:
    """A venv whose tools only record their arguments, one per line, in $ARGS_OUT."""
    bin_dir = root / "bin"
    bin_dir.mkdir(parents=True, exist_ok=True)
    for tool in tools:
        script = bin_dir / tool
        script.write_text('#!/bin/sh\nprintf "%s\\n" "$@" >> "$ARGS_OUT"\n')
        script.chmod(0o755)
    return root


@pytest.mark.parametrize("value", HOSTILE)
def test_workers_is_data(project: Path, tmp_path: Path, value: str) -> None:
    """`make registry-server WORKERS=...`: the value arrives as one argument of
    `mlflow server --workers`, and nothing in it runs."""
    server = fake_venv(tmp_path / "server-venv", ("mlflow",))
    (server / ".installed").touch()
    os.utime(project / "requirements" / "server.txt", (0, 0))  # older than .installed
    record = tmp_path / "args.txt"
    env = {**os.environ, "ARGS_OUT": str(record)}
    env.pop("MAKEFLAGS", None)
    done = subprocess.run(
        ["make", "--no-print-directory", "registry-server", f"SERVER_VENV={server}",
         f"WORKERS={value}"],
        cwd=project, env=env, capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert not (project / "pwned").exists(), done.stdout + done.stderr
    assert done.returncode == 0, done.stdout + done.stderr
    arguments = record.read_text().splitlines()
    assert arguments[arguments.index("--workers") + 1] == value


@pytest.mark.parametrize("value", HOSTILE)
def test_installer_is_data(tmp_path: Path, project: Path, value: str) -> None:
    """`make install INSTALLER=...` (with a recording python and venv): nothing in the value
    runs, and an installer that is not `uv` means pip, with the locked files hash-checked."""
    work = tmp_path / "work"
    work.mkdir()
    shutil.copy(project / "Makefile", work / "Makefile")  # `make setup` runs as a sub-make
    (work / "requirements").mkdir()
    for name in ("dev.txt", "installer.txt"):
        (work / "requirements" / name).write_text("")
    venv = fake_venv(tmp_path / "venv", ("python", "dvc", "pre-commit"))
    record = tmp_path / "args.txt"
    env = {**os.environ, "ARGS_OUT": str(record)}
    env.pop("MAKEFLAGS", None)
    done = subprocess.run(
        ["make", "--no-print-directory", "install",
         f"VENV={venv}", f"PYTHON={venv}/bin/python", f"INSTALLER={value}"],
        cwd=work, env=env, capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert not (work / "pwned").exists(), done.stdout + done.stderr
    assert done.returncode == 0, done.stdout + done.stderr
    arguments = record.read_text().splitlines()
    assert "--require-hashes" in arguments and "pip" in arguments
    assert "--no-build-isolation" in arguments  # the build backend comes from the lock


@pytest.mark.parametrize("name", ["PYTHON", "VENV", "SERVER_VENV"])
@pytest.mark.parametrize(
    "value", [*HOSTILE, "x;touch${IFS}pwned", "$(shell${IFS}touch${IFS}pwned)"]
)
def test_a_path_make_uses_refuses_shell_syntax(project: Path, name: str, value: str) -> None:
    """PYTHON, VENV and SERVER_VENV are make text (targets, prerequisites), so they cannot go
    through the environment: a value with shell or make syntax stops make before anything
    expands it, naming the variable; a plain path still works."""
    env = {k: v for k, v in os.environ.items() if k != "MAKEFLAGS"}
    done = subprocess.run(
        ["make", "--no-print-directory", "-n", "install", f"{name}={value}"],
        cwd=project, env=env, capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert not (project / "pwned").exists(), done.stdout + done.stderr
    assert done.returncode != 0 and f"*** {name} " in done.stderr, done.stderr
    assert done.stdout == ""
    plain = subprocess.run(
        ["make", "--no-print-directory", "-n", "install", f"{name}=/opt/tools/x-1.2_3/.venv"],
        cwd=project, env=env, capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert plain.returncode == 0, plain.stderr


@pytest.mark.parametrize("value", HOSTILE)
def test_override_is_data(project: Path, tmp_path: Path, value: str) -> None:
    """OVERRIDE reaches the pipeline as PROMOTION_OVERRIDE, the exact text, nothing run."""
    probe = tmp_path / "probe.mk"
    probe.write_text(
        'include Makefile\nprobe-override:\n\t@printf "%s" "$$PROMOTION_OVERRIDE" > "$$ARGS_OUT"\n'
    )
    record = tmp_path / "override.txt"
    env = {**os.environ, "ARGS_OUT": str(record)}
    env.pop("MAKEFLAGS", None)
    done = subprocess.run(
        ["make", "--no-print-directory", "-f", str(probe), "probe-override", f"OVERRIDE={value}"],
        cwd=project, env=env, capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert not (project / "pwned").exists(), done.stdout + done.stderr
    assert done.returncode == 0, done.stdout + done.stderr
    assert record.read_text() == value
