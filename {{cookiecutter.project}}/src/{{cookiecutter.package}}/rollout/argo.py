"""Argo Rollouts manifests from the rollout spec and the cluster profile: pure rendering.

`render` writes `deploy/k8s/overlays/*/generated/` from three inputs: the pod template in
`deploy/k8s/base/deployment.yaml`, the cluster settings in `deploy/k8s/profile.yaml` (typed
typed in `k8s_profile.py`), and the rollout spec that the local engine also runs. The steps and
AnalysisTemplates come from the same policy as the local verdicts (`render.py`). Talking to
a cluster is `deploy/kubernetes.py`'s job.
"""

from __future__ import annotations

import copy
import math
import os
from pathlib import Path
from typing import Any

import yaml

from .k8s_profile import (
    K8S_DIR,
    LOG_FLAG,
    LOG_VOLUME,
    VERSION_ANNOTATION,
    LogSettings,
    Settings,
)
from .render import Target, analysis_spec, step_timing

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
    if settings.profile.traffic_router != "none":
        return []
    replicas = settings.profile.replicas
    warnings = []
    for step in settings.rollout.steps:
        weight = float(step.weight)
        got = realised_weight(weight, replicas)
        if got != weight:
            warnings.append(
                f"weight {weight:g}% needs {replicas_needed(weight)} replicas without a traffic "
                f"router; with {replicas} Argo Rollouts sends about {got:g}% to the canary. "
                "Set traffic_router: nginx or smi in deploy/k8s/profile.yaml, or raise replicas."
            )
    return warnings


# --------------------------------------------------------------------------- analysis


def target(settings: Settings) -> Target:
    """Prometheus, the production namespace and the cluster's time scale, from the profile."""
    timing = settings.profile.timing
    return Target(
        settings.profile.prometheus.address,
        settings.namespaces["production"],
        timing.min_interval_s,
        timing.min_pause_s,
    )


def _judged(settings: Settings) -> list[Any]:
    return [s for s in settings.rollout.steps if s.weight < 100]


def health_template_name(settings: Settings, pause_s: float) -> str:
    """One canary-health template per step length (the looks differ), named by its window."""
    where = target(settings)
    timings = {step_timing(settings.rollout, where, s.pause_s) for s in _judged(settings)}
    name = f"{settings.app}-canary-health"
    if len(timings) == 1:
        return name
    return f"{name}-{step_timing(settings.rollout, where, pause_s)[2]}s"


HASH_ARGS = [{"name": "canary-hash"}, {"name": "stable-hash"}]


def full_weight_template_name(settings: Settings) -> str:
    """The template that judges the canary at 100% before Argo finishes the rollout."""
    return f"{settings.app}-canary-full"


def analysis_templates(settings: Settings) -> list[dict[str, Any]]:
    """The AnalysisTemplates: canary health per step length, and the shadow comparison."""
    templates: dict[str, dict[str, Any]] = {}
    for step in _judged(settings):
        name = health_template_name(settings, step.pause_s)
        _, found = analysis_spec(settings.rollout, target(settings), "canary", step.pause_s)
        templates[name] = _analysis_template(name, HASH_ARGS, found)
    full = settings.rollout.steps[-1]  # weight 100: judged once more, absolute checks only
    _, found = analysis_spec(settings.rollout, target(settings), "canary", full.pause_s, True)
    name = full_weight_template_name(settings)
    templates[name] = _analysis_template(name, HASH_ARGS, found)
    shadow = settings.rollout.shadow
    if shadow.enabled and shadow.duration_s > 0:
        name = f"{settings.app}-shadow-agreement"
        _, found = analysis_spec(settings.rollout, target(settings), "shadow", shadow.duration_s)
        templates[name] = _analysis_template(name, HASH_ARGS, found)
    return list(templates.values())


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
    template: dict[str, Any] = copy.deepcopy(settings.deployment["spec"]["template"])
    template.setdefault("metadata", {}).setdefault("annotations", {})[VERSION_ANNOTATION] = version
    container = template["spec"]["containers"][0]
    container["image"] = image
    for env in container.get("env", []):
        if env["name"] == "MODEL_VERSION":
            env["value"] = version
    container["args"] = server_args(container.get("args", []), settings.log)
    volume, mount = log_volume(settings.log)
    if volume:
        template["spec"].setdefault("volumes", []).append(volume)
        container.setdefault("volumeMounts", []).append(mount)
    return template


def server_args(args: list[str], log: LogSettings) -> list[str]:
    """The base Deployment's server arguments with the profile's prediction-log flags."""
    if LOG_FLAG in args:  # the base's own flag and its value give way to the profile's
        at = args.index(LOG_FLAG)
        args = args[:at] + args[at + 2 :]
    return [*args, *log.server_args]


