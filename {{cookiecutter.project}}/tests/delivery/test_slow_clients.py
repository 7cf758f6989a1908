"""Slow clients during a local rollout, with real processes on loopback.

The audit's attack: connections that each send a request head and one byte of body, held
against the model servers while a healthy canary is analysed. They once filled every slot
(503s counted as errors) and rolled the canary back; now a request takes a slot only once its
body is in, and the body deadline lets the slow ones go.
"""

from __future__ import annotations

import contextlib
from urllib.parse import urlparse

import pytest

from tests.delivery.conftest import ROLLOUT, _ok, write_params
from tests.served import SlowClients

pytestmark = [pytest.mark.slow, pytest.mark.filterwarnings("ignore::DeprecationWarning")]


def test_a_healthy_canary_survives_100_slow_connections(deployment):
    """Shadow, then live steps, with 100 slow connections on the canary and 100 on stable."""
    write_params(deployment.root, shadow={**ROLLOUT["shadow"], "enabled": True})
    process = deployment.start("canary")
    deployment.wait_for(lambda: "canary" in deployment.state().get("servers", {}), timeout=120)
    servers = deployment.state()["servers"]
    urls = {role: servers[role]["url"] for role in ("stable", "canary")}
    deployment.wait_for(lambda: all(_ok(url, "/healthz") for url in urls.values()), timeout=120)
    with contextlib.ExitStack() as attacks:
        slow = [
            attacks.enter_context(SlowClients(urlparse(url).port or 0, 100))
            for url in urls.values()
        ]
        output, _ = process.communicate(timeout=240)
    assert process.returncode == 0, output
    assert "promoted" in output
    assert deployment.champion() == "2"
    assert set(deployment.answers()) == {(200, "2")}
    assert all(attack.opened >= 100 for attack in slow)  # the attack ran all along
