"""Promotion is a decision about a commit: who may move the team's champion, and from where.

Real parts: git repositories (a hub, clones with dirty and clean trees, a default branch), a
real DVC pipeline, a real `mlflow server` as the shared registry, the embedded SQLite
registry, real `make` invocations and racing processes.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from .conftest import bake, run, tool_env
from .servers import mlflow_server
from .test_team import clone, commit_all, git, make, promotion, team_env
from .workflow_runs import DEFAULT_MODEL, FEWER_RESAMPLES, FIRST_MODEL, FREE_PORTS, set_params

pytestmark = pytest.mark.slow
NUDGED_MODEL = FIRST_MODEL.replace("max_iter: 30", "max_iter: 31")


def log_entries(project: Path, env: dict[str, str]) -> list[dict]:
    out = make(project, "promotion-log", env=env).stdout
    return [json.loads(line) for line in out.splitlines() if line.strip()]


def versions(project: Path, env: dict[str, str]) -> list[str]:
    script = (
        "from churn_model.registry import Registry; r = Registry(); "
        "print(' '.join(sorted(str(v.version) for v in "
        "r.client.search_model_versions(f\"name = '{r.model_name}'\"))))"
    )
    return run([sys.executable, "-c", script], project, env=env).stdout.split()


def champion(project: Path, env: dict[str, str]) -> str | None:
    script = (
        "from churn_model.registry import Registry; ref = Registry().get_alias('champion'); "
        "print(ref.version if ref else '-')"
    )
    found = run([sys.executable, "-c", script], project, env=env).stdout.strip()
    return None if found == "-" else found


@pytest.fixture
def hub(tmp_path: Path) -> Path:
    """The team's git server: a default bake (quick model, fast intervals) on `main`."""
    origin = bake(tmp_path / "origin")
    set_params(origin, DEFAULT_MODEL, FIRST_MODEL)
    set_params(origin, *FEWER_RESAMPLES)
    for old, new in FREE_PORTS:
        set_params(origin, old, new)
    git(origin, "symbolic-ref", "HEAD", "refs/heads/main")
    commit_all(origin, "baked")
    hub = tmp_path / "hub.git"
    run(["git", "clone", "--quiet", "--bare", str(origin), str(hub)], tmp_path)
    return hub


def test_a_laptop_compares_until_its_commit_is_on_main(hub: Path, tmp_path: Path) -> None:
    """Against the shared server: a dirty tree and a commit only on a feature branch compare
    and say how to promote (nothing registered, no alias, no log entry); once the commit is on
    origin/main the same workspace promotes. An explicit override from a dirty tree registers
    and is logged with its reason, who and the commit. Switching to the embedded registry
    re-decides (never "up to date", never the run-cache); `make deploy-canary VERSION=n` of a
    version promote did not promote is refused unless overridden, and the override is logged;
    a VERSION that is not a number is refused before anything runs."""
    laptop = clone(hub, tmp_path / "laptop")
    with mlflow_server(tmp_path / "server") as uri:
        env = team_env(laptop, tracking_uri=uri)

        # 1. uncommitted params: the paired test runs, nothing moves
        set_params(
            laptop,
            "learning_rate: 0.05, max_leaf_nodes: 3",
            "learning_rate: 0.06, max_leaf_nodes: 3",
        )
        dirty = make(laptop, "repro", env=env)
        record = promotion(laptop)
        assert record["dry_run"] is True and record["decision"] == "would_promote", record
        assert "uncommitted changes: params.yaml" in record["compared_only"], record
        assert "make promote OVERRIDE=" in record["compared_only"]
        assert record["registry"] == uri and record["challenger"] is None
        assert "To promote:" in dirty.stdout
        assert versions(laptop, env) == [] and champion(laptop, env) is None
        assert log_entries(laptop, env) == []

        # 2. committed on a feature branch: clean, but not on the default branch
        git(laptop, "checkout", "--quiet", "-b", "feature")
        commit_all(laptop, "learning rate 0.06")
        make(laptop, "promote", env=env)
        record = promotion(laptop)
        assert record["dry_run"] is True, record
        assert "is not on the default branch origin/main" in record["compared_only"], record
        assert versions(laptop, env) == []

        # 3. the commit reaches main: the same workspace is a release and promotes
        git(laptop, "push", "--quiet", "origin", "feature:main")
        git(laptop, "fetch", "--quiet", "origin")
        make(laptop, "promote", env=env)
        record = promotion(laptop)
        assert record["decision"] == "promoted" and record["version"] == "1", record
        assert record["compared_only"] is None and record["override"] is None
        assert champion(laptop, env) == "1"

        # 4. a dirty tree with an explicit override: registered, decided, logged with why
        set_params(laptop, "max_iter: 30", "max_iter: 31")
        make(laptop, "repro", "OVERRIDE=hotfix: one more tree, reviewed by Ana", env=env)
        overridden = promotion(laptop)
        assert overridden["dry_run"] is False and overridden["challenger"] == "2", overridden
        assert overridden["override"] == "hotfix: one more tree, reviewed by Ana"
        assert overridden["decision"] == "not_promoted", overridden  # one more tree is noise
        last = log_entries(laptop, env)[-1]
        assert last["override"] == "hotfix: one more tree, reviewed by Ana", last
        assert last["commit"] == git(laptop, "rev-parse", "HEAD").strip()
        assert "uncommitted changes: params.yaml" in last["override_bypassed"]
        assert "@" in last["by"]

        # 5. the embedded registry instead: promote runs again and asks it
        embedded = team_env(laptop)
        switched = make(laptop, "repro", env=embedded)
        assert "Running stage 'promote'" in switched.stdout, switched.stdout
        assert "is cached" not in switched.stdout and "up to date" not in switched.stdout
        local = promotion(laptop)
        assert local["registry"] == "embedded (registry/mlflow.db)", local
        assert local["champion"] is None and local["decision"] == "promoted", local
        again = make(laptop, "repro", env=env)  # and back: the server's answer, not a replay
        assert "Running stage 'promote'" in again.stdout
        assert promotion(laptop)["registry"] == uri and promotion(laptop)["champion"] == "1"

        # 6. deploying the version promote refused
        refused = make(laptop, "deploy-canary", "VERSION=2", env=env, check=False)
        assert refused.returncode != 0
        message = refused.stdout + refused.stderr
        assert "promote decided not_promoted" in message, message
        assert "OVERRIDE=" in message and "Traceback" not in message
        assert not (laptop / ".deploy" / "logs").exists()  # nothing was started
        assert champion(laptop, env) == "1"

        hostile = make(laptop, "deploy-canary", "VERSION=x/../../../escaped", env=env, check=False)
        assert hostile.returncode != 0 and "is not a model version" in hostile.stderr, (
            hostile.stderr
        )
        assert not list(tmp_path.rglob("*escaped*"))

        try:
            forced = make(laptop, "deploy-canary", "VERSION=2", "BAD=never_ready", "LOADGEN=0",
                          "OVERRIDE=load test of v2", env=env, check=False)  # fmt: skip
            assert forced.returncode != 0  # the canary never became ready: rolled back
            assert "OVERRIDE" in forced.stdout and "never became ready" in forced.stdout
            override = [e for e in log_entries(laptop, env) if e.get("event") == "override"]
            assert override and override[-1]["reason"] == "load test of v2", override
            assert override[-1]["version"] == "2"
            assert champion(laptop, env) == "1"
        finally:
            make(laptop, "undeploy", env=env, check=False)


