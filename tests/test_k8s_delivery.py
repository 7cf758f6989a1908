"""`k8s` commands against a stateful fake kubectl and a real MLflow registry: after every
outcome `champion` is what the cluster serves and `previous` what served before it."""

from __future__ import annotations

import json
import os
import shutil
import stat
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest
import yaml

from .generated_files import (
    package_of,
    run,
)

FAKE_KUBECTL = """\
#!{python}
# A cluster of one Rollout, as Argo Rollouts and kubectl would change it for the calls delivery
# makes. Records each call. State: the Rollout, its stable template and its revision history.
import json, os, sys
import yaml
args = sys.argv[1:]
with open(os.environ["FAKE_KUBECTL_LOG"], "a") as log:
    log.write(json.dumps(args) + "\\n")
path = os.environ["FAKE_KUBECTL_STATE"]
with open(path) as handle:
    state = json.load(handle)
rollout = state["rollout"]
code = 0
if args[:2] == ["get", "rollout"]:
    print(json.dumps(rollout) if rollout else "", end="")
elif args[:2] == ["apply", "-k"]:
    with open(os.path.join(args[2], "generated", "rollout.yaml")) as handle:
        rendered = yaml.safe_load(handle)
    # kubectl apply keeps annotations it did not write (those of `kubectl annotate`)
    metadata = rollout["metadata"] if rollout else rendered["metadata"]
    state["rollout"] = rollout = {{"metadata": metadata, "spec": rendered["spec"]}}
    template = rendered["spec"]["template"]
    state["revisions"] = [t for t in state["revisions"] if t != template] + [template]
elif args[:3] == ["argo", "rollouts", "status"]:
    code = 0 if os.environ["FAKE_OUTCOME"] == "healthy" else 1
    if code == 0:
        state["stable"] = rollout["spec"]["template"]
elif args[:2] == ["get", "replicasets"]:
    # one ReplicaSet per revision, numbered oldest first (an undo makes its target the newest)
    items = [
        {{"metadata": {{"annotations": {{"rollout.argoproj.io/revision": str(n)}}}},
         "spec": {{"template": t}}}}
        for n, t in enumerate(state["revisions"], start=1)
    ]
    print(json.dumps({{"items": items}}), end="")
elif args[:3] == ["argo", "rollouts", "undo"]:
    # to --to-revision N, else to the revision before the current one (an aborted canary's is
    # the newest)
    current = rollout["spec"]["template"]
    earlier = [t for t in state["revisions"] if t != current]
    if "--to-revision" in args:
        target = state["revisions"][int(args[args.index("--to-revision") + 1]) - 1]
    else:
        target = state["stable"] if current != state["stable"] else earlier[-1]
    rollout["spec"]["template"] = state["stable"] = target
    state["revisions"] = [t for t in state["revisions"] if t != target] + [target]
elif args[:2] == ["annotate", "rollout"]:
    key, _, value = args[-1].partition("=")
    rollout["metadata"].setdefault("annotations", {{}})[key] = value
with open(path, "w") as handle:
    json.dump(state, handle)
sys.exit(code)
"""
VERSION_KEY = "ml-cicd/model-version"
PREVIOUS_KEY = "ml-cicd/previous-version"


def served(version: str, previous: str | None = None) -> dict[str, Any]:
    """The fake cluster's state while the Rollout serves `version` (N-1 `previous`)."""
    template = {"metadata": {"annotations": {VERSION_KEY: version}}}
    annotations = {PREVIOUS_KEY: previous} if previous else {}
    rollout = {"metadata": {"annotations": annotations}, "spec": {"template": template}}
    return {"rollout": rollout, "stable": template, "revisions": [template]}


def registry_script(project: Path, body: str) -> str:
    """Run `body` with `registry` bound to the project's embedded registry; return its stdout."""
    script = f"from {package_of(project)}.registry import Registry\nregistry = Registry()\n{body}"
    env = {**os.environ, "PYTHONPATH": str(project / "src"), "MLFLOW_DISABLE_TELEMETRY": "true"}
    env.pop("MLFLOW_TRACKING_URI", None)
    done = run([sys.executable, "-c", script], cwd=project, env=env)
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


