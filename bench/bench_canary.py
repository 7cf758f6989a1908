"""Operating characteristics of the canary decision, measured on the real controller.

Bakes the template (cookiecutter), imports the baked package, and runs its own
`rollout.controller.Controller` and policy on a virtual clock: the controller's sleeps
advance simulated time, and every advance sends Poisson traffic through a simulated router
whose counters (requests, errors, latency histogram on the servers' buckets, shadow
comparisons) are the real router's `/admin/stats` snapshots. Nothing else is replaced.

Printed: false rollback of a canary identical to stable, per step and per rollout, at 0 %,
0.1 % and 1 % errors and 30, 60 and 150 req/s; detection probability and time to detect for
3x and 10x the stable error rate and for a p99 three times stable's. Run
`python bench/bench_canary.py` (full) or `python bench/bench_canary.py --smoke`; `make bench`
collects it (`bench/run.py canary --smoke` for the quick version).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import importlib
import math
import os
import subprocess
import sys
import time
import types
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from harness import Figure, figure, table

ROOT = Path(__file__).resolve().parent.parent
SEED = 20261207
STABLE_MEDIAN_MS = 12.0  # a model whose p99 (40 ms) is above the 25 ms floor of the ratio
STABLE_P99_MS = 40.0
Z99 = 2.3263478740408408


def bake(into: Path, template: Path = ROOT) -> types.ModuleType:
    """Bake the template with its defaults and import the baked package."""
    into.mkdir(parents=True, exist_ok=True)
    subprocess.run(
        [sys.executable, "-m", "cookiecutter", "--no-input", "-o", str(into), str(template)],
        check=True,
        capture_output=True,
    )
    (project,) = [p for p in into.iterdir() if (p / "params.yaml").is_file()]
    (package_dir,) = [p for p in (project / "src").iterdir() if (p / "__init__.py").is_file()]
    sys.path.insert(0, str(project / "src"))
    package = importlib.import_module(package_dir.name)
    package.PROJECT = project  # type: ignore[attr-defined]
    return package


@dataclass(frozen=True)
class Traffic:
    """What the two variants do: request rate, error rates, latency scale, disagreement."""

    rps: float
    stable_errors: float
    canary_errors: float
    canary_latency: float = 1.0  # every canary request this many times slower
    disagreement: float = 0.0


def _lognormal_cdf(ms: float, median: float, sigma: float) -> float:
    if ms <= 0:
        return 0.0
    return 0.5 * (1 + math.erf(math.log(ms / median) / (sigma * math.sqrt(2))))


SIGMA = math.log(STABLE_P99_MS / STABLE_MEDIAN_MS) / Z99


class World:
    """A virtual clock and the router it drives: traffic arrives as time advances."""

    def __init__(self, package: types.ModuleType, traffic: Traffic, rng: np.random.Generator):
        self.window = importlib.import_module(f"{package.__name__}.rollout.window")
        self.edges_ms = [e * 1000 for e in self.window.EDGES_S]
        self.traffic, self.rng = traffic, rng
        self.now = 0.0
        self.weights = {"stable": 100, "canary": 0}
        self.shadow: dict[str, Any] | None = None
        self.versions = {"stable": "1", "canary": "2"}
        self.counters = {n: self.window.VariantCounters(v) for n, v in self.versions.items()}
        self.shadow_state: dict[str, Any] | None = None
        self.latency = {
            "stable": self._buckets(STABLE_MEDIAN_MS),
            "canary": self._buckets(STABLE_MEDIAN_MS * traffic.canary_latency),
        }

    def _buckets(self, median: float) -> np.ndarray:
        cdf = [_lognormal_cdf(e, median, SIGMA) for e in self.edges_ms] + [1.0]
        return np.diff([0.0, *cdf])

    def configure(self, config: dict[str, Any]) -> None:
        self.weights = {k: int(v) for k, v in config["weights"].items()}
        shadow = config.get("shadow")
        if shadow != self.shadow:  # the real router builds a new mirror: counts start again
            self.shadow = shadow
            self.shadow_state = None
            if shadow:
                self.shadow_state = {
                    "outcomes": dict.fromkeys(
                        ("agree", "disagree", "dropped", "timeout", "error"), 0
                    ),
                    "counters": self.window.VariantCounters(self.versions["canary"]),
                }

    def _serve(self, name: str, count: int, error_rate: float) -> None:
        if count <= 0:
            return
        counters = self.counters[name]
        errors = int(self.rng.binomial(count, error_rate))
        counters.requests += count
        counters.errors += errors
        for index, k in enumerate(self.rng.multinomial(count, self.latency[name])):
            counters.buckets[index] += int(k)

    def advance(self, seconds: float) -> None:
        """Move the clock on, sending the traffic of that time through the router."""
        if seconds <= 0:
            return
        self.now += seconds
        t = self.traffic
        arrivals = int(self.rng.poisson(t.rps * seconds))
        canary = int(self.rng.binomial(arrivals, self.weights.get("canary", 0) / 100))
        self._serve("stable", arrivals - canary, t.stable_errors)
        self._serve("canary", canary, t.canary_errors)
        if self.shadow_state is not None:
            copies = int(self.rng.binomial(arrivals - canary, float(self.shadow["sample"])))
            timeout = float(self.shadow["timeout_ms"])
            slow = 1 - _lognormal_cdf(timeout, STABLE_MEDIAN_MS * t.canary_latency, SIGMA)
            errors, timeouts, disagree, agree = self.rng.multinomial(
                copies,
                [
                    t.canary_errors,
                    (1 - t.canary_errors) * slow,
                    (1 - t.canary_errors) * (1 - slow) * t.disagreement,
                    (1 - t.canary_errors) * (1 - slow) * (1 - t.disagreement),
                ],
            )
            out = self.shadow_state["outcomes"]
            out["error"] += int(errors)
            out["timeout"] += int(timeouts)
            out["disagree"] += int(disagree)
            out["agree"] += int(agree)

    def stats(self) -> dict[str, Any]:
        """The router's `/admin/stats` answer."""
        shadow = None
        if self.shadow_state is not None:
            out = self.shadow_state["outcomes"]
            shadow = {
                "version": self.versions["canary"],
                "outcomes": dict(out),
                "compared": out["agree"] + out["disagree"],
                "counters": self.shadow_state["counters"].snapshot(),
            }
        return {
            "time": self.now,
            "weights": dict(self.weights),
            "versions": dict(self.versions),
            "variants": {f"{n}@{c.version}": c.snapshot() for n, c in self.counters.items()},
            "shadow": shadow,
        }


