"""Kubernetes delivery: Argo Rollouts manifests rendered from `params.yaml: rollout`.

`render` writes `deploy/k8s/overlays/*/generated/` from three inputs: the pod template in
`deploy/k8s/base/deployment.yaml`, the cluster settings in `deploy/k8s/profile.yaml`, and
the rollout spec that local delivery also runs. The other commands are thin wrappers over
`kubectl` and the Argo Rollouts plugin: the engine judges and rolls back; after an abort
the registry's `champion` is moved back so that registry and cluster agree.
"""

from __future__ import annotations

import argparse
import copy
import json
import math
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from statistics import NormalDist
from typing import Any

import yaml

K8S_DIR = Path("deploy") / "k8s"
PARAMS_FILE = Path("params.yaml")
VERSION_ANNOTATION = "ml-cicd/model-version"
TRAFFIC_ROUTERS = ("none", "nginx", "smi")
ENVIRONMENTS = ("staging", "production")


class K8sError(RuntimeError):
    """A setting, a file or a kubectl call is not what delivery needs."""


@dataclass(frozen=True)
class Settings:
    """Everything `render` needs, read from the project's files."""

    rollout: dict[str, Any]
    profile: dict[str, Any]
    deployment: dict[str, Any]
    namespaces: dict[str, str]
    root: Path

    @property
    def app(self) -> str:
        return str(self.profile["app"])


def load_settings(root: Path = Path(".")) -> Settings:
    """Read params.yaml, profile.yaml, the base Deployment and each overlay's namespace."""
    params = _read_yaml(root / PARAMS_FILE)
    if not isinstance(params.get("rollout"), dict):
        raise K8sError(f"{root / PARAMS_FILE}: no `rollout:` section")
    profile = _read_yaml(root / K8S_DIR / "profile.yaml")
    router = profile.get("traffic_router", "none")
    if router not in TRAFFIC_ROUTERS:
        choices = ", ".join(TRAFFIC_ROUTERS)
        raise K8sError(f"profile.yaml: traffic_router is {router!r}; use one of {choices}")
    deployment = _read_yaml(root / K8S_DIR / "base" / "deployment.yaml")
    namespaces = {}
    for env in ENVIRONMENTS:
        kustomization = _read_yaml(root / K8S_DIR / "overlays" / env / "kustomization.yaml")
        namespaces[env] = str(kustomization.get("namespace") or "default")
    return Settings(params["rollout"], profile, deployment, namespaces, root)


def _read_yaml(path: Path) -> dict[str, Any]:
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise K8sError(f"{path}: missing") from None
    if not isinstance(data, dict):
        raise K8sError(f"{path}: expected a mapping")
    return data


# --------------------------------------------------------------------------- weights


def replicas_needed(weight: float) -> int:
    """The fewest pods that realise `weight` percent exactly by pod ratio (5 -> 20)."""
    if weight <= 0 or weight >= 100:
        return 1
    return 100 // math.gcd(100, round(weight))


def realised_weight(weight: float, replicas: int) -> float:
    """The canary share Argo Rollouts gets without a traffic router (canary pods rounded up)."""
    if weight >= 100:
        return 100.0
    canary = math.ceil(replicas * weight / 100)
    return round(100 * canary / replicas, 2)


def weight_warnings(settings: Settings) -> list[str]:
    """A warning per step whose weight the replica count cannot realise without a router."""
    if settings.profile.get("traffic_router", "none") != "none":
        return []
    replicas = int(settings.profile["replicas"])
    warnings = []
    for step in settings.rollout["steps"]:
        weight = float(step["weight"])
        got = realised_weight(weight, replicas)
        if got != weight:
            warnings.append(
                f"weight {weight:g}% needs {replicas_needed(weight)} replicas without a traffic "
                f"router; with {replicas} Argo Rollouts sends about {got:g}% to the canary. "
                "Set traffic_router: nginx or smi in deploy/k8s/profile.yaml, or raise replicas."
            )
    return warnings


# --------------------------------------------------------------------------- analysis


