"""The rollout controller: shadow, then each weight step, judged every interval."""

from __future__ import annotations

import asyncio
import copy
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ..config import Rollout
from .admin import AdminError, get_json, put_json
from .policy import Phase, Policy, When, build_policy, looks_in
from .verdict import Verdict, canary_counts, judge, shadow_counts, shadow_window
from .window import window

Event = dict[str, Any]


@dataclass(frozen=True)
class Outcome:
    """How a rollout ended."""

    promoted: bool
    reason: str
    switch_seconds: float | None = None  # time to put every request back on stable


class Controller:
    """Drive the router through the rollout spec and stop at the first failed verdict."""

    def __init__(
        self,
        spec: Rollout,
        router_url: str,
        base_config: dict[str, Any],
        versions: dict[str, str],
        canary_alive: Callable[[], bool],
        log: Callable[[Event], None],
        report: Callable[[Event], None] = lambda _: None,
    ) -> None:
        self.spec = spec
        self.router_url = router_url.rstrip("/")
        self.base = base_config
        self.versions = versions  # {"stable": "3", "canary": "4"}
        self.canary_alive = canary_alive
        self.log = log
        self.report = report

    def config(self, weight: int, shadow: bool) -> dict[str, Any]:
        """The router config that gives the canary `weight` percent (and shadow copies)."""
        config = copy.deepcopy(self.base)
        config["weights"] = {name: 0 for name in config["upstreams"]}
        config["weights"].update({"stable": 100 - weight, "canary": weight})
        config["shadow"] = None
        if shadow:
            s = self.spec.shadow
            config["shadow"] = {
                "target": "canary",
                "sample": s.sample,
                "queue": s.queue,
                "timeout_ms": s.timeout_ms,
                "relative_tolerance": s.relative_tolerance,
                "tolerance_floor": s.tolerance_floor,
            }
        return config

    async def _put(self, config: dict[str, Any]) -> None:
        await asyncio.to_thread(put_json, f"{self.router_url}/admin/config", config)

    async def _scrape(self) -> dict[str, Any] | None:
        try:
            stats = await asyncio.to_thread(get_json, f"{self.router_url}/admin/stats", 2.0)
        except AdminError:
            return None
        return (
            stats if isinstance(stats, dict) and isinstance(stats.get("variants"), dict) else None
        )

    async def run(self) -> Outcome:
        """Run shadow and every step; roll back at the first failure."""
        phases: list[tuple[str, int, bool, float]] = []
        if self.spec.shadow.enabled and self.spec.shadow.duration_s > 0:
            phases.append(("shadow", 0, True, self.spec.shadow.duration_s))
        for index, step in enumerate(self.spec.steps, start=1):
            phases.append(
                (f"step {index}/{len(self.spec.steps)}", step.weight, False, step.pause_s)
            )
        for name, weight, shadow, pause in phases:
            try:
                await self._put(self.config(weight, shadow))
            except AdminError as error:
                return await self.rollback(f"{name}: could not set weights: {error}")
            self.log({"event": "step", "phase": name, "weight": weight, "pause_s": pause})
            verdict = await self._watch(name, weight, shadow, pause)
            if verdict.result != "pass":
                return await self.rollback(f"{name} at {weight}%: {verdict.reason}")
        self.log({"event": "promoted", "canary_version": self.versions["canary"]})
        return Outcome(True, "every step passed")

    async def rollback(self, reason: str) -> Outcome:
        """Send every request to stable at once, then report how long that took."""
        start = time.perf_counter()
        last_error = ""
        for _ in range(20):
            try:
                await self._put(self.config(0, False))
                break
            except AdminError as error:
                last_error = str(error)
                await asyncio.sleep(0.05)
        else:
            self.log({"event": "rollback_failed", "reason": reason, "error": last_error})
            return Outcome(False, f"{reason}; router unreachable: {last_error}")
        seconds = time.perf_counter() - start
        self.log(
            {
                "event": "rollback",
                "reason": reason,
                "weights": {"stable": 100, "canary": 0},
                "switch_seconds": round(seconds, 4),
                "switched_at": time.time(),
            }
        )
        return Outcome(False, reason, seconds)

    async def _watch(self, name: str, weight: int, shadow: bool, pause: float) -> Verdict:
        """Look every interval until the step has lasted `pause` and has its requests.

        Any look can fail the step; once the pause is over, the first look with enough
        requests ends it with the end-of-step checks; a step still short of requests
        `max_wait_s` after its pause is inconclusive (docs/canary.md).
        """
        interval = self.spec.analysis.interval_s
        policy = build_policy(self.spec, looks_in(pause, interval), full_weight=weight >= 100)
        phase: Phase = "shadow" if shadow else "canary"
        before = await self._scrape()
        started = time.monotonic()
        done, had_data, waiting = 0, False, False
        while True:
            # looks on a fixed schedule, as Argo takes them: the time a look takes (a scrape,
            # a process check) does not push every later look back
            await asyncio.sleep(max(0.0, started + (done + 1) * interval - time.monotonic()))
            done += 1
            elapsed = time.monotonic() - started
            over = elapsed >= pause - 1e-9
            when: tuple[When, ...] = ("look", "end") if over else ("look",)
            verdict, has_data = await self._judge(policy, before, phase, when)
            had_data = had_data or has_data
            if before is None:
                before = await self._scrape()
            await self._record(name, weight, verdict, elapsed)
            if verdict.result == "fail":
                return verdict
            if not over:
                continue
            if verdict.result == "pass":
                return Verdict(
                    "pass",
                    f"no bound crossed in {elapsed:.1f} s; {verdict.reason}",
                    verdict.checks,
                    verdict.evidence,
                )
            if elapsed < pause + policy.max_wait_s - 1e-9:
                if not waiting:
                    waiting = True
                    self.log({"event": "waiting", "phase": name, "reason": verdict.reason})
                continue
            return self._inconclusive(policy, verdict, had_data, elapsed)

    def _inconclusive(
        self, policy: Policy, verdict: Verdict, had_data: bool, elapsed: float
    ) -> Verdict:
        """A step still short of its requests: the configured policy decides."""
        if had_data and policy.inconclusive == "promote":
            return Verdict(
                "pass",
                f"inconclusive after {elapsed:.0f} s ({verdict.reason}); policy promote",
                verdict.checks,
                verdict.evidence,
            )
        why = verdict.reason if had_data else "no metrics"
        rule = (
            "missing metrics never promote"
            if policy.inconclusive == "promote"
            else "policy rollback"
        )
        return Verdict(
            "fail",
            f"inconclusive after {elapsed:.0f} s ({why}); {rule}",
            verdict.checks,
            verdict.evidence,
        )

    async def _judge(
        self, policy: Policy, before: dict[str, Any] | None, phase: Phase, when: tuple[When, ...]
    ) -> tuple[Verdict, bool]:
        if not await asyncio.to_thread(self.canary_alive):  # may run `ps`: not on the loop
            return Verdict("fail", "the canary process exited"), True
        now = await self._scrape()
        if now is None or before is None:
            return Verdict("inconclusive", "metrics unavailable from the router"), False
        if phase == "shadow":
            mirror, mirror_before = now.get("shadow"), before.get("shadow")
            if not mirror:
                return Verdict("inconclusive", "no shadow metrics from the router"), False
            counts = shadow_counts(shadow_window(mirror, mirror_before))
            return judge(policy, "shadow", counts, when=when), counts.n > 0
        stable_key = f"stable@{self.versions['stable']}"
        canary_key = f"canary@{self.versions['canary']}"
        variants, old = now["variants"], before["variants"]
        canary = canary_counts(
            window(variants.get(canary_key), old.get(canary_key)), policy.client_errors
        )
        stable = canary_counts(
            window(variants.get(stable_key), old.get(stable_key)), policy.client_errors
        )
        return judge(policy, "canary", canary, stable, when), canary.n > 0

    async def _record(self, name: str, weight: int, verdict: Verdict, elapsed: float) -> None:
        event = {"event": "analysis", "phase": name, "weight": weight, **verdict.as_event()}
        await asyncio.to_thread(self.log, event)  # an fsynced write: not on the traffic's loop
        self.report({**event, "elapsed_s": round(elapsed, 1)})