RACER = textwrap.dedent(
    """
    import json, sys, time
    from pathlib import Path
    from churn_model.registry import Registry

    uri, root, model, name, signals = sys.argv[1:6]
    registry = Registry("raced", tracking_uri=uri, root=root)
    registry.find_by_sha256("0")  # MLflow imported and connected before the start signal
    Path(signals, f"ready-{name}").touch()
    while not Path(signals, "go").exists():
        time.sleep(0.001)
    began = time.time()
    ref = registry.register_once(model, {"racer": name})
    print(json.dumps({"version": ref.version, "began": began, "ended": time.time()}))
    """
)


def test_racing_promoters_register_a_model_once(tmp_path: Path) -> None:
    """Three processes (separate workspaces, as on separate runners) register the same model
    file on one real `mlflow server` at the same moment: one version exists, every racer
    is told that version, and the registrations overlapped in time."""
    project = bake(tmp_path / "origin")
    model = tmp_path / "model.skops"
    model.write_bytes(b"the same model bytes")
    signals = tmp_path / "signals"
    signals.mkdir()
    with mlflow_server(tmp_path / "server") as uri:

        def racer(i: int) -> subprocess.Popen[str]:
            command = [sys.executable, "-c", RACER, uri, str(tmp_path / f"runner-{i}"),
                       str(model), str(i), str(signals)]  # fmt: skip
            return subprocess.Popen(command, cwd=project, env=tool_env(project),
                                    stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)  # fmt: skip

        racers = [racer(i) for i in range(3)]
        deadline = time.monotonic() + 120
        while len(list(signals.glob("ready-*"))) < 3 and time.monotonic() < deadline:
            time.sleep(0.05)
        (signals / "go").touch()
        results = []
        for racer in racers:
            out, err = racer.communicate(timeout=300)
            assert racer.returncode == 0, err[-3000:]
            results.append(json.loads(out.strip().splitlines()[-1]))
        from mlflow import MlflowClient

        found = MlflowClient(tracking_uri=uri, registry_uri=uri).search_model_versions(
            "name = 'raced'"
        )
    assert [v.version for v in found] == ["1"], [v.version for v in found]
    assert {r["version"] for r in results} == {"1"}, results
    first_end = min(r["ended"] for r in results)
    assert all(r["began"] < first_end for r in results), results  # a real race