def log_volume(log: LogSettings) -> tuple[dict[str, Any], dict[str, Any]]:
    """The volume and mount of a file log (empty dicts for stdout or off)."""
    if log.file is None or log.target != "file":
        return {}, {}
    volume = {"name": LOG_VOLUME, "emptyDir": {"sizeLimit": f"{log.file.volume_size_mb}M"}}
    return volume, {"name": LOG_VOLUME, "mountPath": log.file.directory}


def _hash_args() -> list[dict[str, Any]]:
    return [
        {"name": "canary-hash", "valueFrom": {"podTemplateHashValue": "Latest"}},
        {"name": "stable-hash", "valueFrom": {"podTemplateHashValue": "Stable"}},
    ]


def canary_steps(settings: Settings) -> list[dict[str, Any]]:
    """Argo canary steps for the shared spec: each weight judged by its looks (no bare pause)."""
    spec, app = settings.rollout, settings.app
    steps: list[dict[str, Any]] = []
    if spec.shadow.enabled and spec.shadow.duration_s > 0:
        # No duration: the experiment ends when its analysis completes. `serving: "false"`
        # keeps the shadow pods out of the client Service; stable pods mirror to the
        # experiment's Service.
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
                            "args": _hash_args(),
                        }
                    ],
                }
            }
        )
    for step in spec.steps:
        steps.append({"setWeight": step.weight})
        if step.weight >= 100:  # the last step: its own window, absolute checks only
            name = full_weight_template_name(settings)
            steps.append(
                {"analysis": {"templates": [{"templateName": name}], "args": _hash_args()}}
            )
            break
        name = health_template_name(settings, step.pause_s)
        steps.append({"analysis": {"templates": [{"templateName": name}], "args": _hash_args()}})
    return steps


def rollout_manifest(settings: Settings, image: str, version: str) -> dict[str, Any]:
    """The production Rollout (pod template from base, steps from params)."""
    app, profile = settings.app, settings.profile
    steps = canary_steps(settings)
    canary: dict[str, Any] = {
        "canaryService": f"{app}-canary",
        "stableService": f"{app}-stable",
        "canaryMetadata": {"labels": {"role": "canary"}},
        "stableMetadata": {"labels": {"role": "stable"}},
        "abortScaleDownDelaySeconds": 0,
        "steps": steps,
    }
    if profile.nginx is not None and profile.traffic_router == "nginx":
        canary["trafficRouting"] = {"nginx": {"stableIngress": profile.nginx.stable_ingress}}
        canary["dynamicStableScale"] = True
    elif profile.smi is not None and profile.traffic_router == "smi":
        canary["trafficRouting"] = {
            "smi": {"rootService": profile.smi.root_service, "trafficSplitName": app}
        }
        canary["dynamicStableScale"] = True
    base = settings.deployment["spec"]
    rollout = {
        "apiVersion": "argoproj.io/v1alpha1",
        "kind": "Rollout",
        "metadata": {"name": app, "labels": {"app": "model-server"}},
        "spec": {
            "replicas": profile.replicas,
            "revisionHistoryLimit": int(base.get("revisionHistoryLimit", 3)),
            "selector": copy.deepcopy(base["selector"]),
            "template": pod_template(settings, image, version),
            "strategy": {"canary": canary},
        },
    }
    return rollout


def staging_patch(settings: Settings, image: str, version: str) -> dict[str, Any]:
    """A strategic-merge patch that pins the staging Deployment's image, version and log."""
    base = settings.deployment["spec"]["template"]["spec"]["containers"][0]
    volume, mount = log_volume(settings.log)
    container: dict[str, Any] = {
        "name": "server",
        "image": image,
        "args": server_args(base.get("args", []), settings.log),
        "env": [{"name": "MODEL_VERSION", "value": version}],
    }
    pod: dict[str, Any] = {"containers": [container]}
    if volume:  # merged by name / mountPath with the base's own
        container["volumeMounts"] = [mount]
        pod["volumes"] = [volume]
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": settings.deployment["metadata"]["name"]},
        "spec": {
            "template": {
                "metadata": {"annotations": {VERSION_ANNOTATION: version}},
                "spec": pod,
            }
        },
    }


def render(settings: Settings, image: str, version: str) -> list[Path]:
    """Write every overlay's generated/ files; return their paths."""
    overlays = settings.root / K8S_DIR / "overlays"
    rollout = rollout_manifest(settings, image, version)
    files = {
        overlays / "staging" / "generated" / "workload.yaml": [
            staging_patch(settings, image, version)
        ],
        overlays / "production" / "generated" / "rollout.yaml": [rollout],
        overlays / "production" / "generated" / "analysis-templates.yaml": analysis_templates(
            settings
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
