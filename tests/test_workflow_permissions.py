"""Pull requests never hold a credential that can write, and nothing deploys because of them.

The generated workflows are parsed and each job's `if:` is evaluated for the events GitHub
sends (a pull request, a push to the default branch, the schedule, a dispatch from another
branch), with every job output a pull request could influence set to its most dangerous
value. What may run then is checked against what it can reach: environments, token
permissions, secrets. The repository settings these rules rest on are in the README.
Also here: `make lint-workflows` audits dependabot.yml, and the kind workflow applies only
manifests whose sha256 it checked.
"""

from __future__ import annotations

import hashlib
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from .conftest import bake, run

WRITE_ENVIRONMENTS = {"pipeline", "staging", "production"}
READ_ONLY_ENVIRONMENT = "pull-request"
SECRET = re.compile(r"secrets\.([A-Za-z0-9_]+)")
DEFAULT_BRANCH = "main"


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The Kubernetes variant: every workflow the template generates."""
    return bake(tmp_path_factory.mktemp("permissions"), deploy_target="kubernetes")


def workflow(project: Path, name: str) -> dict[str, Any]:
    return yaml.safe_load((project / ".github" / "workflows" / name).read_text())


# --------------------------------------------------------------------------- job conditions


class Missing(str):
    """What GitHub gives for a missing property: '', and '' for any property of it."""

    def __getattr__(self, name: str) -> Missing:
        return Missing()


class Context(dict):  # type: ignore[type-arg]
    """A GitHub expression context: `a.b.c` reads nested keys; a missing key is ''."""

    def __getattr__(self, name: str) -> Any:
        value = self.get(name, self.get(name.replace("_", "-"), Missing()))
        return Context(value) if isinstance(value, dict) else value


def evaluate(expression: str, contexts: dict[str, Any]) -> bool:
    """A job-level `if:` (the subset our workflows use) under `contexts`.

    `&&`, `||`, `!`, `==`, `!=`, parentheses, '...' strings, format() and context paths:
    the expression is translated token by token, so anything else is an error, not a guess.
    """
    text = expression.strip()
    if text.startswith("${{"):
        text = text.removeprefix("${{").removesuffix("}}")
    token = re.compile(r"\s*('(?:[^']|'')*'|&&|\|\||==|!=|!|\(|\)|,|[A-Za-z_][\w.-]*)")
    python, position = [], 0
    while position < len(text.rstrip()):
        match = token.match(text, position)
        assert match is not None, f"cannot read {text[position:]!r} in {expression!r}"
        part = match.group(1)
        position = match.end()
        if part.startswith("'"):
            python.append(repr(part[1:-1].replace("''", "'")))
        elif part in ("&&", "||", "!"):
            python.append({"&&": " and ", "||": " or ", "!": " not "}[part])
        elif part in ("==", "!=", "(", ")", ","):
            python.append(part)
        elif part == "format":
            python.append("fmt")
        elif part in ("true", "false"):
            python.append(str(part == "true"))
        else:
            root, *rest = part.split(".")
            assert root in contexts, f"unknown context {root!r} in {expression!r}"
            python.append(f"ctx[{root!r}]" + "".join(f".{name.replace('-', '_')}" for name in rest))
    fmt = lambda template, *args: template.format(*args)  # noqa: E731
    code = "".join(python)
    return bool(eval(code, {"__builtins__": {}}, {"ctx": contexts, "fmt": fmt}))


def event(name: str, ref: str) -> dict[str, Any]:
    """The `github` context of one event on this repository (schedules carry no repository)."""
    payload = {} if name == "schedule" else {"repository": {"default_branch": DEFAULT_BRANCH}}
    return {"event_name": name, "ref": ref, "event": payload}


EVENTS = {
    "pull_request": event("pull_request", "refs/pull/7/merge"),
    "push to main": event("push", f"refs/heads/{DEFAULT_BRANCH}"),
    "schedule": event("schedule", f"refs/heads/{DEFAULT_BRANCH}"),
    "dispatch on main": event("workflow_dispatch", f"refs/heads/{DEFAULT_BRANCH}"),
    "dispatch from a branch": event("workflow_dispatch", "refs/heads/feature"),
    "push to a branch": event("push", "refs/heads/feature"),
}
UNTRUSTED = ("pull_request", "dispatch from a branch", "push to a branch")


def jobs_that_run(flow: dict[str, Any], github: dict[str, Any]) -> list[str]:
    """Jobs whose `if:` holds, every needed job having run with every output 'true'.

    'true' is what a pull request's own code would write to get deployed: a job must not
    rest on it alone.
    """
    triggers = flow[True]  # `on:` parses as True
    name = github["event_name"]
    if name not in triggers:
        return []
    branches = (triggers[name] or {}).get("branches") if isinstance(triggers[name], dict) else None
    if branches and github["ref"].removeprefix("refs/heads/") not in branches:
        return []
    ran: list[str] = []
    for job_name, job in flow["jobs"].items():
        needs = job.get("needs", [])
        needs = [needs] if isinstance(needs, str) else needs
        if any(need not in ran for need in needs):
            continue
        outputs = {need: {"outputs": Context(all_true(flow["jobs"][need]))} for need in needs}
        contexts = {"github": Context(github), "needs": Context(outputs)}
        if "if" not in job or evaluate(str(job["if"]), contexts):
            ran.append(job_name)
    return ran


def all_true(job: dict[str, Any]) -> dict[str, str]:
    return {name: "true" for name in job.get("outputs", {})}


def secrets_of(job: dict[str, Any]) -> set[str]:
    return set(SECRET.findall(yaml.safe_dump(job)))


def can_write(job: dict[str, Any]) -> list[str]:
    """What in this job could write anywhere: an environment, a token scope, a secret."""
    found = []
    environment = job.get("environment")
    name = environment.get("name") if isinstance(environment, dict) else environment
    if name and name != READ_ONLY_ENVIRONMENT:
        found.append(f"environment {name}")
    found += [f"{k}: {v}" for k, v in job.get("permissions", {}).items() if v == "write"]
    found += [f"secret {s}" for s in secrets_of(job) if not s.startswith("READONLY_")]
    return found


WORKFLOWS = ["ml-pipeline.yml", "monitoring.yml", "k8s-e2e.yml"]


@pytest.mark.parametrize("name", WORKFLOWS)
@pytest.mark.parametrize("label", UNTRUSTED)
def test_untrusted_refs_reach_nothing_that_writes(project: Path, name: str, label: str) -> None:
    """A pull request, a dispatch from a branch, a push to a branch: every job that runs
    holds no environment but the read-only one, no write scope (no OIDC token), and only
    READONLY_* secrets; staging, image and canary never run, whatever `deploy` says."""
    flow = workflow(project, name)
    ran = jobs_that_run(flow, EVENTS[label])
    for job_name in ran:
        assert can_write(flow["jobs"][job_name]) == [], (name, label, job_name)
    if name == "ml-pipeline.yml":  # (pushes run only on the default branch: on.push.branches)
        assert ran == ([] if label == "push to a branch" else ["compare"]), (label, ran)


@pytest.mark.parametrize("label", ["push to main", "schedule", "dispatch on main"])
def test_the_default_branch_promotes_and_deploys(project: Path, label: str) -> None:
    """On the default branch the pipeline job (with its environment) runs, never `compare`."""
    ran = jobs_that_run(workflow(project, "ml-pipeline.yml"), EVENTS[label])
    assert ran == ["pipeline", "staging", "image", "canary"], (label, ran)


def test_each_job_that_writes_checks_the_branch_itself(project: Path) -> None:
    """Every job with a write environment, a write scope or a write secret carries its own
    default-branch condition: an output (computed by the run's code) is never the only gate,
    and a missing environment branch policy is not an open door."""
    flow = workflow(project, "ml-pipeline.yml")
    for name, job in flow["jobs"].items():
        if not can_write(job):
            continue
        condition = str(job.get("if", ""))
        assert "github.event.repository.default_branch" in condition, name
        for label in UNTRUSTED:
            github = Context(EVENTS[label])
            outputs = {
                need: {"outputs": Context(all_true(flow["jobs"][need]))}
                for need in ([job["needs"]] if isinstance(job.get("needs"), str) else job.get("needs", []))
            }  # fmt: skip
            assert not evaluate(condition, {"github": github, "needs": Context(outputs)}), (
                name,
                label,
            )


def test_compare_job_is_read_only(project: Path) -> None:
    """The pull request's job: environment `pull-request`, contents: read only, READONLY_*
    secrets for the registry and the DVC remote; it compares and never promotes or pushes."""
    compare = workflow(project, "ml-pipeline.yml")["jobs"]["compare"]
    assert compare["environment"] == READ_ONLY_ENVIRONMENT
    assert compare["permissions"] == {"contents": "read"}
    assert secrets_of(compare) == {
        "READONLY_AWS_ACCESS_KEY_ID", "READONLY_AWS_SECRET_ACCESS_KEY",
        "READONLY_MLFLOW_TRACKING_URI", "READONLY_MLFLOW_TRACKING_USERNAME",
        "READONLY_MLFLOW_TRACKING_PASSWORD",
    }  # fmt: skip
    commands = [step.get("run", "") for step in compare["steps"]]
    assert "make compare" in commands
    assert not [c for c in commands if re.search(r"make (promote|push|repro)\b", c)], commands
    uploads = [
        s["with"]["name"] for s in compare["steps"] if "upload-artifact" in s.get("uses", "")
    ]
    assert uploads == ["evaluation"], "delivery downloads `promoted`: a PR must not provide it"


def test_readme_documents_the_settings_these_rules_rest_on(project: Path) -> None:
    """Environment branch policies, OIDC trust by environment, read-only PR secrets: said
    where a user reads it, in the generated README and the workflow's header."""
    readme = (project / "README.md").read_text()
    section = readme[readme.index("### Pull requests and credentials") :]
    for phrase in (
        "Deployment branches and tags",
        "environment:pipeline",
        "READONLY_MLFLOW_TRACKING_URI",
        "READONLY_AWS_ACCESS_KEY_ID",
        "`pull-request`",
        "READ permission",
        "s3:GetObject",
        "repository secrets",
    ):
        assert phrase in section, phrase
    header = (project / ".github" / "workflows" / "ml-pipeline.yml").read_text().split("\nname:")[0]
    assert "environment:pipeline" in header and "READONLY_" in header


# --------------------------------------------------------------------------- dependabot


def test_make_lint_audits_dependabot(project: Path, tmp_path: Path) -> None:
    """`make lint-workflows` runs zizmor over dependabot.yml too: clean as generated, and a
    config without a cooldown fails it with zizmor's dependabot-cooldown finding."""
    venv = f"VENV={Path(sys.prefix)}"
    clean = run(["make", "--no-print-directory", "lint-workflows", venv], project, check=False)
    assert clean.returncode == 0, clean.stdout + clean.stderr
    config = project / ".github" / "dependabot.yml"
    original = config.read_text()
    assert original.count("default-days: 7") == 2
    config.write_text(re.sub(r"    cooldown:\n      default-days: 7\n", "", original))
    try:
        failed = run(["make", "--no-print-directory", "lint-workflows", venv], project, check=False)
    finally:
        config.write_text(original)
    assert failed.returncode != 0
    assert "dependabot-cooldown" in failed.stdout + failed.stderr


# --------------------------------------------------------------------------- kind manifests


def manifest_steps(project: Path) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any]]:
    flow = workflow(project, "k8s-e2e.yml")
    steps = flow["jobs"]["canary-on-kind"]["steps"]
    fetch = next(s for s in steps if "raw.githubusercontent.com" in s.get("run", ""))
    apply = next(s for s in steps if "kubectl apply -n argo-rollouts" in s.get("run", ""))
    return flow["env"], fetch, apply