def _arg(name: str) -> str:
    """An Argo Rollouts argument reference; built, not written, so Jinja leaves it alone."""
    return "{" * 2 + "args." + name + "}" * 2


def _seconds(value: float, floor: float) -> int:
    return math.ceil(max(float(value), float(floor)))


def _sum_increase(metric: str, selector: str, window: str) -> str:
    return "(sum(increase(" + metric + "{" + selector + "}[" + window + "])) or vector(0))"


def _error_rate(selector: str, window: str) -> str:
    errors = _sum_increase("model_requests_total", f'{selector},outcome="error"', window)
    total = _sum_increase("model_requests_total", selector, window)
    return f"({errors} / clamp_min({total}, 1))"


def _p99_ms(selector: str, window: str) -> str:
    return (
        "(histogram_quantile(0.99, sum by (le) "
        "(rate(model_request_latency_seconds_bucket{" + selector + "}[" + window + "]))) * 1000)"
    )


def _one_sided_z(canary: str, stable: str, window: str) -> str:
    """PromQL for the pooled two-proportion z statistic of 'canary errs more than stable'."""
    ec = _sum_increase("model_requests_total", f'{canary},outcome="error"', window)
    nc = f"clamp_min({_sum_increase('model_requests_total', canary, window)}, 1)"
    es = _sum_increase("model_requests_total", f'{stable},outcome="error"', window)
    ns = f"clamp_min({_sum_increase('model_requests_total', stable, window)}, 1)"
    pooled = f"(({ec} + {es}) / ({nc} + {ns}))"
    return (
        f"(({ec} / {nc}) - ({es} / {ns})) / "
        f"clamp_min(sqrt({pooled} * (1 - {pooled}) * (1 / {nc} + 1 / {ns})), 1e-9)"
    )


def _traffic_metric(
    name: str, query: str, minimum: int, policy: dict[str, Any], interval: str, address: str
) -> dict[str, Any]:
    """A 'was there enough traffic' metric whose failure mode is the inconclusive policy."""
    kind = policy.get("policy", "rollback")
    metric: dict[str, Any] = {
        "name": name,
        "interval": interval,
        "provider": {"prometheus": {"address": address, "query": query}},
    }
    if kind == "promote":
        # Too little traffic is not held against the canary.
        metric |= {"count": 1, "successCondition": "true"}
    elif kind == "extend":
        extensions = int(policy.get("max_extensions", 0))
        metric |= {
            "count": extensions + 1,
            "successCondition": f"result[0] >= {minimum}",
            "failureCondition": f"result[0] < {minimum}",
            "failureLimit": extensions,
        }
    elif kind == "rollback":
        metric |= {
            "count": 1,
            "successCondition": f"result[0] >= {minimum}",
            "failureCondition": f"result[0] < {minimum}",
            "failureLimit": 0,
        }
    else:
        raise K8sError(
            f"params.yaml: rollout.inconclusive.policy is {kind!r}; use rollback, promote or extend"
        )
    return metric


def _limit_metric(
    name: str, query: str, limit: float, interval: str, address: str
) -> dict[str, Any]:
    """A guardrail: fail above `limit`; no data (NaN) is left to the traffic metric."""
    return {
        "name": name,
        "interval": interval,
        "count": 1,
        "successCondition": f"isNaN(result[0]) || result[0] <= {limit:g}",
        "failureCondition": f"!isNaN(result[0]) && result[0] > {limit:g}",
        "failureLimit": 0,
        "provider": {"prometheus": {"address": address, "query": query}},
    }


