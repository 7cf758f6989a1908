"""A real Prometheus for tests, and Argo Rollouts' rules for judging what it answers.

`Prometheus` runs Debian's `prometheus` binary on a free loopback port (scraping targets from
a file it watches, or serving blocks backfilled with `promtool`), and is stopped by pid.
`measure` applies a rendered metric's successCondition / failureCondition to a query result
the way Argo Rollouts does; `MetricRun` keeps Argo's count / failureLimit /
inconclusiveLimit bookkeeping for one metric.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.error import URLError
from urllib.parse import urlencode
from urllib.request import urlopen

import pytest

from {{ cookiecutter.package }}.rollout.admin import free_port

PACKAGE_HINT = "Debian package `prometheus` (apt-get install -y prometheus)"
REQUIRE_ENV = "REQUIRE_PROMETHEUS"  # set by the template's own suite: missing is a failure


def binaries() -> tuple[str, str]:
    """Paths of prometheus and promtool; skip (or fail where required) when missing."""
    found = shutil.which("prometheus"), shutil.which("promtool")
    if None in found:
        message = f"needs prometheus and promtool: install the {PACKAGE_HINT}"
        if os.environ.get(REQUIRE_ENV) == "1":
            pytest.fail(message)
        pytest.skip(message)
    return found  # type: ignore[return-value]


class Prometheus:
    """One Prometheus process with its own config and data directory."""

    def __init__(self, root: Path, scrape_files: bool = True) -> None:
        self.binary, self.promtool = binaries()
        self.root = root
        self.data = root / "data"
        self.targets = root / "targets.json"
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.process: subprocess.Popen[bytes] | None = None
        config: dict[str, Any] = {"global": {"scrape_interval": "1s", "scrape_timeout": "900ms"}}
        if scrape_files:
            # pods: every series; the router: only its shadow comparisons (they stand in for
            # the stable pods' mirror; its request counters would count requests twice)
            config["scrape_configs"] = [
                {
                    "job_name": "pods",
                    "file_sd_configs": [{"files": [str(self.targets)], "refresh_interval": "1s"}],
                    "relabel_configs": [
                        {"source_labels": ["role"], "regex": "router", "action": "drop"}
                    ],
                },
                {
                    "job_name": "router",
                    "file_sd_configs": [{"files": [str(self.targets)], "refresh_interval": "1s"}],
                    "relabel_configs": [
                        {"source_labels": ["role"], "regex": "router", "action": "keep"}
                    ],
                    "metric_relabel_configs": [
                        {
                            "source_labels": ["__name__"],
                            "regex": "shadow_comparisons_total",
                            "action": "keep",
                        }
                    ],
                },
            ]
            self.set_targets([])
        (root / "prometheus.yml").write_text(json.dumps(config))

    def set_targets(self, targets: list[tuple[str, dict[str, str]]]) -> None:
        """Scrape `host:port` targets with the labels a cluster would put on them."""
        groups = [{"targets": [t], "labels": labels} for t, labels in targets]
        tmp = self.targets.with_suffix(".tmp")
        tmp.write_text(json.dumps(groups))
        os.replace(tmp, self.targets)

    def backfill(self, openmetrics: str) -> None:
        """Write blocks from OpenMetrics text (timestamps in seconds) with promtool."""
        source = self.root / "series.om"
        source.write_text(openmetrics)
        done = subprocess.run(
            [
                self.promtool,
                "tsdb",
                "create-blocks-from",
                "openmetrics",
                str(source),
                str(self.data),
            ],
            capture_output=True,
            text=True,
            check=False,
        )
        assert done.returncode == 0, done.stdout + done.stderr

    def start(self) -> Prometheus:
        log = (self.root / "prometheus.log").open("wb")
        with log:
            self.process = subprocess.Popen(
                [
                    self.binary,
                    f"--config.file={self.root / 'prometheus.yml'}",
                    f"--storage.tsdb.path={self.data}",
                    f"--web.listen-address=127.0.0.1:{self.port}",
                    "--storage.tsdb.retention.time=1d",
                ],
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            assert self.process.poll() is None, (self.root / "prometheus.log").read_text()[-2000:]
            try:
                with urlopen(self.url + "/-/ready", timeout=1) as answer:
                    if answer.status == 200:
                        return self
            except (URLError, OSError):
                pass
            time.sleep(0.1)
        raise AssertionError("prometheus never became ready")

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=5)

    def query(self, promql: str, at: float | None = None) -> list[float]:
        """The values of an instant vector (Argo reads `result[0]`)."""
        params = {"query": promql, **({"time": f"{at:.3f}"} if at is not None else {})}
        with urlopen(f"{self.url}/api/v1/query?{urlencode(params)}", timeout=10) as response:
            answer = json.load(response)
        assert answer["status"] == "success", answer
        assert answer["data"]["resultType"] == "vector", answer
        return [float(sample["value"][1]) for sample in answer["data"]["result"]]


def substitute(text: str, args: dict[str, str]) -> str:
    """Argo Rollouts' substitution of `args.NAME` references."""
    for name, value in args.items():
        text = text.replace("{" * 2 + f"args.{name}" + "}" * 2, value)
    return text


def condition(expression: str, value: float) -> bool:
    """Evaluate the expr-lang subset the renderer writes, on `result[0] = value`."""
    python = (
        expression.replace("&&", " and ")
        .replace("||", " or ")
        .replace("!isNaN(", " not isnan(")
        .replace("isNaN(", "isnan(")
        .replace("!(", " not (")
        .replace("result[0]", "value")
    )
    scope = {"isnan": math.isnan, "value": value, "false": False, "true": True}
    return bool(eval(python, {"__builtins__": {}}, scope))


def measure(metric: dict[str, Any], value: float) -> str:
    """One measurement's phase, as Argo Rollouts' EvaluateResult decides it."""
    success = condition(metric["successCondition"], value)
    failure = condition(metric.get("failureCondition", "false"), value)
    if failure:
        return "Failed"
    return "Successful" if success else "Inconclusive"


@dataclass
class MetricRun:
    """Argo's bookkeeping for one metric of an AnalysisRun."""

    metric: dict[str, Any]
    measurements: list[str] = field(default_factory=list)

    def add(self, phase: str) -> None:
        self.measurements.append(phase)

    def phase(self) -> str:
        """Running, Failed, Inconclusive or Successful (failureLimit, inconclusiveLimit, count)."""
        failed = self.measurements.count("Failed")
        inconclusive = self.measurements.count("Inconclusive")
        if failed > int(self.metric.get("failureLimit", 0)):
            return "Failed"
        if inconclusive > int(self.metric.get("inconclusiveLimit", 0)):
            return "Inconclusive"
        if len(self.measurements) >= int(self.metric.get("count", 1)):
            return "Successful"
        return "Running"


def run_phase(runs: list[MetricRun]) -> str:
    """The AnalysisRun's phase: a failed (or inconclusive) metric ends the run, worst first."""
    phases = [r.phase() for r in runs]
    for worst in ("Failed", "Inconclusive", "Running"):
        if worst in phases:
            return worst
    return "Successful"
