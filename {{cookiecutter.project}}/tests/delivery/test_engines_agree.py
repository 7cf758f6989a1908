"""Both engines judge the same windows the same way: the local evaluator, and Prometheus
evaluating the rendered AnalysisTemplate queries with Argo Rollouts' conditions applied.

The table runs fixed windows through both adapters (Prometheus gets them as backfilled
series). The live test runs a real local rollout while a real Prometheus scrapes the real
server processes, labelled as a cluster would label them, and an Argo emulator takes its
looks at the same moments as the local controller; their step decisions must agree.
"""

from __future__ import annotations

import json
import math
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from {{ cookiecutter.package }}.asgi.metrics import LATENCY_BUCKETS
from {{ cookiecutter.package }}.config import parse_rollout
from {{ cookiecutter.package }}.rollout.policy import build_policy, looks_in
from {{ cookiecutter.package }}.rollout.render import Target, analysis_spec
from {{ cookiecutter.package }}.rollout.verdict import canary_counts, judge, shadow_counts
from {{ cookiecutter.package }}.rollout.window import EDGES_S, Window
from tests.delivery.conftest import ROLLOUT, write_params
from tests.delivery.prom import MetricRun, Prometheus, binaries, measure, run_phase, substitute

pytestmark = [pytest.mark.slow, pytest.mark.filterwarnings("ignore::DeprecationWarning")]
NAMESPACE = "ml"
RESULT = {"Successful": "pass", "Failed": "fail", "Inconclusive": "inconclusive"}


# --------------------------------------------------------------------------- the table


@dataclass(frozen=True)
class Variant:
    ok: int
    errors: int = 0
    rejected: int = 0
    ms: float = 5.0

    def window(self) -> Window:
        bucket = next(i for i, edge in enumerate(EDGES_S) if edge * 1000 >= self.ms)
        return Window(
            self.ok + self.errors + self.rejected,
            self.errors,
            self.rejected,
            {bucket: self.ok + self.errors},
        )


@dataclass(frozen=True)
class Case:
    name: str
    phase: str
    canary: Variant = Variant(0)
    stable: Variant = Variant(0)
    shadow: dict[str, int] = field(default_factory=dict)
    expect: str = "pass"


CASES = [
    Case("good canary", "canary", Variant(80), Variant(900, 1)),
    Case("errors (30%)", "canary", Variant(56, 24), Variant(900), expect="fail"),
    Case("slow (400 ms)", "canary", Variant(80, ms=400), Variant(900), expect="fail"),
    Case("too little traffic", "canary", Variant(12), Variant(900), expect="inconclusive"),
    Case("one unlucky error", "canary", Variant(79, 1), Variant(900), expect="pass"),
    Case(
        "over the limit at the end, not significant",
        "canary",
        Variant(44, 4),
        Variant(900),
        expect="fail",
    ),
    Case("faster than stable", "canary", Variant(80, ms=5), Variant(900, ms=30)),
    Case("4xx are the caller's", "canary", Variant(60, rejected=300), Variant(900)),
    Case("slower than stable", "canary", Variant(80, ms=120), Variant(900, ms=30), expect="fail"),
    Case("shadow agrees", "shadow", shadow={"agree": 95, "disagree": 3}),
    Case("shadow disagrees", "shadow", shadow={"agree": 50, "disagree": 45}, expect="fail"),
    Case("shadow slow", "shadow", shadow={"agree": 10, "timeout": 60}, expect="fail"),
    Case("shadow errors", "shadow", shadow={"agree": 60, "error": 30}, expect="fail"),
    Case("shadow too little", "shadow", shadow={"agree": 15}, expect="inconclusive"),
]
SPEC = parse_rollout(
    {
        **ROLLOUT,
        "shadow": {**ROLLOUT["shadow"], "enabled": True, "max_disagreement": 0.2},
        "steps": [{"weight": 25, "pause_s": 10}, {"weight": 100, "pause_s": 0}],
        "analysis": {"interval_s": 1, "min_requests": 40},
        "inconclusive": {"policy": "rollback"},
    }
)
WINDOW_S = 10


def _series(name: str, labels: dict[str, str], total: float, t0: int) -> list[str]:
    """A counter at 0 until t0, then growing evenly to `total` at t0 + WINDOW_S."""
    series = name + "{" + ",".join(f'{k}="{v}"' for k, v in labels.items()) + "}"
    lines = [f"{series} 0 {t}" for t in range(t0 - 5, t0 + 1)]
    lines += [f"{series} {total * i / WINDOW_S:.6f} {t0 + i}" for i in range(1, WINDOW_S + 1)]
    return lines


