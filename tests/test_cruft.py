"""A baked project records its template commit, and `cruft update` applies later changes."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from .conftest import VARIANTS, bake
from .generated_files import (
    ROOT,
    run,
    tool,
)


def git(cwd: Path, *args: str) -> str:
    done = run(["git", "-c", "user.name=t", "-c", "user.email=t@example.invalid", *args], cwd=cwd)
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


def test_cruft_update(tmp_path: Path) -> None:
    """A baked project records the template commit, and `cruft update` applies a later change."""
    template = tmp_path / "template"
    shutil.copytree(
        ROOT,
        template,
        ignore=shutil.ignore_patterns(
            ".git", "node_modules", ".venv", "__pycache__", ".pytest_cache"
        ),
    )
    git(template, "init", "--quiet", "--initial-branch=main")
    git(template, "add", "-A")
    git(template, "commit", "--quiet", "-m", "template v1")
    first = git(template, "rev-parse", "HEAD")

    project = bake(tmp_path / "out", template=template, **VARIANTS["kubernetes"])
    state = json.loads((project / ".cruft.json").read_text())
    assert state["commit"] == first
    assert state["template"] == str(template)
    assert state["context"]["cookiecutter"]["deploy_target"] == "kubernetes"
    if not (project / ".git").exists():
        git(project, "init", "--quiet")
    git(project, "add", "-A")
    git(project, "commit", "--quiet", "-m", "baked")

    ignore = template / "{{cookiecutter.project}}" / ".dockerignore"
    ignore.write_text(ignore.read_text() + "*.log\n")
    git(template, "commit", "--quiet", "-am", "template v2: ignore logs in the image context")
    second = git(template, "rev-parse", "HEAD")

    cruft = tool("cruft")
    done = run([cruft, "check"], cwd=project)
    assert done.returncode != 0, "cruft check should see the project is behind"
    done = run([cruft, "update", "--skip-apply-ask", "--allow-untracked-files"], cwd=project)
    assert done.returncode == 0, done.stdout + done.stderr
    assert (project / ".dockerignore").read_text().endswith("*.log\n")
    assert json.loads((project / ".cruft.json").read_text())["commit"] == second
    assert run([cruft, "check"], cwd=project).returncode == 0
