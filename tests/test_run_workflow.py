"""The workflow runner's parts (tests/run_workflow.py): expressions, command files, artifacts.

The runner is copied into every bake unrendered, so the template file is the shipped file.
End-to-end use (every job of ml-pipeline.yml on fresh clones) is tests/test_team_workflow.py.
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
import subprocess
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
import yaml

from .conftest import TEMPLATE, bake

SCRIPT = TEMPLATE / "tests" / "run_workflow.py"
WORKFLOW = TEMPLATE / "{{cookiecutter.project}}" / ".github" / "workflows" / "ml-pipeline.yml"
MONITORING = WORKFLOW.with_name("monitoring.yml")


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


@pytest.mark.parametrize(("workflow", "least"), [(WORKFLOW, 40), (MONITORING, 10)])
def test_every_expression_in_the_pipeline_is_understood(workflow: Path, least: int) -> None:
    """Each `${{ }}` and `if:` of the workflows parses, so the runner never meets a surprise."""
    text = workflow.read_text(encoding="utf-8")
    expressions = [body for _, body in re.findall(r"(\$\{\{)(.*?)\}\}", text)]
    assert len(expressions) > least
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


TINY_WORKFLOW = """\
name: tiny
on:
  push:
    branches: [main]
  pull_request:
permissions: {}
env:
  LEVEL: workflow
  SHARED: from-workflow
jobs:
  first:
    runs-on: ubuntu-latest
    permissions: {}
    env:
      LEVEL: job
      TOKEN: ${{ secrets.TOKEN }}
    outputs:
      answer: ${{ steps.compute.outputs.answer }}
    steps:
      - uses: actions/checkout@11bd71901bbe5b1630ceea73d27597364c9af683 # v4.2.2
        with:
          persist-credentials: false
      - id: compute
        env:
          LEVEL: step
        run: |
          test "$LEVEL" = step && test "$SHARED" = from-workflow
          test "$(cat committed.txt)" = committed && test ! -e uncommitted.txt
          test -z "${MLFLOW_TRACKING_URI:-}"  # nothing leaks from the caller's environment
          echo "answer=42" >> "$GITHUB_OUTPUT"
          echo "FROM_ENV_FILE=yes" >> "$GITHUB_ENV"
          mkdir -p out/.hidden && echo data > out/data.txt && echo h > out/.hidden/h.txt
          echo "token is $TOKEN"
          sleep 300 &
      - run: test "$FROM_ENV_FILE" = yes && test "$LEVEL" = job
      - if: ${{ github.event_name == 'pull_request' }}
        run: exit 1
      - uses: actions/upload-artifact@ea165f8d65b6e75b540449e92b4886f43607fa02 # v4.6.2
        with:
          name: out
          path: out/
          if-no-files-found: error
  second:
    needs: first
    if: ${{ needs.first.outputs.answer == '42' }}
    runs-on: ubuntu-latest
    permissions: {}
    steps:
      - uses: actions/download-artifact@d3f86a106a0bac45b974a628896c90dbdf5c8093 # v4.3.0
        with:
          name: out
      - run: test "$(cat data.txt)" = data && test ! -e .hidden && test ! -e committed.txt
  never:
    needs: second
    if: ${{ github.event_name == 'pull_request' }}
    runs-on: ubuntu-latest
    permissions: {}
    steps:
      - uses: docker/login-action@74a5d142397b4f367a81961eba4e8cd7edddf772 # v3.4.0
"""


def tiny_repo(tmp_path: Path, workflow: str) -> Path:
    repo = tmp_path / "repo"
    (repo / ".github" / "workflows").mkdir(parents=True)
    (repo / ".github" / "workflows" / "ml-pipeline.yml").write_text(workflow)
    (repo / "committed.txt").write_text("committed\n")
    git = ["git", "-c", "user.name=t", "-c", "user.email=t@example.invalid"]
    for command in (["init", "--quiet", "--initial-branch=main"], ["add", "-A"],
                    ["commit", "--quiet", "-m", "tiny"]):  # fmt: skip
        subprocess.run([*git, *command], cwd=repo, check=True, capture_output=True)
    (repo / "uncommitted.txt").write_text("not pushed\n")
    return repo


def run_tiny(repo: Path, workdir: Path, *args: str) -> tuple[int, dict[str, Any], str]:
    env = {**os.environ, "TOKEN": "hunter2-secret", "MLFLOW_TRACKING_URI": "http://leak"}
    done = subprocess.run(
        [sys.executable, str(SCRIPT), "--repo", str(repo), "--workdir", str(workdir),
         "--cache-dir", str(workdir / "cache"), "--secret", "TOKEN", *args],
        env=env, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    report = json.loads((workdir / "run.json").read_text())
    return done.returncode, report, done.stdout + done.stderr


def test_runner_runs_jobs_on_fresh_clones(tmp_path: Path) -> None:
    """Env layering, outputs, GITHUB_ENV, artifacts (no hidden files), needs and if; secrets masked."""
    repo = tiny_repo(tmp_path, TINY_WORKFLOW)
    code, report, output = run_tiny(repo, tmp_path / "run", "--event", "push")
    jobs = {name: job["result"] for name, job in report["jobs"].items()}
    assert code == 0, output
    assert jobs == {"first": "success", "second": "success", "never": "skipped"}
    assert report["jobs"]["first"]["outputs"] == {"answer": "42"}
    log = (tmp_path / "run" / "logs" / "first.log").read_text()
    assert "token is ***" in log and "hunter2-secret" not in log
    orphans = [p for p in Path("/proc").glob("[0-9]*") if _runs_sleep_300_in(p, tmp_path)]
    assert not orphans, "orphan left"


RUNNER_ENV_WORKFLOW = """
name: runner-env
on: push
permissions: {}
jobs:
  one:
    runs-on: ubuntu-latest
    permissions: {}
    env:
      OVERRIDDEN: by-the-workflow
    steps:
      - run: test "$FROM_RUNNER" = "a b=c" && test "$OVERRIDDEN" = by-the-workflow
  two:
    runs-on: ubuntu-latest
    permissions: {}
    steps:
      - run: test "$FROM_RUNNER" = "a b=c" && test "$OVERRIDDEN" = by-the-machine
