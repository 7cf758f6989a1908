"""Generated Kubernetes manifests validate against their schemas and say what params.yaml and
profile.yaml say (Argo Rollouts schemas from package.json)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from .generated_files import (
    ARGO_KINDS,
    CRD_KINDS,
    K8S_VERSION,
    ROOT,
    node_tool,
    package_of,
    run,
    tool,
)


def render(project: Path, *args: str) -> subprocess.CompletedProcess[str]:
    package = package_of(project)
    return run(
        [sys.executable, "-m", f"{package}.deploy.kubernetes", "render", *args],
        cwd=project,
        env={**os.environ, "PYTHONPATH": str(project / "src")},
    )


def kustomize(project: Path, overlay: str) -> list[dict[str, Any]]:
    if shutil.which("kubectl") is None:
        pytest.fail("kubectl is not installed (its built-in kustomize renders the overlays)")
    done = run(["kubectl", "kustomize", f"deploy/k8s/overlays/{overlay}"], cwd=project)
    assert done.returncode == 0, done.stderr
    return [doc for doc in yaml.safe_load_all(done.stdout) if doc]


def validate_docs(docs: list[dict[str, Any]], workdir: Path) -> None:
    """kubernetes-validate --strict on core kinds and pod templates; Argo schemas on the rest."""
    core = [d for d in docs if d["kind"] not in CRD_KINDS]
    for doc in docs:
        if doc["kind"] == "Rollout":  # its pod template is a core PodTemplateSpec
            core.append(
                {
                    "apiVersion": "v1",
                    "kind": "PodTemplate",
                    "metadata": {
                        "name": doc["metadata"]["name"],
                        "namespace": doc["metadata"]["namespace"],
                    },
                    "template": doc["spec"]["template"],
                }
            )
    manifest = workdir / "core.yaml"
    manifest.write_text(yaml.safe_dump_all(core))
    done = run(
        [tool("kubernetes-validate"), "--strict", "-k", K8S_VERSION, str(manifest)], cwd=workdir
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "WARN" not in done.stdout + done.stderr, done.stdout + done.stderr
    argo = [d for d in docs if d["kind"] in ARGO_KINDS]
    if argo:
        done = run(
            [node_tool(), str(ROOT / "tests" / "argo_validate.mjs")],
            cwd=ROOT,
            input=json.dumps(argo),
        )
        assert done.returncode == 0, done.stdout + done.stderr


def test_manifests_validate(baked_k8s: Path, tmp_path: Path) -> None:
    """Both overlays render and every object validates against its schema."""
    done = render(baked_k8s, "--model-version", "7", "--image", "registry.example/model:1")
    assert done.returncode == 0, done.stderr
    for overlay in ("staging", "production"):
        docs = kustomize(baked_k8s, overlay)
        kinds = sorted({d["kind"] for d in docs})
        if overlay == "production":
            assert kinds == [
                "AnalysisTemplate",
                "Namespace",
                "NetworkPolicy",
                "PodDisruptionBudget",
                "PrometheusRule",
                "Rollout",
                "Service",
                "ServiceAccount",
                "ServiceMonitor",
            ]
        else:
            assert kinds == [
                "Deployment",
                "Namespace",
                "NetworkPolicy",
                "PodDisruptionBudget",
                "PrometheusRule",
                "Service",
                "ServiceAccount",
                "ServiceMonitor",
            ]
        validate_docs(docs, tmp_path)


def test_pod_security_restricted(baked_k8s: Path) -> None:
    """The pod template meets Pod Security Standard 'restricted' and has no API token."""
    assert render(baked_k8s, "--model-version", "7").returncode == 0
    for overlay, kind in (("staging", "Deployment"), ("production", "Rollout")):
        (workload,) = [d for d in kustomize(baked_k8s, overlay) if d["kind"] == kind]
        pod = workload["spec"]["template"]["spec"]
        assert pod["automountServiceAccountToken"] is False
        assert pod["securityContext"]["runAsNonRoot"] is True
        assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
        (container,) = pod["containers"]
        ctx = container["securityContext"]
        assert ctx["allowPrivilegeEscalation"] is False and ctx["readOnlyRootFilesystem"] is True
        assert ctx["capabilities"]["drop"] == ["ALL"]
        assert {"requests", "limits"} <= set(container["resources"])
        assert "/tmp" in [m["mountPath"] for m in container["volumeMounts"]]
        env = {e["name"]: e.get("value") for e in container["env"]}
        assert env["MODEL_VERSION"] == "7"


def test_probe_timeouts_are_set_on_purpose(baked_k8s: Path) -> None:
    """Every probe names its timeout (Kubernetes' default of 1 s is not left to chance):
    readiness answers within its period, liveness gives a busy pod ~30 s before a restart."""
    assert render(baked_k8s, "--model-version", "7").returncode == 0
    for overlay, kind in (("staging", "Deployment"), ("production", "Rollout")):
        (workload,) = [d for d in kustomize(baked_k8s, overlay) if d["kind"] == kind]
        (container,) = workload["spec"]["template"]["spec"]["containers"]
        probes = {
            name: container[name] for name in ("startupProbe", "readinessProbe", "livenessProbe")
        }
        assert all("timeoutSeconds" in probe for probe in probes.values()), probes
        ready, live = probes["readinessProbe"], probes["livenessProbe"]
        assert ready["timeoutSeconds"] < ready["periodSeconds"]
        assert live["periodSeconds"] * live["failureThreshold"] >= 30
        assert live["timeoutSeconds"] > ready["timeoutSeconds"]


def test_each_pod_scraped_once_and_namespaces_enforce_restricted(baked_k8s: Path) -> None:
    """One Service feeds the ServiceMonitor (counts are not doubled); PSS labels; a PDB."""
    assert render(baked_k8s, "--model-version", "7").returncode == 0
    for overlay in ("staging", "production"):
        docs = kustomize(baked_k8s, overlay)
        (monitor,) = [d for d in docs if d["kind"] == "ServiceMonitor"]
        wanted = monitor["spec"]["selector"]["matchLabels"]
        services = [
            d["metadata"]["name"]
            for d in docs
            if d["kind"] == "Service" and wanted.items() <= d["metadata"]["labels"].items()
        ]
        assert services == ["model-server"], services
        (namespace,) = [d for d in docs if d["kind"] == "Namespace"]
        assert {d["metadata"].get("namespace") for d in docs if d["kind"] != "Namespace"} == {
            namespace["metadata"]["name"]
        }
        labels = namespace["metadata"]["labels"]
        assert labels["pod-security.kubernetes.io/enforce"] == "restricted"
        (budget,) = [d for d in docs if d["kind"] == "PodDisruptionBudget"]
        assert budget["spec"]["maxUnavailable"] == 1


def test_prediction_log_file_target_renders_valid_manifests(
    baked_k8s: Path, tmp_path: Path
) -> None:
    """profile.yaml prediction_log target file: both overlays mount the sized volume, give the
    server the path and rotation, and still validate strictly (pod security: restricted)."""
    project = tmp_path / "project"
    shutil.copytree(baked_k8s, project, ignore=shutil.ignore_patterns(".git", ".dvc", "data"))
    profile = project / "deploy" / "k8s" / "profile.yaml"
    text = profile.read_text()
    assert "prediction_log:\n  target: stdout\n" in text
    profile.write_text(
        text.replace("prediction_log:\n  target: stdout\n", "prediction_log:\n  target: file\n")
    )
    done = render(project, "--model-version", "7", "--image", "registry.example/model:1")
    assert done.returncode == 0, done.stderr
    for overlay, kind in (("staging", "Deployment"), ("production", "Rollout")):
        docs = kustomize(project, overlay)
        (workload,) = [d for d in docs if d["kind"] == kind]
        pod = workload["spec"]["template"]["spec"]
        (server,) = [c for c in pod["containers"] if c["name"] == "server"]
        args = server["args"]
        assert args.count("--prediction-log") == 1, args
        assert (
            args[args.index("--prediction-log") + 1]
            == "/var/log/predictions/predictions-{variant}.jsonl"
        )
        assert args[args.index("--prediction-log-max-bytes") + 1] == "10000000"
        assert {"name": "prediction-log", "mountPath": "/var/log/predictions"} in server[
            "volumeMounts"
        ]
        assert {"name": "prediction-log", "emptyDir": {"sizeLimit": "128M"}} in pod["volumes"]
        assert {"name": "tmp", "mountPath": "/tmp"} in server["volumeMounts"]  # the base's kept
        validate_docs(docs, tmp_path)


def test_network_policy_default_deny(baked_k8s: Path) -> None:
    """A default-deny policy covers every pod, for both directions."""
    assert render(baked_k8s).returncode == 0
    policies = {
        d["metadata"]["name"]: d
        for d in kustomize(baked_k8s, "production")
        if d["kind"] == "NetworkPolicy"
    }
    deny = policies["default-deny"]["spec"]
    assert deny["podSelector"] == {} and sorted(deny["policyTypes"]) == ["Egress", "Ingress"]
    assert "ingress" not in deny and "egress" not in deny


def test_network_policy_egress_declared(baked_k8s: Path) -> None:
    """No egress rule opens 443 or 5000 (or any port) to every destination."""
    assert render(baked_k8s).returncode == 0
    for overlay in ("staging", "production"):
        for policy in kustomize(baked_k8s, overlay):
            if policy["kind"] != "NetworkPolicy":
                continue
            for rule in policy["spec"].get("egress", []):
                ports = {p["port"] for p in rule.get("ports", [])}
                assert rule.get("to"), (overlay, policy["metadata"]["name"], sorted(ports))
                for peer in rule["to"]:
                    assert peer.get("ipBlock", {}).get("cidr") not in ("0.0.0.0/0", "::/0"), peer
                    assert peer.get("namespaceSelector") != {}, peer  # {}: every namespace
        egress = {
            d["metadata"]["name"]: d
            for d in kustomize(baked_k8s, overlay)
            if d["kind"] == "NetworkPolicy"
        }["model-server-egress"]["spec"]["egress"]
        registry = [r for r in egress if {443, 5000} <= {p["port"] for p in r["ports"]}]
        assert registry, "the registry rule (443/5000) is missing"


def test_rollout_follows_params(baked_k8s: Path) -> None:
    """Steps and thresholds come from params.yaml: rollout, so one spec drives both targets."""
    spec = yaml.safe_load((baked_k8s / "params.yaml").read_text())["rollout"]
    done = render(baked_k8s, "--model-version", "3")
    assert done.returncode == 0, done.stderr
    # 5% of 4 replicas cannot be realised by pod ratio: the renderer says so.
    assert "weight 5% needs 20 replicas" in done.stderr
    docs = kustomize(baked_k8s, "production")
    (rollout,) = [d for d in docs if d["kind"] == "Rollout"]
    steps = rollout["spec"]["strategy"]["canary"]["steps"]
    assert [s["setWeight"] for s in steps if "setWeight" in s] == [
        s["weight"] for s in spec["steps"]
    ]
    assert ("experiment" in steps[0]) == bool(spec["shadow"]["enabled"])
    templates = {d["metadata"]["name"]: d for d in docs if d["kind"] == "AnalysisTemplate"}
    metrics = {m["name"]: m for m in templates["model-server-canary-health"]["spec"]["metrics"]}
    queries = {name: m["provider"]["prometheus"]["query"] for name, m in metrics.items()}
    assert f"- ({spec['guardrails']['max_error_rate']:g}))" in queries["error-rate-at-end"]
    assert f'le="{spec["guardrails"]["max_p99_ms"] / 1000:g}"' in queries["slow-requests"]
    assert f"({spec['relative']['max_p99_ratio']:g} * clamp_min(" in queries["slow-vs-stable"]
    assert queries["canary-requests"].startswith(f"({spec['analysis']['min_requests']} - ")
    # end-of-step checks are measured once, over the whole step, after its pause
    at_end = metrics["error-rate-at-end"]
    assert at_end["count"] == 1
    assert at_end["initialDelay"] == metrics["canary-requests"]["initialDelay"]
    # 100% is judged too, before Argo finishes: only the checks that need no stable traffic
    assert steps[-1]["analysis"]["templates"] == [{"templateName": "model-server-canary-full"}]
    full = {m["name"] for m in templates["model-server-canary-full"]["spec"]["metrics"]}
    assert "error-rate" in full
    assert "error-rate-increase" not in full
    for metric in metrics.values():
        query = metric["provider"]["prometheus"]["query"]
        assert "model_requests_total" in query or "model_request_latency_seconds_bucket" in query
    if spec["shadow"]["enabled"]:
        shadow = templates["model-server-shadow-agreement"]["spec"]["metrics"]
        assert all(
            "shadow_comparisons_total" in m["provider"]["prometheus"]["query"] for m in shadow
        )


def test_traffic_router_profile(baked_k8s: Path, tmp_path: Path) -> None:
    """With the nginx profile weights are exact: no warning, and the Rollout routes by ingress."""
    project = tmp_path / "project"
    shutil.copytree(baked_k8s, project, ignore=shutil.ignore_patterns(".git", ".dvc", "data"))
    profile_path = project / "deploy" / "k8s" / "profile.yaml"
    profile = yaml.safe_load(profile_path.read_text())
    profile["traffic_router"] = "nginx"
    profile_path.write_text(yaml.safe_dump(profile))
    done = render(project, "--model-version", "3")
    assert done.returncode == 0, done.stderr
    assert "warning" not in done.stderr
    docs = kustomize(project, "production")
    (rollout,) = [d for d in docs if d["kind"] == "Rollout"]
    assert rollout["spec"]["strategy"]["canary"]["trafficRouting"] == {
        "nginx": {"stableIngress": "model-server"}
    }
    validate_docs(docs, tmp_path)