def openmetrics(cases: list[Case], t0: int) -> str:
    """Every case's windows as series: the servers' metric names, a cluster's labels."""
    requests, buckets, counts, sums, shadows = [], [], [], [], []
    for index, case in enumerate(cases):
        for role, variant in (("c", case.canary), ("s", case.stable)):
            pod = {"namespace": NAMESPACE, "rollouts_pod_template_hash": f"{role}{index}"}
            for outcome, count in (
                ("ok", variant.ok),
                ("error", variant.errors),
                ("rejected", variant.rejected),
            ):
                requests += _series("model_requests_total", {**pod, "outcome": outcome}, count, t0)
            for edge in [*LATENCY_BUCKETS, math.inf]:
                # every answered request is timed, as the servers' histogram times them
                inside = variant.ok + variant.errors if edge * 1000 >= variant.ms else 0
                le = "+Inf" if edge == math.inf else f"{edge}"
                buckets += _series(
                    "model_request_latency_seconds_bucket", {**pod, "le": le}, inside, t0
                )
            timed = variant.ok + variant.errors
            counts += _series("model_request_latency_seconds_count", pod, timed, t0)
            sums += _series("model_request_latency_seconds_sum", pod, timed * variant.ms / 1000, t0)
        pod = {"namespace": NAMESPACE, "rollouts_pod_template_hash": f"s{index}"}
        for outcome in ("agree", "disagree", "error", "timeout", "dropped"):
            shadows += _series(
                "shadow_comparisons_total",
                {**pod, "outcome": outcome},
                case.shadow.get(outcome, 0),
                t0,
            )
    return "\n".join(
        [
            "# TYPE model_requests counter",
            *requests,
            "# TYPE model_request_latency_seconds histogram",
            *buckets,
            *counts,
            *sums,
            "# TYPE shadow_comparisons counter",
            *shadows,
            "# EOF",
            "",
        ]
    )


def local_results(case: Case) -> dict[str, str]:
    """The local engine's results at the end of a step of WINDOW_S (every check judged).

    A step short of requests is `inconclusive` locally (it waits for traffic, then applies
    the policy); Argo cannot wait and applies the `rollback` policy at the end of the pause:
    that one difference is mapped here, so the rest must agree exactly.
    """
    policy = build_policy(SPEC, looks_in(WINDOW_S, 1))
    end = ("look", "end")
    if case.phase == "shadow":
        verdict = judge(policy, "shadow", shadow_counts({"outcomes": case.shadow}), when=end)
    else:
        verdict = judge(
            policy,
            "canary",
            canary_counts(case.canary.window(), "excluded"),
            canary_counts(case.stable.window(), "excluded"),
            end,
        )
    assert verdict.result == case.expect, (case.name, verdict.reason)
    results = verdict.results()
    for check in policy.of(case.phase):  # type: ignore[arg-type]
        if check.score == "requests_short" and results[check.name] == "inconclusive":
            results[check.name] = "fail"
    return results


def test_the_same_windows_get_the_same_verdicts_from_both_adapters(tmp_path: Path):
    binaries()
    t0 = int(time.time()) - 3600
    prometheus = Prometheus(tmp_path, scrape_files=False)
    prometheus.backfill(openmetrics(CASES, t0))
    prometheus.start()
    try:
        compared = agreed = 0
        disagreements = []
        for index, case in enumerate(CASES):
            target = Target(prometheus.url, NAMESPACE, 0, 0)
            _, metrics = analysis_spec(SPEC, target, case.phase, WINDOW_S)
            args = {"canary-hash": f"c{index}", "stable-hash": f"s{index}"}
            local = local_results(case)
            for metric in metrics:
                query = substitute(metric["provider"]["prometheus"]["query"], args)
                values = prometheus.query(query, at=t0 + WINDOW_S)
                assert len(values) == 1, (case.name, metric["name"], values)
                remote = RESULT[measure(metric, values[0])]
                compared += 1
                if remote == local[metric["name"]]:
                    agreed += 1
                else:
                    disagreements.append(
                        (case.name, metric["name"], local[metric["name"]], remote, values[0])
                    )
    finally:
        prometheus.stop()
    print(f"\nverdict agreement, table: {agreed}/{compared} check results")
    assert disagreements == []
    assert compared >= 5 * len(CASES) - 10


# --------------------------------------------------------------------------- live


def _pod_hash(server: dict[str, Any]) -> str:
    return f"{server['role']}-v{server['version']}-{server['pid']}"


class Cluster(threading.Thread):
    """Keeps Prometheus's targets on the deploy's processes, labelled as pods would be."""

    def __init__(self, deployment: Any, prometheus: Prometheus) -> None:
        super().__init__(daemon=True)
        self.deployment, self.prometheus = deployment, prometheus
        self.hashes: dict[str, str] = {}
        self.done = threading.Event()

    def run(self) -> None:
        while not self.done.wait(0.1):
            try:
                state = self.deployment.state()
            except ValueError:  # being replaced right now
                continue
            servers = state.get("servers", {})
            targets = []
            for role in ("stable", "canary"):
                if role in servers:
                    self.hashes[role] = _pod_hash(servers[role])
                    labels = {
                        "namespace": NAMESPACE,
                        "role": role,
                        "rollouts_pod_template_hash": self.hashes[role],
                    }
                    targets.append((f"127.0.0.1:{servers[role]['port']}", labels))
            router = state.get("router")
            if router and "stable" in self.hashes:
                labels = {
                    "namespace": NAMESPACE,
                    "role": "router",
                    "rollouts_pod_template_hash": self.hashes["stable"],
                }
                targets.append((f"127.0.0.1:{router['port']}", labels))
            self.prometheus.set_targets(targets)


