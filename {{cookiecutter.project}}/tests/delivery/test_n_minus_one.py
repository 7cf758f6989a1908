"""N-1 under client traffic: every switch keeps every request answered and the right N-1.

One client sends requests through the router for the whole sequence. After each command
the processes (state and what answers) and the registry (`champion`, `previous`) agree on
which version serves and which one served before it.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from {{ cookiecutter.package }}.deploy import procs
from {{ cookiecutter.package }}.registry import Registry
from tests.delivery.conftest import MODEL_NAME, _get, write_params

pytestmark = [pytest.mark.slow, pytest.mark.filterwarnings("ignore::DeprecationWarning")]


def aliases(deployment) -> tuple[str | None, str | None]:
    registry = Registry(MODEL_NAME, root=deployment.root / "registry")
    champion, previous = registry.get_alias("champion"), registry.get_alias("previous")
    return (champion.version if champion else None, previous.version if previous else None)


def serving(deployment) -> tuple[str, str]:
    """(stable version, N-1 version) from the state, with both processes running."""
    servers: dict[str, Any] = deployment.state()["servers"]
    assert procs.alive(servers["stable"])
    assert procs.alive(servers["previous"])
    assert "canary" not in servers
    return servers["stable"]["version"], servers["previous"]["version"]


def roles_answered(deployment) -> set[tuple[str, str]]:
    """(model version, variant) that a few requests through the router got."""
    import http.client
    from urllib.parse import urlparse

    from {{ cookiecutter.package }}.contract import load_contract
    from {{ cookiecutter.package }}.rollout.loadgen import holdout_rows

    row = holdout_rows(
        deployment.root / "data" / "holdout.parquet",
        load_contract(deployment.root / "contract.yaml"),
        1,
    )[0]
    url = urlparse(deployment.router_url())
    seen = set()
    for _ in range(10):
        connection = http.client.HTTPConnection(url.hostname, url.port, timeout=5)
        connection.request(
            "POST", "/predict", json.dumps(row), {"content-type": "application/json"}
        )
        answer = json.loads(connection.getresponse().read())
        connection.close()
        seen.add((answer["model_version"], answer["variant"]))
    return seen


def test_n_minus_one_through_promotion_redeploy_and_rollbacks(deployment):
    write_params(
        deployment.root, steps=[{"weight": 50, "pause_s": 1}, {"weight": 100, "pause_s": 0}]
    )
    first = deployment.run("canary")
    assert first.returncode == 0, first.stdout + first.stderr
    client = deployment.client()
    assert serving(deployment) == ("2", "1")
    assert aliases(deployment) == ("2", "1")
    assert roles_answered(deployment) == {("2", "stable")}  # the promoted canary says stable

    # a canary of the version that already serves: the stable process is replaced, N-1 kept
    old_stable = deployment.state()["servers"]["stable"]
    previous = deployment.state()["servers"]["previous"]
    again = deployment.run("canary")
    assert again.returncode == 0, again.stdout + again.stderr
    assert serving(deployment) == ("2", "1")
    assert deployment.state()["servers"]["previous"]["pid"] == previous["pid"]
    assert not procs.alive(old_stable)
    assert aliases(deployment) == ("2", "1")

    back = deployment.run("rollback")
    assert back.returncode == 0, back.stdout + back.stderr
    assert "v2 -> v1" in back.stdout
    assert serving(deployment) == ("1", "2")
    assert aliases(deployment) == ("1", "2")
    assert roles_answered(deployment) == {("1", "stable")}

    undo = deployment.run("rollback")  # a rollback of the rollback
    assert undo.returncode == 0, undo.stdout + undo.stderr
    assert "v1 -> v2" in undo.stdout
    assert serving(deployment) == ("2", "1")
    assert aliases(deployment) == ("2", "1")

    records = client.stop()
    assert len(records) > 50
    assert [r for r in records if r[1] != 200] == []  # no client request failed at any switch
    assert {r[2] for r in records} <= {"1", "2"}


def test_an_older_version_as_canary_keeps_the_version_it_replaced_as_n_minus_one(deployment):
    write_params(
        deployment.root, steps=[{"weight": 50, "pause_s": 1}, {"weight": 100, "pause_s": 0}]
    )
    assert deployment.run("canary").returncode == 0
    client = deployment.client()
    older = deployment.run("canary", "--version", "1")
    assert older.returncode == 0, older.stdout + older.stderr
    assert serving(deployment) == ("1", "2")
    assert aliases(deployment) == ("1", "2")
    assert [r for r in client.stop() if r[1] != 200] == []
    weights = _get(deployment.state()["router"]["admin_url"], "/admin/config")[1]["weights"]
    assert weights["stable"] == 100
