"""Local delivery in a baked project, through its make targets, with real processes on loopback."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from .conftest import bake, run, tool_env

pytestmark = pytest.mark.slow


def make(project: Path, *targets: str, check: bool = True):
    return run(
        ["make", "--no-print-directory", *targets, f"VENV={Path(sys.prefix)}"], project, check=check
    )


def recorded_pids(project: Path) -> set[int]:
    """The pids of the servers and router the deploy tool says it is running."""
    state = json.loads((project / ".deploy" / "state.json").read_text())
    records = [*state.get("servers", {}).values(), state.get("staging"), state.get("router")]
    return {r["pid"] for r in records if isinstance(r, dict) and isinstance(r.get("pid"), int)}


def working_in(project: Path) -> set[int]:
    """Processes whose working directory is the baked project: ours, recorded or not."""
    pids = set()
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and int(entry.name) != os.getpid():
            try:
                if (entry / "cwd").resolve(strict=True) == project.resolve():
                    pids.add(int(entry.name))
            except OSError:
                continue
    return pids


def alive(pid: int) -> bool:
    """Running, as opposed to gone or a zombie waiting for a parent that already exited."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


@pytest.fixture(scope="module")
def deployment(tmp_path_factory):
    """A baked project with a champion, its servers on free ports; everything stopped at the end."""
    project = bake(tmp_path_factory.mktemp("delivery"))
    params_path = project / "params.yaml"
    params = yaml.safe_load(params_path.read_text())
    params["serve"] |= {"router_port": 0, "staging_port": 0, "port": 0}
    params_path.write_text(yaml.safe_dump(params, sort_keys=False))
    run(["dvc", "repro"], project)
    seen: set[int] = set()
    yield project, seen
    seen |= recorded_pids(project)
    make(project, "undeploy", check=False)
    for pid in seen | working_in(project):
        if alive(pid):
            os.kill(pid, signal.SIGKILL)


def test_staging_then_integration_tests(deployment):
    """Staging serves the champion and the generated integration tests pass against it over HTTP."""
    project, seen = deployment
    make(project, "deploy-staging")
    seen |= recorded_pids(project)
    result = make(project, "integration-test")
    assert " passed" in result.stdout


def test_good_canary_reaches_full_traffic(deployment):
    """Shadow, 5%, 25%, 100%: a healthy canary is promoted by the controller."""
    project, seen = deployment
    result = make(project, "deploy-canary")
    seen |= recorded_pids(project)
    assert "promoted:" in result.stdout
    assert "serves 100%" in result.stdout


def test_the_champion_against_itself_promotes_on_a_loaded_machine(deployment):
    """`make deploy-canary` of the serving champion against itself promotes while other
    processes keep every core busy: a healthy canary must not depend on the machine's speed
    (a step waits for the requests it needs; it is not rolled back for want of them)."""
    project, seen = deployment
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else 2
    burners = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(cores)]
    try:
        result = make(project, "deploy-canary", check=False)
    finally:
        for burner in burners:
            burner.kill()
            burner.wait()
    seen |= recorded_pids(project)
    assert "(the same version as stable)" in result.stdout, result.stdout
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-2000:]
    assert "promoted:" in result.stdout


def test_bad_canary_rolls_back_by_itself(deployment):
    """A canary answering errors fails its analysis and traffic returns to stable at once."""
    project, seen = deployment
    result = make(project, "deploy-canary", "BAD=errors", check=False)
    seen |= recorded_pids(project)
    assert result.returncode != 0
    assert "rolled back in" in result.stdout
    assert "is serving" in result.stdout
    status = make(project, "status")
    assert "stable" in status.stdout


def test_rollback_and_undeploy_leave_nothing_running(deployment):
    """With one version ever served there is no N-1: `make rollback` says so and changes
    nothing; `make undeploy` stops every process by pid."""
    project, seen = deployment
    rollback = make(project, "rollback", check=False)
    assert rollback.returncode != 0
    assert "no N-1 version to roll back to" in rollback.stderr
    running = recorded_pids(project)
    assert running, "a deployment is running before undeploy"
    make(project, "undeploy")
    assert not [pid for pid in running | seen if alive(pid)]


def test_fault_suite(deployment):
    """The baked project's own fault tests (5xx, slow, crash, never ready, ...) pass."""
    project, _ = deployment
    run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-q",
            "-p",
            "no:cacheprovider",
            "-m",
            "slow",
            "tests/delivery",
        ],
        project,
        # the engines' agreement needs a real Prometheus: here missing is a failure, not a skip
        env={**tool_env(project), "REQUIRE_PROMETHEUS": "1"},
    )
