"""Monitoring as code: the alert rules pass promtool's unit tests, every query names real metrics."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

import pytest
import yaml
from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families

from {{ cookiecutter.package }}.config import load_config
from {{ cookiecutter.package }}.rollout.shadow import ShadowMetrics
from {{ cookiecutter.package }}.serve.metrics import ServeMetrics
from {{ cookiecutter.package }}.serve.prediction_log import PredictionLog
from tests.conftest import ROOT
from tests.delivery.prom import binaries

K8S = ROOT / "deploy" / "k8s"
RULES = K8S / "base" / "prometheusrule.yaml"
DASHBOARD = K8S / "monitoring" / "dashboard.json"
# words in a PromQL expression that are not metric names
PROMQL_WORDS = {
    "sum", "max", "min", "avg", "count", "rate", "irate", "increase", "histogram_quantile",
    "by", "without", "on", "ignoring", "and", "or", "unless", "le", "bool", "offset",
}  # fmt: skip


def groups() -> list[dict]:
    return yaml.safe_load(RULES.read_text(encoding="utf-8"))["spec"]["groups"]


def exported_metric_names(tmp_path: Path) -> set[str]:
    """Every sample name one model server exposes: its own, shadow, drift and log metrics."""
    metrics = ServeMetrics("stable", "1")
    ShadowMetrics(metrics.registry)
    features = [{"feature": "x", "psi": 0.1}]
    metrics.watch_drift(lambda: {"features": features, "rows": {"current": 10}})
    log = PredictionLog(str(tmp_path / "log.jsonl"), metrics.registry)
    log.start()
    log.stop()
    text = generate_latest(metrics.registry).decode()
    return {s.name for family in text_string_to_metric_families(text) for s in family.samples}


def metric_names(expr: str) -> set[str]:
    """The metric names an expression reads (label matchers, grouping labels and functions left out)."""
    bare = re.sub(r'"[^"]*"', "", expr)
    bare = re.sub(r"\{[^}]*\}", "", bare)
    bare = re.sub(r"\b(by|without|on|ignoring)\s*\([^)]*\)", "", bare)
    bare = re.sub(r"\[[^\]]*\]", "", bare)
    words = set(re.findall(r"[a-zA-Z_:][a-zA-Z0-9_:]*", bare))
    return {w for w in words if w not in PROMQL_WORDS}


def dashboard_exprs() -> list[str]:
    dashboard = json.loads(DASHBOARD.read_text(encoding="utf-8"))
    return [t["expr"] for panel in dashboard["panels"] for t in panel["targets"]]


def test_alert_rules_pass_their_promtool_unit_tests(tmp_path):
    """`promtool check rules` and `promtool test rules` on the PrometheusRule's groups."""
    _, promtool = binaries()
    (tmp_path / "rules.yaml").write_text(yaml.safe_dump({"groups": groups()}))
    (tmp_path / "rules-test.yaml").write_bytes(
        (K8S / "monitoring" / "rules-test.yaml").read_bytes()
    )
    for command in (["check", "rules", "rules.yaml"], ["test", "rules", "rules-test.yaml"]):
        done = subprocess.run([promtool, *command], cwd=tmp_path, capture_output=True, text=True)
        assert done.returncode == 0, done.stdout + done.stderr


def test_every_dashboard_query_is_valid_promql(tmp_path):
    """Each panel's query parses: promtool checks it as a recording rule."""
    _, promtool = binaries()
    rules = [{"record": f"panel:{i}", "expr": expr} for i, expr in enumerate(dashboard_exprs())]
    (tmp_path / "panels.yaml").write_text(
        yaml.safe_dump({"groups": [{"name": "p", "rules": rules}]})
    )
    done = subprocess.run([promtool, "check", "rules", "panels.yaml"], cwd=tmp_path,
                          capture_output=True, text=True)  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr


def test_queries_read_only_metrics_the_servers_export(tmp_path):
    """A renamed metric breaks this test, not a dashboard in production."""
    exported = exported_metric_names(tmp_path)
    exprs = dashboard_exprs() + [r["expr"] for g in groups() for r in g["rules"]]
    unknown = {name for expr in exprs for name in metric_names(expr)} - exported
    assert not unknown, f"not exported by serve/metrics.py: {sorted(unknown)}"


def test_dashboard_panels_are_complete():
    """Every panel has an id, a title, a place and a Prometheus query; ids are unique."""
    panels = json.loads(DASHBOARD.read_text(encoding="utf-8"))["panels"]
    assert len({p["id"] for p in panels}) == len(panels)
    for panel in panels:
        assert panel["title"]
        assert set(panel["gridPos"]) == {"x", "y", "w", "h"}
        assert panel["targets"]
        assert all(t["datasource"]["type"] == "prometheus" for t in panel["targets"])


@pytest.mark.parametrize(
    ("alert", "bound"),
    [
        ("ModelServerErrorRate", lambda c: c.rollout.guardrails.max_error_rate),
        ("ModelServerLatencyP99", lambda c: c.rollout.guardrails.max_p99_ms / 1000),
        ("ModelFeatureDrift", lambda c: c.drift.psi_threshold),
    ],
)
def test_alert_bounds_follow_params(alert, bound):
    """The rules repeat three bounds of params.yaml (a PrometheusRule cannot read it): they agree."""
    rule = next(r for g in groups() for r in g["rules"] if r.get("alert") == alert)
    numbers = {float(n) for n in re.findall(r">=?\s*([0-9.]+)", rule["expr"])}
    assert bound(load_config(ROOT / "params.yaml")) in numbers
