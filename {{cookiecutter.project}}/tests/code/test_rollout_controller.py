"""The controller loop: steps in order, rollback at the first failure, a declared policy."""

from __future__ import annotations

import asyncio
from typing import Any

from {{ cookiecutter.package }}.config import parse_rollout
from {{ cookiecutter.package }}.rollout.controller import Controller
from {{ cookiecutter.package }}.rollout.window import VariantCounters

BASE = {
    "upstreams": {
        "stable": {"url": "http://s", "version": "1"},
        "canary": {"url": "http://c", "version": "2"},
    },
    "weights": {"stable": 100, "canary": 0},
}


def spec(policy: str = "rollback", wait_s: float = 0.02) -> Any:
    return parse_rollout(
        {
            "shadow": {"enabled": False},
            "steps": [
                {"weight": 5, "pause_s": 0.03},
                {"weight": 25, "pause_s": 0.03},
                {"weight": 100, "pause_s": 0},
            ],
            "analysis": {"interval_s": 0.01, "min_requests": 20, "max_wait_s": wait_s},
            "inconclusive": {"policy": policy},
        }
    )


class FakeRouter(Controller):
    """Counts grow by `per_look` each scrape; `stats=None` plays an unreachable router."""

    def __init__(self, rollout: Any, per_look: dict[str, tuple[int, int]] | None) -> None:
        self.events: list[dict[str, Any]] = []
        super().__init__(
            rollout,
            "http://router",
            BASE,
            {"stable": "1", "canary": "2"},
            lambda: True,
            self.events.append,
        )
        self.per_look = per_look
        self.configs: list[dict[str, Any]] = []
        self.counters = {"stable": VariantCounters("1"), "canary": VariantCounters("2")}

    async def _put(self, config: dict[str, Any]) -> None:
        self.configs.append(config)

    async def _scrape(self) -> dict[str, Any] | None:
        if self.per_look is None:
            return None
        for name, (ok, errors) in self.per_look.items():
            for _ in range(ok):
                self.counters[name].observe(0.004, "ok")
            for _ in range(errors):
                self.counters[name].observe(0.004, "error")
        variants = {f"{n}@{c.version}": c.snapshot() for n, c in self.counters.items()}
        return {"variants": variants, "shadow": None}


def weights(router: FakeRouter) -> list[int]:
    return [c["weights"]["canary"] for c in router.configs]


def test_a_healthy_canary_walks_every_step_to_full_weight():
    router = FakeRouter(spec(), {"stable": (200, 0), "canary": (30, 0)})
    outcome = asyncio.run(router.run())
    assert outcome.promoted
    assert weights(router) == [5, 25, 100]
    assert router.events[-1]["event"] == "promoted"


def test_a_failing_canary_is_rolled_back_at_the_first_failed_look():
    router = FakeRouter(spec(), {"stable": (200, 0), "canary": (20, 15)})
    outcome = asyncio.run(router.run())
    assert not outcome.promoted
    assert weights(router) == [5, 0]
    rollback = next(e for e in router.events if e["event"] == "rollback")
    assert rollback["weights"] == {"stable": 100, "canary": 0}
    failed = next(e for e in router.events if e.get("verdict") == "fail")
    assert failed["evidence"]["canary"]["errors"] >= 15


def test_too_little_traffic_waits_then_applies_the_rollback_policy():
    router = FakeRouter(spec("rollback", wait_s=0.05), {"stable": (5, 0), "canary": (0, 0)})
    outcome = asyncio.run(router.run())
    assert not outcome.promoted
    assert "inconclusive after" in outcome.reason
    assert [e["event"] for e in router.events].count("waiting") == 1


def test_a_step_waits_for_the_requests_it_needs():
    """2 canary requests a look: the 20 a step needs come after its 3-look pause, and the
    step waits for them instead of giving up."""
    router = FakeRouter(spec("rollback", wait_s=1.0), {"stable": (40, 0), "canary": (2, 0)})
    outcome = asyncio.run(router.run())
    assert outcome.promoted, outcome.reason
    assert any(e["event"] == "waiting" for e in router.events)


def test_the_promote_policy_needs_traffic_and_never_promotes_on_missing_metrics():
    thin = FakeRouter(spec("promote"), {"stable": (5, 0), "canary": (1, 0)})
    assert asyncio.run(thin.run()).promoted
    strict = FakeRouter(spec("rollback"), {"stable": (5, 0), "canary": (1, 0)})
    assert not asyncio.run(strict.run()).promoted
    blind = FakeRouter(spec("promote"), None)
    outcome = asyncio.run(blind.run())
    assert not outcome.promoted
    assert "no metrics" in outcome.reason
    assert weights(blind)[-1] == 0


def test_the_full_weight_step_is_judged_before_the_rollout_ends():
    """A canary that errs only once it takes every request is still caught at 100%."""

    class FailsAtFull(FakeRouter):
        async def _scrape(self) -> dict[str, Any] | None:
            if self.configs and self.configs[-1]["weights"]["canary"] == 100:
                self.per_look = {"stable": (0, 0), "canary": (20, 20)}
            return await super()._scrape()

    router = FailsAtFull(spec(), {"stable": (200, 0), "canary": (30, 0)})
    outcome = asyncio.run(router.run())
    assert not outcome.promoted
    assert outcome.reason.startswith("step 3/3 at 100%")


def test_a_dead_canary_fails_without_waiting_for_traffic():
    router = FakeRouter(spec(), {"stable": (200, 0), "canary": (0, 0)})
    router.canary_alive = lambda: False
    outcome = asyncio.run(router.run())
    assert not outcome.promoted
    assert "exited" in outcome.reason