def analysis_templates(settings: Settings, window_s: int) -> list[dict[str, Any]]:
    """The AnalysisTemplates: canary health per step, and the shadow comparison."""
    spec = settings.rollout
    app, ns = settings.app, settings.namespaces["production"]
    address = str(settings.profile["prometheus"]["address"])
    timing = settings.profile["timing"]
    interval = f"{_seconds(spec['analysis']['interval_s'], timing['min_interval_s'])}s"
    window = f"{window_s}s"
    canary = f'namespace="{ns}",rollouts_pod_template_hash="{_arg("canary-hash")}"'
    stable = f'namespace="{ns}",rollouts_pod_template_hash="{_arg("stable-hash")}"'
    minimum = int(spec["analysis"]["min_requests"])
    guard, rel = spec["guardrails"], spec["relative"]
    z_critical = NormalDist().inv_cdf(1 - float(rel["alpha"]))
    health_metrics = [
        _traffic_metric(
            "canary-requests",
            _sum_increase("model_requests_total", canary, window),
            minimum,
            spec["inconclusive"],
            interval,
            address,
        ),
        _limit_metric(
            "error-rate",
            _error_rate(canary, window),
            float(guard["max_error_rate"]),
            interval,
            address,
        ),
        _limit_metric(
            "p99-latency-ms", _p99_ms(canary, window), float(guard["max_p99_ms"]), interval, address
        ),
        _limit_metric(
            "error-rate-increase",
            f"{_error_rate(canary, window)} - {_error_rate(stable, window)}",
            float(rel["max_error_rate_increase"]),
            interval,
            address,
        ),
        _limit_metric(
            "p99-ratio",
            f"{_p99_ms(canary, window)} / {_p99_ms(stable, window)}",
            float(rel["max_p99_ratio"]),
            interval,
            address,
        ),
        _limit_metric(
            "errs-more-z",
            _one_sided_z(canary, stable, window),
            round(z_critical, 4),
            interval,
            address,
        ),
    ]
    hash_args = [{"name": "canary-hash"}, {"name": "stable-hash"}]
    templates = [_analysis_template(f"{app}-canary-health", hash_args, health_metrics)]
    shadow = spec.get("shadow") or {}
    if shadow.get("enabled"):
        compared = f'namespace="{ns}",outcome=~"agree|disagree"'
        disagreed = f'namespace="{ns}",outcome="disagree"'
        shadow_metrics = [
            _traffic_metric(
                "shadow-comparisons",
                _sum_increase("shadow_comparisons_total", compared, window),
                minimum,
                spec["inconclusive"],
                interval,
                address,
            ),
            _limit_metric(
                "shadow-disagreement",
                f"{_sum_increase('shadow_comparisons_total', disagreed, window)}"
                f" / clamp_min({_sum_increase('shadow_comparisons_total', compared, window)}, 1)",
                float(shadow["max_disagreement"]),
                interval,
                address,
            ),
        ]
        delay = f"{_seconds(shadow['duration_s'], settings.profile['timing']['min_pause_s'])}s"
        for metric in shadow_metrics:
            metric["initialDelay"] = delay
        templates.append(_analysis_template(f"{app}-shadow-agreement", [], shadow_metrics))
    return templates


def _analysis_template(
    name: str, args: list[dict[str, Any]], metrics: list[dict[str, Any]]
) -> dict[str, Any]:
    spec: dict[str, Any] = {"metrics": metrics}
    if args:
        spec = {"args": args, **spec}
    return {
        "apiVersion": "argoproj.io/v1alpha1",
        "kind": "AnalysisTemplate",
        "metadata": {"name": name, "labels": {"app": "model-server"}},
        "spec": spec,
    }


# --------------------------------------------------------------------------- rollout


def pod_template(settings: Settings, image: str, version: str) -> dict[str, Any]:
    """The base Deployment's pod template with the image and model version pinned."""
    template = copy.deepcopy(settings.deployment["spec"]["template"])
    template.setdefault("metadata", {}).setdefault("annotations", {})[VERSION_ANNOTATION] = version
    container = template["spec"]["containers"][0]
    container["image"] = image
    for env in container.get("env", []):
        if env["name"] == "MODEL_VERSION":
            env["value"] = version
    return template


