"""Kubernetes delivery: thin wrappers over `kubectl` and the Argo Rollouts plugin.

`rollout/argo.py` renders the manifests; these commands apply them and let the engine judge
and roll back. After every outcome the registry's `champion` and `previous` describe what
the cluster serves: the Rollout's `ml-cicd/previous-version` annotation records the version
that served before the stable one (written when what serves changes), so an abort leaves N-1
where it was.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import RefusedError, ServiceError, run_main
from ..registry import version_argument
from ..rollout.argo import render, weight_warnings
from ..rollout.k8s_profile import K8S_DIR, VERSION_ANNOTATION, Settings, load_settings

if TYPE_CHECKING:
    from ..registry import Registry

PREVIOUS_ANNOTATION = "ml-cicd/previous-version"  # on the Rollout: what served before stable
REVISION_ANNOTATION = "rollout.argoproj.io/revision"  # on each ReplicaSet of a Rollout


class K8sError(ServiceError):
    """kubectl or the cluster did not do what delivery asked."""


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


def _live(kind: str, name: str, namespace: str) -> dict[str, Any] | None:
    """The object as the cluster has it, or None when there is none."""
    done = kubectl(
        "get", kind, name, "-n", namespace, "--ignore-not-found", "-o", "json", capture=True
    )
    if not done.stdout.strip():
        return None
    try:
        live: dict[str, Any] = json.loads(done.stdout)
    except json.JSONDecodeError:
        raise K8sError(f"kubectl get {kind} {name}: not JSON: {done.stdout[:200]!r}") from None
    return live


def _version_of(obj: dict[str, Any]) -> str | None:
    annotations = obj.get("spec", {}).get("template", {}).get("metadata", {}).get("annotations")
    return (annotations or {}).get(VERSION_ANNOTATION) or None


def live_version(kind: str, name: str, namespace: str) -> str | None:
    """The model version the cluster runs now (from the pod-template annotation), or None."""
    obj = _live(kind, name, namespace)
    return _version_of(obj) if obj is not None else None


@dataclass(frozen=True)
class Serving:
    """What production serves: the version, and the version that served before it (N-1)."""

    version: str
    previous: str | None


def live_serving(app: str, namespace: str) -> Serving | None:
    """The Rollout's version and recorded N-1, or None before the first deploy."""
    obj = _live("rollout", app, namespace)
    version = _version_of(obj) if obj is not None else None
    if obj is None or version is None:
        return None
    annotations = obj.get("metadata", {}).get("annotations") or {}
    return Serving(version, annotations.get(PREVIOUS_ANNOTATION) or None)


def revision_running(app: str, namespace: str, version: str) -> str | None:
    """The newest revision of the Rollout whose pod template runs `version`: Argo keeps one
    ReplicaSet per revision (up to `revisionHistoryLimit`), numbered by an annotation."""
    rollout = _live("rollout", app, namespace) or {}
    labels = rollout.get("spec", {}).get("selector", {}).get("matchLabels") or {}
    selector = ",".join(f"{key}={value}" for key, value in sorted(labels.items()))
    done = kubectl(
        "get", "replicasets", "-n", namespace, "-l", selector, "-o", "json", capture=True
    )
    try:
        items: list[dict[str, Any]] = json.loads(done.stdout or "{}").get("items", [])
    except json.JSONDecodeError:
        raise K8sError(f"kubectl get replicasets: not JSON: {done.stdout[:200]!r}") from None
    revisions = [
        int(annotations[REVISION_ANNOTATION])
        for item in items
        if _version_of(item) == version
        and REVISION_ANNOTATION in (annotations := item["metadata"].get("annotations") or {})
    ]
    return str(max(revisions)) if revisions else None


def record_previous(app: str, namespace: str, previous: str | None) -> None:
    """Write N-1 on the Rollout (metadata only: no new revision, kept by `kubectl apply`)."""
    if previous is not None:  # none only before a second version ever served
        annotation = f"{PREVIOUS_ANNOTATION}={previous}"
        kubectl("annotate", "rollout", app, "-n", namespace, "--overwrite", annotation)


def wait_rollout(app: str, namespace: str, timeout_s: int, check: bool = True) -> bool:
    """Wait until Argo Rollouts calls the rollout Healthy (True) or Degraded/timed out."""
    status = ("argo", "rollouts", "status", app, "-n", namespace, "--watch")
    done = kubectl(*status, "--timeout", f"{timeout_s}s", check=check)
    return done.returncode == 0


def _registry(model_name: str | None) -> Registry:
    from ..registry import Registry

    return Registry(model_name)


def champion_version(model_name: str | None) -> str:
    """The registry's champion version; RefusedError if there is none."""
    ref = _registry(model_name).get_alias("champion")
    if ref is None:
        raise RefusedError(
            "the registry has no champion: run `make repro` (or pass --model-version)"
        )
    return ref.version