class ArgoEmulator(threading.Thread):
    """At each step the local controller starts, run the rendered analysis against Prometheus."""

    def __init__(self, deployment: Any, prometheus: Prometheus, cluster: Cluster, spec: Any):
        super().__init__(daemon=True)
        self.deployment, self.prometheus, self.cluster, self.spec = (
            deployment,
            prometheus,
            cluster,
            spec,
        )
        self.decisions: dict[str, str] = {}
        self.done = threading.Event()
        self.workers: list[threading.Thread] = []

    def run(self) -> None:
        seen = 0
        while not self.done.is_set():
            steps = self.deployment.events("step")
            for event in steps[seen:]:
                worker = threading.Thread(target=self.judge, args=(event,), daemon=True)
                worker.start()
                self.workers.append(worker)
            seen = len(steps)
            time.sleep(0.05)

    def judge(self, event: dict[str, Any]) -> None:
        kind = "shadow" if event["phase"] == "shadow" else "canary"
        target = Target(self.prometheus.url, NAMESPACE, 0, 0)
        full = event["weight"] >= 100
        _, metrics = analysis_spec(self.spec, target, kind, event["pause_s"], full)
        runs = [MetricRun(m) for m in metrics]
        args = {
            "canary-hash": self.cluster.hashes.get("canary", "none"),
            "stable-hash": self.cluster.hashes.get("stable", "none"),
        }
        interval = self.spec.analysis.interval_s
        looks = max(int(m["count"]) for m in metrics if "initialDelay" not in m)
        for look in range(1, looks + 1):
            time.sleep(max(0.0, event["time"] + look * interval - time.time()))
            for run in runs:
                # an end-of-step metric is measured once, after its initialDelay (the pause)
                if run.phase() != "Running" or ("initialDelay" in run.metric and look < looks):
                    continue
                query = substitute(run.metric["provider"]["prometheus"]["query"], args)
                (value,) = self.prometheus.query(query)
                run.add(measure(run.metric, value))
            phase = run_phase(runs)
            if phase != "Running":
                break
        self.decisions[event["phase"]] = RESULT.get(phase, phase)

    def finish(self) -> dict[str, str]:
        self.done.set()
        for worker in self.workers:
            worker.join(timeout=60)
        return self.decisions


def local_decisions(deployment: Any) -> dict[str, str]:
    """Each phase's decision in the local controller's event log (100% is judged too)."""
    phases = [e["phase"] for e in deployment.events("step")]
    rolled_back = deployment.events("rolled_back")
    failed = rolled_back[-1]["reason"].split(" at ")[0] if rolled_back else None
    decisions = {}
    for phase in phases:
        decisions[phase] = "fail" if phase == failed else "pass"
    return decisions


LIVE = {
    "good canary": ({"enabled": True}, None, True),
    "BAD=errors": ({"enabled": False}, "errors=0.3", True),
    "BAD=slow": ({"enabled": True}, "slow=400", True),
    "too little traffic": ({"enabled": False}, None, False),
    "shadow disagreement": ({"enabled": True, "max_disagreement": 0.005}, None, True),
}


@pytest.mark.parametrize("scenario", list(LIVE))
def test_prometheus_and_the_local_controller_agree_step_by_step(
    deployment: Any, tmp_path: Path, scenario: str
):
    binaries()
    shadow, fault, loadgen = LIVE[scenario]
    rollout = {
        "shadow": {**ROLLOUT["shadow"], "duration_s": 4, **shadow},
        "steps": [
            {"weight": 25, "pause_s": 4},
            {"weight": 50, "pause_s": 4},
            # judged too; Prometheus needs a window of a few scrapes (a cluster: min_pause_s)
            {"weight": 100, "pause_s": 4},
        ],
        "analysis": {"interval_s": 1, "min_requests": 20, "max_wait_s": 1},
        "inconclusive": {"policy": "rollback"},
        "loadgen": {"enabled": True, "rps": 100, "concurrency": 4},
    }
    write_params(deployment.root, **rollout)
    spec = parse_rollout({**ROLLOUT, **rollout})
    root = tmp_path / "prometheus"
    root.mkdir()
    prometheus = Prometheus(root).start()
    cluster = Cluster(deployment, prometheus)
    emulator = ArgoEmulator(deployment, prometheus, cluster, spec)
    try:
        cluster.start()
        emulator.start()
        args = [
            "canary",
            *(["--fault", fault] if fault else []),
            *([] if loadgen else ["--no-loadgen"]),
        ]
        result = deployment.run(*args, timeout=240)
        time.sleep(spec.analysis.interval_s)
        remote = emulator.finish()
    finally:
        cluster.done.set()
        emulator.done.set()
        prometheus.stop()
    local = local_decisions(deployment)
    record = {"scenario": scenario, "local": local, "prometheus": remote, "exit": result.returncode}
    print("\n" + json.dumps(record))
    assert local, result.stdout + result.stderr
    assert remote == local, (record, result.stdout[-2000:])
    assert (result.returncode == 0) == all(v == "pass" for v in local.values())