def promote(project: Path, version: str) -> None:
    """What the pipeline's promote does: `champion` to `version`, the old champion `previous`."""
    registry_script(
        project,
        textwrap.dedent(
            f"""
            old = registry.get_alias("champion")
            assert registry.move_alias("champion", "{version}", old.version if old else None)
            if old is not None:
                now = registry.get_alias("previous")
                assert registry.move_alias("previous", old.version, now.version if now else None)
            """
        ),
    )


def aliases(project: Path) -> dict[str, str | None]:
    body = (
        "import json\n"
        "refs = {a: registry.get_alias(a) for a in ('champion', 'previous')}\n"
        "print(json.dumps({a: r.version if r else None for a, r in refs.items()}))"
    )
    return json.loads(registry_script(project, body).splitlines()[-1])


@pytest.fixture
def registry_project(baked_k8s: Path, tmp_path: Path) -> tuple[Path, Path]:
    """A copy of the baked project whose real MLflow registry holds versions 1 to 3, and a fake
    kubectl on a PATH directory."""
    project = tmp_path / "project"
    shutil.copytree(
        baked_k8s, project, ignore=shutil.ignore_patterns(".git", ".dvc", "data", "registry")
    )
    registry_script(
        project,
        textwrap.dedent(
            """
            from pathlib import Path
            for n in (1, 2, 3):
                model = Path(f"model{n}.skops")
                model.write_bytes(b"model %d" % n)
                registry.register(model, {"note": "fake kubectl test"})
            """
        ),
    )
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    kubectl = bin_dir / "kubectl"
    kubectl.write_text(FAKE_KUBECTL.format(python=sys.executable))
    kubectl.chmod(kubectl.stat().st_mode | stat.S_IXUSR)
    return project, bin_dir


def k8s(
    project: Path, bin_dir: Path, action: str, outcome: str = "healthy", *extra: str
) -> tuple[int, list[list[str]], str]:
    """Run `k8s <action>` against the fake cluster; return its exit code, kubectl calls, output."""
    log = project / "kubectl.log"
    log.unlink(missing_ok=True)
    env = {
        **os.environ,
        "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}",
        "PYTHONPATH": str(project / "src"),
        "FAKE_KUBECTL_LOG": str(log),
        "FAKE_KUBECTL_STATE": str(project / "cluster.json"),
        "FAKE_OUTCOME": outcome,
        "IMAGE": "registry.example/model:2",
        "MLFLOW_DISABLE_TELEMETRY": "true",
    }
    env.pop("MLFLOW_TRACKING_URI", None)
    env.pop("KUBECTL", None)
    command = [sys.executable, "-m", package_of(project), "k8s", action, *extra]
    done = run(command, cwd=project, env=env)
    calls = [json.loads(line) for line in log.read_text().splitlines()] if log.exists() else []
    return done.returncode, calls, done.stdout + done.stderr


def cluster(project: Path) -> tuple[str, str | None]:
    """(the version the fake Rollout serves, the N-1 recorded on it)."""
    rollout = json.loads((project / "cluster.json").read_text())["rollout"]
    version = rollout["spec"]["template"]["metadata"]["annotations"][VERSION_KEY]
    return version, rollout["metadata"].get("annotations", {}).get(PREVIOUS_KEY)


def start_cluster(project: Path, state: dict[str, Any] | None) -> None:
    empty = {"rollout": None, "stable": None, "revisions": []}
    (project / "cluster.json").write_text(json.dumps(state or empty))


def test_deploy_canary_success(registry_project: tuple[Path, Path]) -> None:
    """A healthy canary: render, apply, wait on Argo; the old stable becomes N-1 on the cluster
    and in the registry, even when nothing had moved `previous` before."""
    project, bin_dir = registry_project
    registry_script(project, 'assert registry.move_alias("champion", "2", None)')
    start_cluster(project, served("1"))
    code, calls, output = k8s(project, bin_dir, "deploy-canary")
    assert code == 0, output
    namespace = yaml.safe_load(
        (project / "deploy/k8s/overlays/production/kustomization.yaml").read_text()
    )["namespace"]
    assert calls[0][:3] == ["get", "rollout", "model-server"]
    assert calls[1] == ["apply", "-k", "deploy/k8s/overlays/production"]
    assert (
        calls[2][:5] == ["argo", "rollouts", "status", "model-server", "-n"]
        and namespace in calls[2]
    )
    assert calls[3] == [
        "annotate",
        "rollout",
        "model-server",
        "-n",
        namespace,
        "--overwrite",
        f"{PREVIOUS_KEY}=1",
    ]
    assert len(calls) == 4
    rollout = yaml.safe_load(
        (project / "deploy/k8s/overlays/production/generated/rollout.yaml").read_text()
    )
    container = rollout["spec"]["template"]["spec"]["containers"][0]
    assert container["image"] == "registry.example/model:2"
    assert {"name": "MODEL_VERSION", "value": "2"} in container["env"]
    assert cluster(project) == ("2", "1")
    assert aliases(project) == {"champion": "2", "previous": "1"}