def sync_registry(
    model_name: str | None, serving: Serving, champion_was: str | None, why: str
) -> str:
    """`champion` (compare-and-set from `champion_was`) and `previous` to what serves."""
    from .aliases import move_champion, move_previous

    registry = _registry(model_name)

    def log(event: dict[str, Any]) -> None:
        print(f"registry: {json.dumps(event)}", file=sys.stderr)

    message = move_champion(registry, log, champion_was, serving.version, why)
    move_previous(registry, log, serving.previous)
    return message


# --------------------------------------------------------------------------- commands


def _image(args: argparse.Namespace, settings: Settings) -> str:
    return args.image or os.environ.get("IMAGE") or settings.profile.image


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
    champion = _registry(args.model_name).get_alias("champion")
    from .aliases import authorise

    allowed, note = authorise(_registry(args.model_name), version, "k8s deploy-canary")
    if not allowed:  # never a version promote refused, unless an override (logged) says why
        raise K8sError(str(note))
    if note:
        print(note)
    before = live_serving(app, namespace)
    _render(args, settings, version)
    kubectl("apply", "-k", str(settings.root / K8S_DIR / "overlays" / "production"))
    if before is None:
        print(f"first production deploy: version {version} starts without a canary")
    timeout = args.timeout or settings.profile.status_timeout_s
    if wait_rollout(app, namespace, timeout, check=False):
        if before is not None and before.version == version:
            now = before  # a re-deploy of the serving version changes nothing
        else:
            now = Serving(version, before.version if before else None)  # stable becomes N-1
        record_previous(app, namespace, now.previous)
        was = champion.version if champion else None
        message = sync_registry(args.model_name, now, was, "canary promoted on Kubernetes")
        print(f"production runs model version {version} ({message})")
        return 0
    # Degraded (the analysis failed and Argo aborted) or timed out: make sure it is aborted,
    # point the spec back at the stable revision, and move the registry back with it.
    kubectl("argo", "rollouts", "abort", app, "-n", namespace)
    if before is not None and before.version != version:
        kubectl("argo", "rollouts", "undo", app, "-n", namespace)
        # stable serves and N-1 is unchanged; only a champion still on the aborted version moves
        message = sync_registry(args.model_name, before, version, "canary aborted on Kubernetes")
        print(f"registry: {message}", file=sys.stderr)
    where = before.version if before else "nothing"
    raise RefusedError(f"canary of version {version} aborted; production stays on {where}")


def cmd_rollback(args: argparse.Namespace, settings: Settings) -> int:
    namespace, app = settings.namespaces["production"], settings.app
    serving = live_serving(app, namespace)
    if serving is None or serving.previous is None:
        raise RefusedError(
            f"no N-1 recorded on rollout/{app} ({PREVIOUS_ANNOTATION}): nothing to roll back to"
        )
    current = serving.version
    # to the revision of the version that served before, by number: a plain `undo` goes to the
    # revision before the newest, which after an aborted canary is that canary
    revision = revision_running(app, namespace, serving.previous)
    if revision is None:
        raise RefusedError(
            f"no revision of rollout/{app} runs version {serving.previous} any more (older than "
            f"revisionHistoryLimit): deploy it with `make deploy-canary VERSION={serving.previous}`"
        )
    kubectl("argo", "rollouts", "abort", app, "-n", namespace)
    kubectl("argo", "rollouts", "undo", app, "-n", namespace, "--to-revision", revision)
    wait_rollout(app, namespace, args.timeout or 300)
    target = live_version("rollout", app, namespace)
    if current and target and target != current:
        # the version rolled back from is N-1 now: a second rollback undoes the first
        record_previous(app, namespace, current)
        message = sync_registry(
            args.model_name, Serving(target, current), current, "rollback on Kubernetes"
        )
        print(f"registry: {message}", file=sys.stderr)
    print(f"production rolled back: {current} -> {target}")
    return 0


def cmd_status(args: argparse.Namespace, settings: Settings) -> int:
    namespace, app = settings.namespaces["production"], settings.app
    kubectl("argo", "rollouts", "get", "rollout", app, "-n", namespace)
    serving = live_serving(app, namespace)
    status = {
        "production": serving.version if serving else None,
        "previous": serving.previous if serving else None,
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
        "--model-version",
        type=version_argument,
        help="registry version to deploy (default: the champion)",
    )
    parser.add_argument("--model-name", help="registered model name (default: the package name)")
    parser.add_argument("--image", help="container image (default: $IMAGE, else profile.yaml)")
    parser.add_argument("--timeout", type=int, default=0, help="seconds to wait for the cluster")
    parser.add_argument("--root", type=Path, default=Path("."), help="project directory")
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run one k8s action; a refused or failed one raises its ExpectedError (errors.py)."""
    args = build_parser().parse_args(argv)
    if args.action in ("deploy-staging", "rollback") and not args.timeout:
        args.timeout = 300
    return COMMANDS[args.action](args, load_settings(args.root))


if __name__ == "__main__":
    raise SystemExit(run_main("k8s", main, sys.argv[1:]))