@contextlib.contextmanager
def virtual_time(module: types.ModuleType, world: World) -> Iterator[None]:
    """The controller module's `asyncio.sleep` and `time` read and move the world's clock."""

    async def sleep(seconds: float, result: Any = None) -> Any:
        world.advance(seconds)
        return result

    async def to_thread(function: Any, /, *args: Any, **kwargs: Any) -> Any:
        return function(*args, **kwargs)  # nothing blocks in a simulation

    fake_asyncio = types.SimpleNamespace(
        **{k: getattr(asyncio, k) for k in dir(asyncio) if not k.startswith("__")}
    )
    fake_asyncio.sleep, fake_asyncio.to_thread = sleep, to_thread
    fake_time = types.SimpleNamespace(
        monotonic=lambda: world.now,
        perf_counter=lambda: world.now,
        time=lambda: 1.8e9 + world.now,
        sleep=lambda s: world.advance(s),
    )
    saved = {name: getattr(module, name) for name in ("asyncio", "time") if hasattr(module, name)}
    module.asyncio, module.time = fake_asyncio, fake_time  # type: ignore[attr-defined]
    try:
        yield
    finally:
        for name, value in saved.items():
            setattr(module, name, value)


@dataclass
class Run:
    """One simulated rollout: how it ended, in which phase, and when."""

    promoted: bool
    failed_phase: str | None
    reached: list[str]
    seconds: float
    reason: str


def simulate(package: types.ModuleType, spec: Any, traffic: Traffic, seed: int) -> Run:
    """One rollout of the real controller against simulated traffic."""
    module = importlib.import_module(f"{package.__name__}.rollout.controller")
    world = World(package, traffic, np.random.default_rng(seed))
    events: list[dict[str, Any]] = []

    class Simulated(module.Controller):  # type: ignore[name-defined,misc]
        async def _put(self, config: dict[str, Any]) -> None:
            world.configure(config)

        async def _scrape(self) -> dict[str, Any] | None:
            return world.stats()

    base = {
        "upstreams": {
            "stable": {"url": "http://stable", "version": "1"},
            "canary": {"url": "http://canary", "version": "2"},
        },
        "weights": {"stable": 100, "canary": 0},
    }
    controller = Simulated(
        spec, "http://router", base, dict(world.versions), lambda: True, events.append
    )
    with virtual_time(module, world):
        outcome = asyncio.run(controller.run())
    reached = [e["phase"] for e in events if e.get("event") == "step"]
    failed = None if outcome.promoted else (reached[-1] if reached else "start")
    return Run(outcome.promoted, failed, reached, world.now, outcome.reason)


def load_spec(package: types.ModuleType) -> Any:
    """The baked project's rollout spec, read the way the project reads params.yaml."""
    config = importlib.import_module(f"{package.__name__}.config")
    return config.load_config(package.PROJECT / "params.yaml").rollout


@dataclass
class Summary:
    runs: list[Run] = field(default_factory=list)

    def rate(self) -> float:
        return sum(not r.promoted for r in self.runs) / len(self.runs)

    def per_phase(self) -> dict[str, tuple[int, int]]:
        """phase -> (rollouts that reached it, rollouts that failed in it)."""
        counts: dict[str, list[int]] = {}
        for run in self.runs:
            for phase in run.reached:
                counts.setdefault(phase, [0, 0])[0] += 1
            if run.failed_phase is not None:
                counts.setdefault(run.failed_phase, [0, 0])[1] += 1
        return {k: (v[0], v[1]) for k, v in counts.items()}

    def before_full(self) -> float:
        """Share of rollouts stopped before the canary took all traffic."""
        return sum(
            not r.promoted and r.failed_phase is not None and "100%" not in _weight(r)
            for r in self.runs
        ) / len(self.runs)