def test_a_model_version_that_is_not_a_version_is_refused(
    registry_project: tuple[Path, Path],
) -> None:
    """`--model-version` becomes a pod annotation, an env value and file names: anything but
    a registry version number is a usage error before kubectl is called or a file written."""
    project, bin_dir = registry_project
    start_cluster(project, served("1"))
    generated = project / "deploy/k8s/overlays/production/generated"
    before = sorted(generated.rglob("*")) if generated.exists() else []
    for hostile in ("../../escaped", "2; rm -rf /", "$(id)"):
        code, calls, output = k8s(project, bin_dir, "deploy-canary", "healthy",
                                  "--model-version", hostile)  # fmt: skip
        assert code == 2, output
        assert "is not a model version" in output and "Traceback" not in output, output
        assert calls == []
    assert (sorted(generated.rglob("*")) if generated.exists() else []) == before
    assert cluster(project) == ("1", None)


def test_deploy_canary_abort_keeps_stable_champion_and_n_minus_1(
    registry_project: tuple[Path, Path],
) -> None:
    """Argo aborts the canary of v3 (promoted over v2, which had replaced v1): abort, undo; the
    registry says what serves: champion back on 2, and `previous` 1 again, not 2."""
    project, bin_dir = registry_project
    registry_script(
        project,
        'assert registry.move_alias("champion", "2", None)\n'
        'assert registry.move_alias("previous", "1", None)',
    )
    start_cluster(project, served("2", previous="1"))
    promote(project, "3")
    assert aliases(project) == {"champion": "3", "previous": "2"}
    code, calls, output = k8s(project, bin_dir, "deploy-canary", outcome="degraded")
    assert code == 5, output  # a RefusedError (errors.py): the canary was refused
    assert [c[:3] for c in calls[2:]] == [
        ["argo", "rollouts", "status"],
        ["argo", "rollouts", "abort"],
        ["argo", "rollouts", "undo"],
    ]
    assert cluster(project) == ("2", "1")
    assert aliases(project) == {"champion": "2", "previous": "1"}
    assert "champion moved v3 -> v2" in output


def test_k8s_aliases_follow_the_cluster_through_a_release_history(
    registry_project: tuple[Path, Path],
) -> None:
    """First deploy, promotion, rollback and its undo, aborted canary, rollback: after each,
    `champion` is what the Rollout serves and `previous` the version that served before it."""
    project, bin_dir = registry_project
    start_cluster(project, None)
    expected = [
        ("1", "deploy-canary", "healthy", 0, ("1", None), {"champion": "1", "previous": None}),
        ("2", "deploy-canary", "healthy", 0, ("2", "1"), {"champion": "2", "previous": "1"}),
        (None, "rollback", "healthy", 0, ("1", "2"), {"champion": "1", "previous": "2"}),
        (None, "rollback", "healthy", 0, ("2", "1"), {"champion": "2", "previous": "1"}),
        ("3", "deploy-canary", "degraded", 5, ("2", "1"), {"champion": "2", "previous": "1"}),
        # N-1 is still 1, not the aborted canary of 3 (the newest revision but one)
        (None, "rollback", "healthy", 0, ("1", "2"), {"champion": "1", "previous": "2"}),
    ]
    for version, action, outcome, exit_code, on_cluster, in_registry in expected:
        if version is not None:
            promote(project, version)
        code, _, output = k8s(project, bin_dir, action, outcome)
        assert code == exit_code, output
        assert cluster(project) == on_cluster, (action, version, output)
        assert aliases(project) == in_registry, (action, version, output)