"""


def test_runner_env_reaches_every_job_under_the_workflows_own(tmp_path: Path) -> None:
    """`--runner-env NAME=VALUE` is the machine's environment (a self-hosted runner's .env
    file): every job sees it, and the workflow's own `env` still wins."""
    repo = tiny_repo(tmp_path, RUNNER_ENV_WORKFLOW)
    code, report, output = run_tiny(repo, tmp_path / "run", "--event", "push",
                                    "--runner-env", "FROM_RUNNER=a b=c",
                                    "--runner-env", "OVERRIDDEN=by-the-machine")  # fmt: skip
    assert code == 0, output
    assert {name: job["result"] for name, job in report["jobs"].items()} == {
        "one": "success",
        "two": "success",
    }


def _runs_sleep_300_in(proc: Path, root: Path) -> bool:
    """This test's own sleeper only: another run on the same machine is not an orphan."""
    try:
        if (proc / "cmdline").read_bytes() != b"sleep\x00300\x00":
            return False
        return (proc / "cwd").resolve().is_relative_to(root.resolve())
    except OSError:
        return False


DISPATCH_WORKFLOW = """
name: dispatch
on: schedule
permissions: {}
jobs:
  notify:
    runs-on: ubuntu-latest
    permissions:
      contents: write
    env:
      GITHUB_TOKEN: ${{ github.token }}
    steps:
      - shell: bash
        env:
          API: ${{ github.api_url }}
        run: |
          test "$GITHUB_API_URL" = "$API"
          cat > post.py <<'EOF'
          import json, os, sys, urllib.error, urllib.request
          path, token, body = sys.argv[1], sys.argv[2], sys.argv[3].encode()
          url = os.environ["GITHUB_API_URL"] + path
          request = urllib.request.Request(url, data=body, method="POST")
          request.add_header("Authorization", f"Bearer {token}")
          try:
              print(urllib.request.urlopen(request).status)
          except urllib.error.HTTPError as error:
              print(error.code)
          EOF
          dispatches="/repos/$GITHUB_REPOSITORY/dispatches"
          test "$(python3 post.py "$dispatches" "$GITHUB_TOKEN" '{"event_type": "drift-detected", "client_payload": {"status": "drift"}}')" = 204
          test "$(python3 post.py "$dispatches" wrong-token '{"event_type": "x"}')" = 401
          test "$(python3 post.py /repos/someone/else/dispatches "$GITHUB_TOKEN" '{"event_type": "x"}')" = 404
          test "$(python3 post.py "$dispatches" "$GITHUB_TOKEN" '{"client_payload": {}}')" = 422
"""


def test_runner_plays_githubs_dispatch_api(tmp_path: Path) -> None:
    """A step's repository_dispatch reaches the runner's loopback API, as on GitHub: recorded
    with the job's token, refused (401, 404, 422) otherwise."""
    repo = tiny_repo(tmp_path, DISPATCH_WORKFLOW)
    code, report, output = run_tiny(repo, tmp_path / "run", "--event", "schedule")
    assert code == 0, output
    assert [(d["job"], d["event_type"], d["client_payload"]) for d in report["dispatches"]] == [
        ("notify", "drift-detected", {"status": "drift"})
    ]


def test_runner_fails_on_an_action_it_cannot_emulate(tmp_path: Path) -> None:
    """A pull request fails `first` (its step says so) and would reach docker/login-action."""
    repo = tiny_repo(tmp_path, TINY_WORKFLOW.replace("needs: second\n", "needs: first\n").replace(
        "if: ${{ github.event_name == 'pull_request' }}\n    runs-on", "if: always()\n    runs-on"))  # fmt: skip
    subprocess.run(["git", "branch", "feature"], cwd=repo, check=True)
    code, report, output = run_tiny(
        repo, tmp_path / "run", "--event", "pull_request", "--head", "feature"
    )
    assert code == 1, output
    assert report["jobs"]["first"]["result"] == "failure"
    assert report["jobs"]["second"]["result"] == "skipped"
    assert report["jobs"]["never"]["result"] == "failure"
    assert "docker/login-action" in report["jobs"]["never"]["error"]
    assert "not emulated" in report["jobs"]["never"]["error"]


