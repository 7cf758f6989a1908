"""The canary decision's error rates, measured by the bench's simulation on a baked project.

A quick run of `bench/bench_canary.py`: the baked package's own controller and policy, a
virtual clock, simulated traffic. It fails when a canary identical to stable is rolled back
more often than the design's budget (docs/canary.md in the generated project), or when the
regressions the defaults promise to see are missed too often.
"""

from __future__ import annotations

import sys
from pathlib import Path
from types import ModuleType

import pytest

from .conftest import TEMPLATE

sys.path.insert(0, str(TEMPLATE / "bench"))
import bench_canary

ROLLOUTS = 100
FALSE_ROLLBACK_BUDGET = 0.05  # per whole rollout, at every error and request rate


@pytest.fixture(scope="module")
def package(tmp_path_factory: pytest.TempPathFactory) -> ModuleType:
    return bench_canary.bake(Path(tmp_path_factory.mktemp("canary-bake")))


@pytest.mark.parametrize(("rps", "errors"), [(30.0, 0.01), (150.0, 0.0), (150.0, 0.01)])
def test_an_identical_canary_is_rarely_rolled_back(package: ModuleType, rps: float, errors: float):
    """Within budget at the slowest and fastest traffic the design covers (the step waits
    for its requests at 30 req/s instead of rolling back for want of them)."""
    spec = bench_canary.load_spec(package)
    summary = bench_canary.campaign(
        package, spec, bench_canary.Traffic(rps, errors, errors), ROLLOUTS, seed=1
    )
    reasons = [r.reason for r in summary.runs if not r.promoted][:3]
    assert summary.rate() <= FALSE_ROLLBACK_BUDGET, reasons


def test_the_regressions_the_defaults_promise_to_see_are_caught(package: ModuleType):
    """10x errors in shadow, twice the tolerated increase before 100%, p99 at 3x stable's."""
    spec = bench_canary.load_spec(package)
    traffic = bench_canary.Traffic
    tenfold = bench_canary.campaign(package, spec, traffic(150, 0.01, 0.10), 60, seed=2)
    assert sum(r.failed_phase == "shadow" for r in tenfold.runs) / 60 >= 0.95
    doubled = bench_canary.campaign(package, spec, traffic(150, 0.01, 0.05), 60, seed=3)
    assert doubled.before_full() >= 0.8
    slow = bench_canary.campaign(package, spec, traffic(150, 0.01, 0.01, 3.0), 60, seed=4)
    assert slow.before_full() >= 0.8