def _weight(run: Run) -> str:
    return run.reason.split(":")[0]


def campaign(
    package: types.ModuleType, spec: Any, traffic: Traffic, rollouts: int, seed: int
) -> Summary:
    summary = Summary()
    for i in range(rollouts):
        summary.runs.append(simulate(package, spec, traffic, seed + i))
    return summary


def _se(p: float, n: int) -> float:
    return math.sqrt(max(p * (1 - p), 1e-9) / n)


def operating_characteristics(
    package: types.ModuleType, rollouts: int, rates: tuple[float, ...]
) -> list[Figure]:
    """Every figure of the module docstring, on the baked project's default rollout spec."""
    spec = load_spec(package)
    figures: list[Figure] = []
    for rps in rates:
        for errors in (0.0, 0.001, 0.01):
            summary = campaign(package, spec, Traffic(rps, errors, errors), rollouts, SEED)
            p = summary.rate()
            steps = ", ".join(
                f"{phase.split(' ')[0] if phase == 'shadow' else phase}: {failed}/{reached}"
                for phase, (reached, failed) in summary.per_phase().items()
            )
            reasons = sorted({r.reason.split(";")[0][:90] for r in summary.runs if not r.promoted})[
                :2
            ]
            durations = sorted(r.seconds for r in summary.runs)
            figures.append(
                figure(
                    f"false rollback {errors:.1%} err {rps:g} rps",
                    p,
                    "share",
                    f"identical canary, {rollouts} rollouts (se {_se(p, rollouts):.3f}); "
                    f"median rollout {durations[len(durations) // 2]:.0f} s (simulated); "
                    f"failed/reached per phase: {steps}" + (f"; e.g. {reasons}" if reasons else ""),
                )
            )
    stable = 0.01
    cases = [
        ("10x errors", Traffic(150, stable, 10 * stable), "caught in shadow"),
        ("5% vs 1% (2x tolerated)", Traffic(150, stable, 0.05), "caught before 100%"),
        ("3x errors (at the limit)", Traffic(150, stable, 3 * stable), "caught before 100%"),
        ("p99 3x stable", Traffic(150, stable, stable, canary_latency=3.0), "caught before 100%"),
    ]
    for name, traffic, where in cases:
        summary = campaign(package, spec, traffic, rollouts, SEED + 7)
        caught = [r for r in summary.runs if not r.promoted]
        times = sorted(r.seconds for r in caught)
        in_shadow = sum(r.failed_phase == "shadow" for r in caught) / len(summary.runs)
        early = summary.before_full()
        value = in_shadow if where == "caught in shadow" else early
        median = times[len(times) // 2] if times else math.nan
        figures.append(
            figure(
                f"detect {name} 150 rps",
                value,
                "share",
                f"{where}; caught at all {len(caught) / len(summary.runs):.3f}, in shadow "
                f"{in_shadow:.3f}; median time to rollback {median:.1f} s (simulated); "
                f"stable errors {stable:.0%}, {rollouts} rollouts",
            )
        )
    # the every-look bound alone, for a canary exactly at the absolute error limit (stable
    # too, so the relative check is far away): its false fail per step is what alpha promises
    at_limit = campaign(package, spec, Traffic(150, 0.05, 0.05), rollouts, SEED + 11)
    first = [r for r in at_limit.runs if "shadow" in r.reached]
    by_look = sum(
        r.failed_phase == "shadow"
        and "at the end of the step" not in r.reason
        and "inconclusive" not in r.reason
        for r in first
    ) / max(len(first), 1)
    figures.append(
        figure(
            "every-look fail at the limit, shadow",
            by_look,
            "share",
            f"canary and stable at 5% errors (the absolute limit): shadow steps failed by a "
            f"look's bound, against alpha {spec.relative.alpha:g}; {rollouts} rollouts",
        )
    )
    return figures


def run(tmp: Path, smoke: bool | None = None) -> list[Figure]:
    """`bench/run.py` entry: full unless BENCH_SMOKE=1 (or smoke=True)."""
    if smoke is None:
        smoke = os.environ.get("BENCH_SMOKE") == "1"
    package = bake(tmp / "bake")
    if smoke:
        return operating_characteristics(package, 40, (60.0,))
    return operating_characteristics(package, 400, (30.0, 60.0, 150.0))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--smoke", action="store_true", help="few rollouts, one request rate")
    parser.add_argument("--rollouts", type=int, default=None)
    parser.add_argument("--template", type=Path, default=ROOT, help="template checkout to bake")
    args = parser.parse_args(argv)
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        start = time.perf_counter()
        package = bake(Path(tmp) / "bake", args.template)
        rollouts = args.rollouts or (40 if args.smoke else 400)
        rates = (60.0,) if args.smoke else (30.0, 60.0, 150.0)
        figures = operating_characteristics(package, rollouts, rates)
        print(table(figures))
        print(f"({time.perf_counter() - start:.0f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