@pytest.fixture(scope="module")
def decision_project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A baked project whose decision step the workflow runs."""
    project = bake(tmp_path_factory.mktemp("decision"))
    (project / "metrics").mkdir(exist_ok=True)
    return project


def step_script(job: str, name_start: str) -> str:
    flow = yaml.safe_load(WORKFLOW.read_text(encoding="utf-8"))
    (step,) = [s for s in flow["jobs"][job]["steps"] if s.get("name", "").startswith(name_start)]
    return str(step["run"])


@pytest.mark.parametrize(
    ("server", "event", "on_main", "promotion", "deploy", "why"),
    [
        ("", "schedule", "true", {"decision": "promoted", "champion": None}, "false",
         "a retrain with no champion to compare with (no shared registry)"),
        ("", "repository_dispatch", "true", {"decision": "promoted", "champion": None}, "false",
         "a retrain with no champion"),
        ("", "push", "true", {"decision": "promoted", "champion": None}, "true",
         "deployed as a first model"),
        ("http://registry", "push", "true", {"decision": "promoted", "champion": None}, "true",
         "the very first model of the shared registry"),
        ("http://registry", "schedule", "true", {"decision": "promoted", "champion": "1"}, "true",
         "promoted over champion v1"),
        ("http://registry", "schedule", "true",
         {"decision": "not_promoted", "champion": "1", "reason": "p = 0.4"}, "false",
         "not_promoted: p = 0.4"),
        ("http://registry", "pull_request", "false",
         {"decision": "would_promote", "champion": "1"}, "false", "not the default branch"),
    ],
)  # fmt: skip
def test_summary_and_deploy_decision(
    decision_project: Path,
    tmp_path: Path,
    server: str,
    event: str,
    on_main: str,
    promotion: dict[str, Any],
    deploy: str,
    why: str,
) -> None:
    """The pipeline job's own steps: first summary line, then whether the deploy jobs run.

    The decision step is the project's own `make deploy-decision`, which reads promotion.json
    through the model promote writes it with.
    """
    record = {
        "challenger": "2", "dry_run": on_main != "true", "reason": "", "model": "m",
        "evidence": {"data_sha256": None, "git_commit": None, "metrics": {}},
    } | promotion  # fmt: skip
    (decision_project / "metrics" / "promotion.json").write_text(json.dumps(record))
    summary, outputs = tmp_path / "summary.md", tmp_path / "outputs"
    env = {
        "PATH": os.environ["PATH"], "MLFLOW_TRACKING_URI": server, "EVENT": event,
        "ON_DEFAULT_BRANCH": on_main, "GITHUB_STEP_SUMMARY": str(summary),
        "GITHUB_OUTPUT": str(outputs), "VENV": sys.prefix,
        "PYTHONPATH": str(decision_project / "src"),
    }  # fmt: skip
    for name in ("Which registry", "Promotion decision"):
        script = tmp_path / "step.sh"
        script.write_text(step_script("pipeline", name))
        subprocess.run(["bash", "-e", str(script)], cwd=decision_project, env=env, check=True)
    first_line = summary.read_text().splitlines()[0]
    if server:
        assert first_line.startswith("Registry: the shared MLflow server"), first_line
    else:
        assert "no champion persists between runs" in first_line, first_line
    assert why in summary.read_text()
    assert rw.read_command_file(outputs)["deploy"] == deploy


@pytest.mark.parametrize(
    ("event", "ref", "payload", "expected"),
    [
        ("push", "refs/heads/main", {"repository": {"default_branch": "main"}}, True),
        ("workflow_dispatch", "refs/heads/feature", {"repository": {"default_branch": "main"}}, False),
        ("workflow_dispatch", "refs/heads/main", {"repository": {"default_branch": "main"}}, True),
        ("repository_dispatch", "refs/heads/main", {"repository": {"default_branch": "main"}}, True),
        ("pull_request", "refs/pull/7/merge", {"repository": {"default_branch": "main"}}, False),
        ("schedule", "refs/heads/main", {"schedule": "0 2 * * 1"}, True),  # no repository here
    ],
)  # fmt: skip
def test_only_the_default_branch_promotes_and_deploys(
    event: str, ref: str, payload: dict[str, Any], expected: bool
) -> None:
    """ON_DEFAULT_BRANCH gates promote, push and deploy: never a branch's manual dispatch."""
    flow = yaml.safe_load(WORKFLOW.read_text(encoding="utf-8"))
    github = {"event_name": event, "ref": ref, "event": payload}
    value = rw.interpolate(flow["env"]["ON_DEFAULT_BRANCH"], rw.Scope({"github": github}))
    assert value is expected
