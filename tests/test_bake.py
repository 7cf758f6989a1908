"""Bake every supported combination; inspect what was baked."""

from __future__ import annotations

import fnmatch
import json
import re
import tomllib
from pathlib import Path
from typing import Any

import pytest
import yaml
from cookiecutter.environment import StrictEnvironment
from cookiecutter.generate import generate_context
from cookiecutter.prompt import prompt_for_config

from .conftest import MATRIX, TEMPLATE, bake, variant_id

UNRENDERED = re.compile(r"\{\{|\{%|\{#")
# GitHub expressions are ${{ ... }}: they must survive, and are not Jinja leftovers.
GITHUB_EXPRESSION = re.compile(r"\$\{\{.*?\}\}")
SKIP_DIRS = {".git", ".dvc", "__pycache__", ".ruff_cache", ".pytest_cache"}
COPIED_VERBATIM = json.loads((TEMPLATE / "cookiecutter.json").read_text())["_copy_without_render"]
ADVERSARIAL = {
    "project": 'Ünïcode Model\'s "x"',
    "package": "unicode_model",
    "description": "Quotes \" and ' and a backslash \\ and code: '); import os; os.system('x') #",
    "author": 'O\'Brien "Bob" \\ 山田 <bob@example.com>',
}


def files(project: Path) -> set[str]:
    """Every file of the project, relative, outside git and DVC internals."""
    return {
        p.relative_to(project).as_posix()
        for p in project.rglob("*")
        if p.is_file() and not SKIP_DIRS & set(p.relative_to(project).parts)
    }


def rendered_hook(answers: dict[str, str]) -> dict[str, Any]:
    """hooks/post_gen_project.py rendered for `answers` and loaded as a module (main not run)."""
    context = generate_context(str(TEMPLATE / "cookiecutter.json"), extra_context=answers)
    context["cookiecutter"] = prompt_for_config(context, no_input=True)
    source = (TEMPLATE / "hooks" / "post_gen_project.py").read_text(encoding="utf-8")
    text = StrictEnvironment(context=context).from_string(source).render(**context)
    namespace: dict[str, Any] = {"__name__": "post_gen_project"}
    exec(compile(text, "post_gen_project.py", "exec"), namespace)  # our own hook, rendered
    return namespace


def expected_tree(answers: dict[str, str]) -> set[str]:
    """The exact file tree a bake must produce: the template's listing less what the hook's
    VARIANT_PATHS table removes for these answers (the rules are read, not re-typed)."""
    hook = rendered_hook(answers)
    package, dataset = hook["PACKAGE"], hook["DATASET"]
    source = TEMPLATE / "{{cookiecutter.project}}"
    tree = set()
    for path in source.rglob("*"):
        relative = path.relative_to(source).as_posix()
        if not path.is_file() or SKIP_DIRS & set(path.parts) or relative.startswith("_variants/"):
            continue
        tree.add(relative.replace("{{cookiecutter.package}}", package))
    for keep, removed in hook["VARIANT_PATHS"]:
        if not keep:
            tree -= {p for p in tree if p == removed or p.startswith(f"{removed}/")}
    if dataset != "own":
        tree |= {"contract.yaml", f"data/raw/{dataset}.csv", f"data/raw/{dataset}.csv.dvc"}
        tree |= {"data/raw/.gitignore"}  # `dvc add` keeps the data itself out of git
    tree |= {".dvcignore"}  # dvc init writes it when the template has none
    return tree


def test_the_variant_table_names_template_files():
    """Every path the hook may remove exists in the template: a renamed file is not left in."""
    source = TEMPLATE / "{{cookiecutter.project}}"
    for _, removed in rendered_hook({})["VARIANT_PATHS"]:
        assert (source / removed.replace("churn_model", "{{cookiecutter.package}}")).exists(), (
            removed
        )


@pytest.mark.parametrize("answers", MATRIX, ids=variant_id)
def test_tree_and_rendering(tmp_path, answers):
    """Exactly the expected files, nothing left unrendered, every config file parses."""
    project = bake(tmp_path, **answers)
    assert files(project) == expected_tree(answers)
    for relative in files(project):
        path = project / relative
        if relative.startswith("data/raw/"):
            continue
        if any(fnmatch.fnmatch(relative, pattern) for pattern in COPIED_VERBATIM):
            source = relative.replace("src/churn_model/", "src/{{cookiecutter.package}}/")
            assert (
                path.read_bytes() == (TEMPLATE / "{{cookiecutter.project}}" / source).read_bytes()
            )
            if "{{" in path.read_text(encoding="utf-8") and path.suffix == ".html":
                # copied on purpose (byte-identical, checked above): the report renderer's
                # runtime Jinja templates
                continue
        text = GITHUB_EXPRESSION.sub("", path.read_text(encoding="utf-8"))
        assert not UNRENDERED.search(text), f"{relative}: unrendered Jinja"
        if path.suffix in (".yaml", ".yml", ".dvc"):
            list(yaml.safe_load_all(text))
        elif path.suffix == ".toml":
            tomllib.loads(text)
        elif path.suffix == ".json":
            json.loads(text)


def test_kubernetes_variant_keeps_its_files(tmp_path):
    """deploy_target=kubernetes bakes the manifests and the kind workflow as well."""
    project = bake(tmp_path, deploy_target="kubernetes")
    assert files(project) == expected_tree({"deploy_target": "kubernetes"})


def test_adversarial_answers_survive(tmp_path):
    """Quotes, backslashes, unicode and code-shaped text stay data, never code."""
    project = bake(tmp_path, **ADVERSARIAL)
    assert project.name == ADVERSARIAL["project"]
    pyproject = tomllib.loads((project / "pyproject.toml").read_text(encoding="utf-8"))
    assert pyproject["project"]["description"] == ADVERSARIAL["description"]
    assert pyproject["project"]["authors"] == [{"name": ADVERSARIAL["author"]}]
    assert pyproject["project"]["name"] == "unicode-model"
    params = yaml.safe_load((project / "params.yaml").read_text(encoding="utf-8"))
    assert params["model"]["kind"] == "hist_gradient_boosting"
    assert (project / "src" / "unicode_model" / "cli.py").is_file()


def test_default_package_is_derived_from_project(tmp_path):
    """project=fraud-scorer gives package fraud_scorer and distribution fraud-scorer."""
    project = bake(tmp_path, project="fraud-scorer")
    pyproject = tomllib.loads((project / "pyproject.toml").read_text(encoding="utf-8"))
    assert pyproject["project"]["name"] == "fraud-scorer"
    assert (project / "src" / "fraud_scorer").is_dir()
    assert "python -m fraud_scorer validate" in (project / "dvc.yaml").read_text()


@pytest.mark.parametrize("python_version", ["3.11", "3.12", "3.13"])
def test_python_version_reaches_every_tool(tmp_path, python_version):
    """The chosen Python is what pyproject, ruff, CI and the container image all use."""
    project = bake(tmp_path, python_version=python_version, deploy_target="kubernetes")
    pyproject = tomllib.loads((project / "pyproject.toml").read_text(encoding="utf-8"))
    assert pyproject["project"]["requires-python"] == f">={python_version}"
    assert pyproject["tool"]["ruff"]["target-version"] == f"py{python_version.replace('.', '')}"
    assert (project / ".python-version").read_text().strip() == python_version
    assert f"python:{python_version}." in (project / "Dockerfile").read_text()
