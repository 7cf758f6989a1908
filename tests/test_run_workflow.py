"""The workflow runner's parts (scripts/run_workflow.py): expressions, command files, artifacts.

The runner is copied into every bake unrendered, so the template file is the shipped file.
End-to-end use (every job of ml-pipeline.yml on fresh clones) is tests/test_team_workflow.py.
"""

from __future__ import annotations

import importlib.util
import re
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
import yaml

from .conftest import TEMPLATE

SCRIPT = TEMPLATE / "{{cookiecutter.project}}" / "scripts" / "run_workflow.py"
WORKFLOW = TEMPLATE / "{{cookiecutter.project}}" / ".github" / "workflows" / "ml-pipeline.yml"


def load_runner() -> ModuleType:
    spec = importlib.util.spec_from_file_location("run_workflow", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["run_workflow"] = module
    spec.loader.exec_module(module)
    return module


rw = load_runner()


def scope(failed: bool = False, **contexts: Any) -> Any:
    base = {
        "github": {
            "event_name": "push",
            "ref": "refs/heads/main",
            "event": {"repository": {"default_branch": "main"}},
        },
        "needs": {"evaluate": {"result": "success", "outputs": {"deploy": "true"}}},
        "steps": {"target": {"outputs": {"target": "local"}, "outcome": "success"}},
        "secrets": {"TOKEN": "s3cret"},
        "env": {"ON_DEFAULT_BRANCH": "true"},
    }
    status = {"success": not failed, "failure": failed, "always": True, "cancelled": False}
    return rw.Scope({**base, **contexts}, lambda name: status[name])


@pytest.mark.parametrize(
    ("expression", "expected"),
    [
        ("github.event_name == 'push'", True),
        ("github.event_name == 'PUSH'", True),  # strings compare ignoring case
        ("github.ref == format('refs/heads/{0}', github.event.repository.default_branch)", True),
        ("format('{{literal}} {0}-{1}', 'a', 1)", "{literal} a-1"),
        ("needs.evaluate.outputs.deploy == 'true'", True),
        ("needs.evaluate.outputs.missing", None),
        ("steps.target.outputs.target == 'local' && 'yes' || 'no'", "yes"),
        ("steps.nope.outputs.target == 'k8s'", False),
        ("secrets.TOKEN", "s3cret"),
        ("secrets.ABSENT == ''", True),  # a missing secret is empty
        ("!cancelled()", True),
        ("always() && github.event_name != 'pull_request'", True),
        ("'1' == 1", True),  # different types compare as numbers
        ("null == 0", True),
        ("'abc' == 0", False),  # NaN equals nothing
        ("1 < 2 && 'b' > 'A'", True),
        ("contains('refs/heads/main', 'HEADS')", True),
        ("startsWith(github.ref, 'refs/heads/')", True),
        ("fromJSON('[1, 2]')[1]", 2.0),
        ("env.ON_DEFAULT_BRANCH == 'true'", True),
        ("github['event_name']", "push"),
        ("(false || 0) && true", 0.0),
    ],
)
def test_expressions(expression: str, expected: Any) -> None:
    """GitHub's semantics: loose equality, case-insensitive strings, && and || return operands."""
    assert rw.evaluate(expression, scope()) == expected


@pytest.mark.parametrize(
    "expression",
    [
        "hashFiles('x')",  # no workspace in this scope
        "unknownFunction(1)",
        "matrix.os",  # context not provided
        "github.event_name ==",
        "github.event_name = 'push'",
        "a.*.b",
        "github.ref ~ 'x'",
        "format('{1}', 'only one')",
    ],
)
def test_expressions_not_understood_fail_loudly(expression: str) -> None:
    """Anything the evaluator does not understand stops the run instead of guessing."""
    with pytest.raises(rw.ExpressionError):
        rw.evaluate(expression, scope())


def test_if_implies_success_unless_a_status_function_is_used() -> None:
    """After a failed step, plain conditions are false; always()/!cancelled() ones run."""
    failed = scope(failed=True)
    assert rw.condition(None, failed) is False
    assert rw.condition("github.event_name == 'push'", failed) is False
    assert rw.condition("${{ always() && github.event_name == 'push' }}", failed) is True
    assert rw.condition("${{ !cancelled() }}", failed) is True
    assert rw.condition("${{ failure() }}", failed) is True
    with pytest.raises(rw.ExpressionError, match="mixes text"):
        rw.condition("${{ true }} && ${{ false }}", scope())


def test_interpolation_keeps_types_of_lone_expressions() -> None:
    """`${{ x }}` alone keeps its type; inside text it is written as GitHub writes it."""
    s = scope()
    assert rw.interpolate("${{ github.event_name == 'pull_request' }}", s) is False
    assert rw.interpolate("group-${{ github.ref }}", s) == "group-refs/heads/main"
    assert rw.interpolate("${{ 'a}}b' }}", s) == "a}}b"  # '}}' inside a string literal
    assert rw.interpolate("n=${{ 3 }} ok=${{ true }} none=${{ null }}", s) == "n=3 ok=true none="


def test_every_expression_in_the_pipeline_is_understood() -> None:
    """Each `${{ }}` and `if:` of ml-pipeline.yml parses, so the runner never meets a surprise."""
    text = WORKFLOW.read_text(encoding="utf-8")
    expressions = [body for _, body in re.findall(r"(\$\{\{)(.*?)\}\}", text)]
    assert len(expressions) > 40
    for body in expressions:
        rw.Parser(body).parse()
    flow = yaml.safe_load(text)
    for job in flow["jobs"].values():
        conditions = [job.get("if")] + [step.get("if") for step in job["steps"]]
        for value in filter(None, conditions):
            rw.Parser(rw.split_template(str(value))[0][1]).parse()


def test_command_files(tmp_path: Path) -> None:
    """GITHUB_OUTPUT/GITHUB_ENV: `k=v` lines and `k<<EOF` blocks; an unclosed block is an error."""
    path = tmp_path / "out"
    path.write_text("a=1\nb=x=y\nmulti<<EOF\nline 1\nline 2\nEOF\n\n")
    assert rw.read_command_file(path) == {"a": "1", "b": "x=y", "multi": "line 1\nline 2"}
    path.write_text("multi<<EOF\nno end\n")
    with pytest.raises(rw.WorkflowError, match="no closing"):
        rw.read_command_file(path)


def make_tree(root: Path, names: list[str]) -> None:
    for name in names:
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(name)


def names(files: list[Path], root: Path | None) -> list[str]:
    assert root is not None
    return sorted(f.relative_to(root).as_posix() for f in files)


def test_artifact_paths_follow_upload_artifact_v4(tmp_path: Path) -> None:
    """Hidden files only when asked; one directory uploads its contents; several keep their LCA."""
    make_tree(
        tmp_path,
        ["dvc.lock", "data/raw/big.csv", "data/holdout.parquet", "models/m.skops",
         "models/.cache/x", ".deploy/state.json", "registry/promotions.jsonl"],
    )  # fmt: skip
    files, root = rw.artifact_files(
        tmp_path, ["dvc.lock", "data/holdout.parquet", "models/"], False
    )
    assert names(files, root) == ["data/holdout.parquet", "dvc.lock", "models/m.skops"]
    files, root = rw.artifact_files(tmp_path, ["models/"], False)
    assert names(files, root) == ["m.skops"]  # a single directory: its contents at the root
    files, root = rw.artifact_files(tmp_path, ["models/"], True)
    assert names(files, root) == [".cache/x", "m.skops"]
    files, root = rw.artifact_files(tmp_path, [".deploy/", "registry/promotions.jsonl"], False)
    assert names(files, root) == ["registry/promotions.jsonl"]  # .deploy/ is hidden
    files, root = rw.artifact_files(tmp_path, ["data/**/*.csv", "!data/raw/big.csv"], False)
    assert files == [] and root is None
    files, root = rw.artifact_files(tmp_path, ["dvc.lock"], False)
    assert names(files, root) == ["dvc.lock"]


@pytest.mark.parametrize(
    ("branch", "pattern", "matches"),
    [("main", "main", True), ("feature/x", "feature/*", True), ("a/b/c", "a/*", False),
     ("a/b/c", "a/**", True), ("mainline", "main", False)],
)  # fmt: skip
def test_branch_filters(branch: str, pattern: str, matches: bool) -> None:
    assert rw.branch_matches(branch, pattern) is matches