def run_fetch(script: str, env: dict[str, str], served: dict[str, bytes], tmp: Path):
    """The fetch step with a `curl` that serves `served[url's last path]` (no network)."""
    bin_dir = tmp / "bin"
    bin_dir.mkdir(parents=True, exist_ok=True)
    store = tmp / "served"
    store.mkdir(exist_ok=True)
    for name, body in served.items():
        (store / name).write_bytes(body)
    curl = bin_dir / "curl"
    curl.write_text(
        "#!/bin/bash\n"
        'out=""; url=""\n'
        'while [ $# -gt 0 ]; do case "$1" in -o) out="$2"; shift 2;; -*) shift;; *) url="$1"; shift;; esac; done\n'
        f'cp "{store}/$(basename "$url")" "$out"\n'
        'echo "$url" >> "' + str(tmp / "urls") + '"\n'
    )
    curl.chmod(0o755)
    runner_temp = tmp / "runner-temp"
    runner_temp.mkdir(exist_ok=True)
    full = {**os.environ, **env, "PATH": f"{bin_dir}:{os.environ['PATH']}",
            "RUNNER_TEMP": str(runner_temp)}  # fmt: skip
    done = subprocess.run(
        ["bash", "-e", "-c", script], env=full, capture_output=True, text=True, check=False
    )
    return done, runner_temp / "manifests"


