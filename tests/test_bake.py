"""Bake every supported combination; inspect what was baked."""

from __future__ import annotations

import fnmatch
import json
import re
import tomllib
from pathlib import Path

import pytest
import yaml

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


def expected_tree(package: str, dataset: str, k8s: bool) -> set[str]:
    """The exact file tree a bake must produce, from the template's own listing."""
    source = TEMPLATE / "{{cookiecutter.project}}"
    tree = set()
    for path in source.rglob("*"):
        relative = path.relative_to(source).as_posix()
        if not path.is_file() or SKIP_DIRS & set(path.parts) or relative.startswith("_variants/"):
            continue
        tree.add(relative.replace("{{cookiecutter.package}}", package))
    if not k8s:
        tree -= {p for p in tree if p.startswith("deploy/k8s/") or p.endswith("k8s-e2e.yml")}
        tree.discard(f"src/{package}/deploy/kubernetes.py")
        tree.discard("tests/code/test_monitoring_k8s.py")
    if dataset != "own":
        tree |= {"contract.yaml", f"data/raw/{dataset}.csv", f"data/raw/{dataset}.csv.dvc"}
        tree |= {"data/raw/.gitignore"}  # `dvc add` keeps the data itself out of git
    tree |= {".dvcignore"}  # dvc init writes it when the template has none
    return tree


@pytest.mark.parametrize("answers", MATRIX, ids=variant_id)
def test_tree_and_rendering(tmp_path, answers):
    """Exactly the expected files, nothing left unrendered, every config file parses."""
    project = bake(tmp_path, **answers)
    k8s = answers["deploy_target"] == "kubernetes"
    assert files(project) == expected_tree("churn_model", answers["dataset"], k8s=k8s)
    for relative in files(project):
        path = project / relative
        if relative.startswith("data/raw/"):
            continue
        if any(fnmatch.fnmatch(relative, pattern) for pattern in COPIED_VERBATIM):
            source = relative.replace("src/churn_model/", "src/{{cookiecutter.package}}/")
            assert (
                path.read_bytes() == (TEMPLATE / "{{cookiecutter.project}}" / source).read_bytes()
            )
            if "{{" in path.read_text(encoding="utf-8") and path.suffix in (".html", ".py"):
                # copied on purpose (byte-identical, checked above): the report renderer's
                # runtime Jinja templates, the workflow runner's `${{ }}` expression parser
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
    assert files(project) == expected_tree("churn_model", "churn", k8s=True)


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