def canary_steps(settings: Settings) -> tuple[list[dict[str, Any]], int]:
    """Argo canary steps for the shared spec, and the analysis window in seconds."""
    spec, timing = settings.rollout, settings.profile["timing"]
    app = settings.app
    steps: list[dict[str, Any]] = []
    shadow = spec.get("shadow") or {}
    pauses = [_seconds(step["pause_s"], timing["min_pause_s"]) for step in spec["steps"]]
    window_s = min(pauses) if pauses else int(timing["min_pause_s"])
    if shadow.get("enabled"):
        duration = _seconds(shadow["duration_s"], timing["min_pause_s"])
        window_s = min(window_s, duration)
        # No duration: the experiment ends when its analysis (which waits `duration`
        # before measuring) completes. `serving: "false"` keeps the shadow pods out of
        # the client Service; stable pods mirror to the experiment's Service.
        steps.append(
            {
                "experiment": {
                    "templates": [
                        {
                            "name": "shadow",
                            "specRef": "canary",
                            "replicas": 1,
                            "metadata": {"labels": {"role": "canary", "serving": "false"}},
                            "service": {"name": f"{app}-shadow"},
                        }
                    ],
                    "analyses": [
                        {
                            "name": "shadow-agreement",
                            "templateName": f"{app}-shadow-agreement",
                            "requiredForCompletion": True,
                        }
                    ],
                }
            }
        )
    health = {
        "templates": [{"templateName": f"{app}-canary-health"}],
        "args": [
            {"name": "canary-hash", "valueFrom": {"podTemplateHashValue": "Latest"}},
            {"name": "stable-hash", "valueFrom": {"podTemplateHashValue": "Stable"}},
        ],
    }
    for step, pause in zip(spec["steps"], pauses, strict=True):
        weight = int(step["weight"])
        steps.append({"setWeight": weight})
        if weight >= 100:
            break  # full weight ends the canary: nothing left to judge against
        steps.append({"pause": {"duration": f"{pause}s"}})
        steps.append({"analysis": copy.deepcopy(health)})
    return steps, window_s


def rollout_manifest(settings: Settings, image: str, version: str) -> tuple[dict[str, Any], int]:
    """The production Rollout (pod template from base, steps from params) and the window."""
    app, profile = settings.app, settings.profile
    steps, window_s = canary_steps(settings)
    canary: dict[str, Any] = {
        "canaryService": f"{app}-canary",
        "stableService": f"{app}-stable",
        "canaryMetadata": {"labels": {"role": "canary"}},
        "stableMetadata": {"labels": {"role": "stable"}},
        "abortScaleDownDelaySeconds": 0,
        "steps": steps,
    }
    router = profile.get("traffic_router", "none")
    if router == "nginx":
        canary["trafficRouting"] = {
            "nginx": {"stableIngress": str(profile["nginx"]["stable_ingress"])}
        }
        canary["dynamicStableScale"] = True
    elif router == "smi":
        canary["trafficRouting"] = {
            "smi": {"rootService": str(profile["smi"]["root_service"]), "trafficSplitName": app}
        }
        canary["dynamicStableScale"] = True
    base = settings.deployment["spec"]
    rollout = {
        "apiVersion": "argoproj.io/v1alpha1",
        "kind": "Rollout",
        "metadata": {"name": app, "labels": {"app": "model-server"}},
        "spec": {
            "replicas": int(profile["replicas"]),
            "revisionHistoryLimit": int(base.get("revisionHistoryLimit", 3)),
            "selector": copy.deepcopy(base["selector"]),
            "template": pod_template(settings, image, version),
            "strategy": {"canary": canary},
        },
    }
    return rollout, window_s


def staging_patch(settings: Settings, image: str, version: str) -> dict[str, Any]:
    """A strategic-merge patch that pins the staging Deployment's image and version."""
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": settings.deployment["metadata"]["name"]},
        "spec": {
            "template": {
                "metadata": {"annotations": {VERSION_ANNOTATION: version}},
                "spec": {
                    "containers": [
                        {
                            "name": "server",
                            "image": image,
                            "env": [{"name": "MODEL_VERSION", "value": version}],
                        }
                    ]
                },
            }
        },
    }