def test_kind_manifests_are_checked_before_apply(project: Path, tmp_path: Path) -> None:
    """The controllers' manifests come by commit and must match their pinned sha256: a
    changed byte fails the step; the apply step reads only the checked files; the Argo
    controller image is pinned to the release, not :latest."""
    env, fetch, apply = manifest_steps(project)
    for key in ("ARGO_ROLLOUTS_COMMIT", "PROMETHEUS_OPERATOR_COMMIT"):
        assert re.fullmatch(r"[0-9a-f]{40}", env[key]), key
    assert "https://" not in apply["run"] and "$RUNNER_TEMP/manifests/" in apply["run"]
    argo = b"spec:\n  containers:\n      - image: quay.io/argoproj/argo-rollouts:latest\n"
    bundle = b"kind: Deployment\n"
    good = {
        **{k: str(v) for k, v in env.items()},
        "ARGO_ROLLOUTS_INSTALL_SHA256": hashlib.sha256(argo).hexdigest(),
        "PROMETHEUS_OPERATOR_BUNDLE_SHA256": hashlib.sha256(bundle).hexdigest(),
    }
    served = {"install.yaml": argo, "bundle.yaml": bundle}
    done, manifests = run_fetch(fetch["run"], good, served, tmp_path / "good")
    assert done.returncode == 0, done.stdout + done.stderr
    version = env["ARGO_ROLLOUTS_VERSION"]
    assert f"argo-rollouts:{version}\n" in (manifests / "argo-rollouts.yaml").read_text()
    urls = (tmp_path / "good" / "urls").read_text().split()
    assert all(
        env["ARGO_ROLLOUTS_COMMIT"] in u or env["PROMETHEUS_OPERATOR_COMMIT"] in u for u in urls
    )

    tampered = {"install.yaml": argo, "bundle.yaml": bundle + b"# one more line\n"}
    done, _ = run_fetch(fetch["run"], good, tampered, tmp_path / "tampered")
    assert done.returncode != 0 and "FAILED" in done.stdout + done.stderr
