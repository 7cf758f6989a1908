"""Monitoring as code: the alert rules pass promtool's unit tests, every query names real metrics."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml
from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families

from {{ cookiecutter.package }}.asgi.metrics import ServeMetrics
from {{ cookiecutter.package }}.config import load_config
from {{ cookiecutter.package }}.errors import ConfigError
from {{ cookiecutter.package }}.rollout import argo, k8s_profile
from {{ cookiecutter.package }}.rollout.shadow import ShadowMetrics
from {{ cookiecutter.package }}.serve.app import build_parser, log_target
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
    assert not unknown, f"not exported by asgi/metrics.py: {sorted(unknown)}"


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


# --------------------------------------------------------------------------- prediction log


def k8s_project(tmp_path: Path, prediction_log: dict | None) -> Path:
    """A copy of the project's params and deploy/k8s with profile.yaml's prediction_log set."""
    shutil.copy(ROOT / "params.yaml", tmp_path / "params.yaml")
    shutil.copytree(K8S, tmp_path / "deploy" / "k8s")
    profile_path = tmp_path / "deploy" / "k8s" / "profile.yaml"
    profile = yaml.safe_load(profile_path.read_text(encoding="utf-8"))
    profile["prediction_log"] = prediction_log
    profile_path.write_text(yaml.safe_dump(profile), encoding="utf-8")
    return tmp_path


def rendered_pods(root: Path) -> list[tuple[dict, dict]]:
    """(pod spec, server container) of the production Rollout and the staging patch."""
    settings = k8s_profile.load_settings(root)
    paths = argo.render(settings, "registry.example/model:1", "7")
    pods = []
    for path in paths:
        for doc in yaml.safe_load_all(path.read_text(encoding="utf-8")):
            if doc and doc["kind"] in ("Rollout", "Deployment"):
                spec = doc["spec"]["template"]["spec"]
                pods.append((spec, spec["containers"][0]))
    assert len(pods) == 2, paths
    return pods


def test_prediction_log_goes_to_stdout_by_default(tmp_path):
    """The shipped profile: every rendered pod logs to stdout, the flag given once."""
    settings = k8s_profile.load_settings(ROOT)
    assert settings.log.target == "stdout"
    for _, container in rendered_pods(k8s_project(tmp_path, {"target": "stdout"})):
        args = container["args"]
        assert args.count("--prediction-log") == 1
        assert args[args.index("--prediction-log") + 1] == "-"


def test_prediction_log_to_a_rotated_file_on_a_volume(tmp_path):
    """target: file mounts a sized volume and gives the server the path and rotation."""
    log = {"target": "file", "file": {"directory": "/var/log/predictions", "max_mb": 20,
                                      "backups": 3, "volume_size_mb": 100}}  # fmt: skip
    for pod, container in rendered_pods(k8s_project(tmp_path, log)):
        volume = {"name": "prediction-log", "emptyDir": {"sizeLimit": "100M"}}
        assert volume in pod["volumes"]
        assert {"name": "prediction-log", "mountPath": "/var/log/predictions"} in container[
            "volumeMounts"
        ]
        # the server's own parser reads what was rendered: the flags exist and mean this
        assert container["args"][0] == "serve"
        server = build_parser().parse_args(container["args"][1:])
        assert container["args"].count("--prediction-log") == 1
        assert server.prediction_log == "/var/log/predictions/predictions-{variant}.jsonl"
        assert (server.prediction_log_max_bytes, server.prediction_log_backups) == (20_000_000, 3)
        assert log_target(server.prediction_log, "canary").endswith("predictions-canary.jsonl")


def file_log(**changes: object) -> dict:
    file = {"directory": "/var/log/p", "max_mb": 10, "backups": 5, "volume_size_mb": 128}
    return {"target": "file", "file": file | changes}


@pytest.mark.parametrize(
    ("prediction_log", "message"),
    [
        ({"target": "syslog"}, "prediction_log.target: 'syslog' is not allowed: Input should be"),
        ({"target": "file"}, "prediction_log: Value error, target file needs `file`"),
        (
            file_log(directory="logs"),
            "file.directory: 'logs' is not allowed: Value error, expected",
        ),
        (file_log(directory="/tmp/"), "already mounted"),
        (file_log(max_mb=0), "file.max_mb: 0 is not allowed: Input should be greater than or"),
        (
            file_log(backups="5"),
            "file.backups: '5' is not allowed: Input should be a valid integer",
        ),
        (
            file_log(volume_size_mb=50),
            "volume_size_mb is 50; expected at least max_mb x (backups + 1) = 60",
        ),
    ],
)
def test_prediction_log_settings_are_checked(tmp_path, prediction_log, message):
    """A profile the cluster could not honour is refused at render, naming the field."""
    with pytest.raises(ConfigError, match=re.escape(message)):
        k8s_profile.load_settings(k8s_project(tmp_path, prediction_log))