def render(settings: Settings, image: str, version: str) -> list[Path]:
    """Write every overlay's generated/ files; return their paths."""
    overlays = settings.root / K8S_DIR / "overlays"
    rollout, window_s = rollout_manifest(settings, image, version)
    files = {
        overlays / "staging" / "generated" / "workload.yaml": [
            staging_patch(settings, image, version)
        ],
        overlays / "production" / "generated" / "rollout.yaml": [rollout],
        overlays / "production" / "generated" / "analysis-templates.yaml": analysis_templates(
            settings, window_s
        ),
    }
    header = "# Written by `make k8s-render` from params.yaml and deploy/k8s/. Do not edit.\n"
    for path, docs in files.items():
        path.parent.mkdir(parents=True, exist_ok=True)
        text = header + yaml.safe_dump_all(docs, sort_keys=False, default_flow_style=False)
        tmp = path.with_suffix(".tmp")
        tmp.write_text(text, encoding="utf-8")
        os.replace(tmp, path)
    return list(files)


# --------------------------------------------------------------------------- kubectl


def kubectl(
    *args: str, capture: bool = False, check: bool = True
) -> subprocess.CompletedProcess[str]:
    """Run kubectl with `args`, echoing the command so a user can repeat it."""
    command = [os.environ.get("KUBECTL", "kubectl"), *args]
    print("+ " + " ".join(command), file=sys.stderr, flush=True)
    try:
        done = subprocess.run(command, text=True, capture_output=capture, check=False)
    except FileNotFoundError:
        raise K8sError(
            f"{command[0]} not found: install kubectl and the Argo Rollouts plugin"
        ) from None
    if check and done.returncode != 0:
        detail = (done.stderr or "").strip() if capture else ""
        raise K8sError(
            f"{' '.join(command)} exited {done.returncode}" + (f": {detail}" if detail else "")
        )
    return done


def live_version(kind: str, name: str, namespace: str) -> str | None:
    """The model version the cluster runs now (from the pod-template annotation), or None."""
    path = (
        "{.spec.template.metadata.annotations."
        + VERSION_ANNOTATION.replace(".", "\\.").replace("/", "\\/")
        + "}"
    )
    done = kubectl(
        "get",
        kind,
        name,
        "-n",
        namespace,
        "--ignore-not-found",
        "-o",
        f"jsonpath={path}",
        capture=True,
    )
    return done.stdout.strip() or None


def wait_rollout(app: str, namespace: str, timeout_s: int, check: bool = True) -> bool:
    """Wait until Argo Rollouts calls the rollout Healthy (True) or Degraded/timed out."""
    status = ("argo", "rollouts", "status", app, "-n", namespace, "--watch")
    done = kubectl(*status, "--timeout", f"{timeout_s}s", check=check)
    return done.returncode == 0


def _registry(model_name: str | None) -> Any:
    from ..registry import Registry

    return Registry(model_name)


def champion_version(model_name: str | None) -> str:
    """The registry's champion version; K8sError if there is none."""
    ref = _registry(model_name).get_alias("champion")
    if ref is None:
        raise K8sError("the registry has no champion: run `make repro` (or pass --model-version)")
    return ref.version


def restore_champion(model_name: str | None, previous: str, current: str) -> None:
    """Move `champion` back to what the cluster serves, if nobody moved it meanwhile."""
    registry = _registry(model_name)
    if registry.move_alias("champion", previous, expected=current):
        registry.append_log(
            {"event": "rollback", "target": "kubernetes", "from": current, "to": previous}
        )
        print(f"registry: champion moved back {current} -> {previous}", file=sys.stderr)
    else:
        print(f"registry: champion no longer {current}; left as it is", file=sys.stderr)


# --------------------------------------------------------------------------- commands


def _image(args: argparse.Namespace, settings: Settings) -> str:
    return args.image or os.environ.get("IMAGE") or str(settings.profile["image"])


def _render(args: argparse.Namespace, settings: Settings, version: str) -> None:
    for warning in weight_warnings(settings):
        print(f"warning: {warning}", file=sys.stderr)
    for path in render(settings, _image(args, settings), version):
        print(f"wrote {path}", file=sys.stderr)


