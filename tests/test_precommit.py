"""The generated project's pre-commit hooks and `make lint` run the same checks.

Each hook in `.pre-commit-config.yaml` runs one `make lint-*` target, and `make lint` is made
of exactly those targets; `make install` installs the hook in a git repository. Proven on a
bake: pre-commit passes on the clean tree and fails, like `make lint`, on a planted problem.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

import pytest
import yaml

from .conftest import bake, run, tool_env

VENV = Path(sys.prefix)


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fresh bake, committed so pre-commit sees every file."""
    baked = bake(tmp_path_factory.mktemp("precommit"))
    run(["git", "add", "-A"], baked)
    return baked


def env(project: Path) -> dict[str, str]:
    """The baked project's make and pre-commit, with this test environment as its .venv."""
    return tool_env(project) | {"VENV": str(VENV), "PRE_COMMIT_HOME": str(project.parent / "pc")}


def lint_targets(makefile: str) -> list[str]:
    (line,) = [line for line in makefile.splitlines() if line.startswith("lint:")]
    return line.split(":", 1)[1].split("##", 1)[0].split()


def test_every_hook_is_a_lint_target_and_every_lint_target_a_hook(project: Path) -> None:
    """The hooks call `make lint-*` targets, local tools only; together they are `make lint`."""
    config = yaml.safe_load((project / ".pre-commit-config.yaml").read_text(encoding="utf-8"))
    hooks = [hook for repo in config["repos"] for hook in repo["hooks"]]
    assert {repo["repo"] for repo in config["repos"]} == {"local"}  # no download, no network
    called = []
    for hook in hooks:
        match = re.fullmatch(r"make --no-print-directory (lint-[a-z]+)", hook["entry"])
        assert match, hook
        assert hook["pass_filenames"] is False, hook  # each target checks the whole tree
        called.append(match.group(1))
    assert sorted(called) == sorted(lint_targets((project / "Makefile").read_text()))


def test_make_install_installs_the_hook(project: Path) -> None:
    """`make install` runs `pre-commit install` when the project is a git repository."""
    script = run(["make", "-n", "install"], project, env=env(project)).stdout
    assert "git rev-parse --git-dir" in script
    assert "pre-commit install" in script


@pytest.mark.slow
def test_pre_commit_and_make_lint_agree(project: Path) -> None:
    """Both pass on the clean bake; both fail on a lint error, broken YAML and a type error."""
    precommit = [str(VENV / "bin" / "pre-commit"), "run", "--all-files"]
    run(["make", "--no-print-directory", "lint"], project, env=env(project))
    run(precommit, project, env=env(project))
    planted = {
        project / "src" / "churn_model" / "planted.py": "import os\n",
        project / "planted.yaml": "key: [unclosed\n",
        project / "src" / "churn_model" / "planted_types.py": 'def f() -> int:\n    return "x"\n',
    }
    for path, text in planted.items():
        path.write_text(text, encoding="utf-8")
        run(["git", "add", str(path)], project)
        try:
            make = run(["make", "lint"], project, check=False, env=env(project))
            hooks = run(precommit, project, check=False, env=env(project))
            assert make.returncode != 0, make.stdout
            assert hooks.returncode != 0, hooks.stdout
            assert path.name in make.stdout + make.stderr
            assert path.name in hooks.stdout + hooks.stderr
        finally:
            run(["git", "rm", "-q", "--cached", str(path)], project)
            path.unlink()