def cmd_render(args: argparse.Namespace, settings: Settings) -> int:
    _render(args, settings, args.model_version or "")
    return 0


def cmd_deploy_staging(args: argparse.Namespace, settings: Settings) -> int:
    version = args.model_version or champion_version(args.model_name)
    _render(args, settings, version)
    overlay = settings.root / K8S_DIR / "overlays" / "staging"
    kubectl("apply", "-k", str(overlay))
    name = settings.deployment["metadata"]["name"]
    kubectl(
        "rollout",
        "status",
        f"deployment/{name}",
        "-n",
        settings.namespaces["staging"],
        f"--timeout={args.timeout}s",
    )
    print(f"staging runs model version {version}")
    return 0


def cmd_deploy_canary(args: argparse.Namespace, settings: Settings) -> int:
    namespace, app = settings.namespaces["production"], settings.app
    version = args.model_version or champion_version(args.model_name)
    previous = live_version("rollout", app, namespace)
    _render(args, settings, version)
    kubectl("apply", "-k", str(settings.root / K8S_DIR / "overlays" / "production"))
    if previous is None:
        print(f"first production deploy: version {version} starts without a canary")
    timeout = args.timeout or int(settings.profile.get("status_timeout_s", 1800))
    if wait_rollout(app, namespace, timeout, check=False):
        print(f"production runs model version {version}")
        return 0
    # Degraded (the analysis failed and Argo aborted) or timed out: make sure it is aborted,
    # point the spec back at the stable revision, and move the registry back with it.
    kubectl("argo", "rollouts", "abort", app, "-n", namespace)
    if previous is not None and previous != version:
        kubectl("argo", "rollouts", "undo", app, "-n", namespace)
        restore_champion(args.model_name, previous, version)
    print(f"canary of version {version} aborted; production stays on {previous}", file=sys.stderr)
    return 1


def cmd_rollback(args: argparse.Namespace, settings: Settings) -> int:
    namespace, app = settings.namespaces["production"], settings.app
    current = live_version("rollout", app, namespace)
    kubectl("argo", "rollouts", "abort", app, "-n", namespace)
    kubectl("argo", "rollouts", "undo", app, "-n", namespace)
    wait_rollout(app, namespace, args.timeout or 300)
    previous = live_version("rollout", app, namespace)
    if current and previous and previous != current:
        restore_champion(args.model_name, previous, current)
    print(f"production rolled back: {current} -> {previous}")
    return 0


def cmd_status(args: argparse.Namespace, settings: Settings) -> int:
    namespace, app = settings.namespaces["production"], settings.app
    kubectl("argo", "rollouts", "get", "rollout", app, "-n", namespace)
    status = {
        "production": live_version("rollout", app, namespace),
        "staging": live_version(
            "deployment", settings.deployment["metadata"]["name"], settings.namespaces["staging"]
        ),
    }
    print(json.dumps(status, indent=2))
    return 0


COMMANDS = {
    "render": cmd_render,
    "deploy-staging": cmd_deploy_staging,
    "deploy-canary": cmd_deploy_canary,
    "rollback": cmd_rollback,
    "status": cmd_status,
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="k8s", description=__doc__.splitlines()[0])
    parser.add_argument("action", choices=sorted(COMMANDS))
    parser.add_argument(
        "--model-version", help="registry version to deploy (default: the champion)"
    )
    parser.add_argument("--model-name", help="registered model name (default: the package name)")
    parser.add_argument("--image", help="container image (default: $IMAGE, else profile.yaml)")
    parser.add_argument("--timeout", type=int, default=0, help="seconds to wait for the cluster")
    parser.add_argument("--root", type=Path, default=Path("."), help="project directory")
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run one k8s action; exit 1 with a message on any delivery error."""
    args = build_parser().parse_args(argv)
    if args.action in ("deploy-staging", "rollback") and not args.timeout:
        args.timeout = 300
    try:
        settings = load_settings(args.root)
        return COMMANDS[args.action](args, settings)
    except K8sError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    raise SystemExit(main())
