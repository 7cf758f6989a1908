"""The server as the image and the manifest run it: Dockerfile modes, uid 10001, manifest args.

No container runtime is needed: the bundle is copied with the owner and modes the
Dockerfile's COPY gives it, the server runs as the image's user (`setpriv`), and its command
line and environment are read from the Dockerfile and the rendered pod template (the
Rollout's in a Kubernetes project), not retyped. Each pod gets its own loopback address,
standing in for its pod IP, so two pods can both listen on the container port.
"""

from __future__ import annotations

import http.client
import json
import os
import random
import re
import shlex
import shutil
import socket
import stat
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import yaml

from {{ cookiecutter.package }}.registry import Registry
from {{ cookiecutter.package }}.serve.bundle import export
from {{ cookiecutter.package }}.serve.loading import ServeStartError
from tests.delivery.conftest import MODEL_NAME, PROJECT, SRC

pytestmark = [pytest.mark.slow, pytest.mark.filterwarnings("ignore::DeprecationWarning")]
PACKAGE = "{{ cookiecutter.package }}"
UID = GID = 10001
POD_LOGS: dict[int, Path] = {}  # process id -> the file its output goes to


def dockerfile() -> list[tuple[str, str]]:
    """(instruction, rest) of the Dockerfile's runtime stage, continuation lines joined."""
    text = (PROJECT / "Dockerfile").read_text(encoding="utf-8").replace("\\\n", " ")
    stage = text.split(" AS runtime", 1)[1]
    lines = [line.strip() for line in stage.splitlines()]
    return [tuple(line.split(None, 1)) for line in lines if line and not line.startswith("#")]  # type: ignore[misc]


def copy_flags(destination: str) -> dict[str, str]:
    """The --chown/--chmod of the COPY that writes `destination`."""
    for instruction, rest in dockerfile():
        words = shlex.split(rest)
        if instruction == "COPY" and words[-1] == destination:
            return dict(w[2:].split("=", 1) for w in words if w.startswith("--"))
    raise AssertionError(f"no COPY to {destination} in the Dockerfile")


def symbolic_mode(spec: str, is_dir: bool) -> int:
    """The mode `COPY --chmod=u=rwX,g=rX,o=` gives a file or directory (`=` clauses only)."""
    mode = 0
    for clause in spec.split(","):
        who, _, perms = clause.partition("=")
        assert who, spec
        assert set(who) <= set("ugoa"), spec
        assert set(perms) <= set("rwxX"), spec
        bits = sum({"r": 4, "w": 2, "x": 1, "X": 1 if is_dir else 0}[p] for p in perms)
        for person in "ugo" if "a" in who else who:
            mode |= bits << {"u": 6, "g": 3, "o": 0}[person]
    return mode


def copy_like_docker(source: Path, target: Path, flags: dict[str, str]) -> None:
    """Copy a tree and give every entry the owner and mode the COPY flags say."""
    shutil.copytree(source, target)
    owner, _, group = flags["chown"].partition(":")
    uid = 0 if owner == "root" else int(owner)
    gid = 0 if group == "root" else int(group)
    for path in [target, *target.rglob("*")]:
        os.chown(path, uid, gid)
        os.chmod(path, symbolic_mode(flags["chmod"], path.is_dir()))


def image_env() -> dict[str, str]:
    """The runtime stage's ENV (KEY=VALUE pairs)."""
    env: dict[str, str] = {}
    for instruction, rest in dockerfile():
        if instruction == "ENV":
            env.update(pair.split("=", 1) for pair in shlex.split(rest))
    return env


def entrypoint_and_cmd() -> tuple[list[str], list[str]]:
    found = {i: json.loads(rest) for i, rest in dockerfile() if i in ("ENTRYPOINT", "CMD")}
    return found["ENTRYPOINT"], found["CMD"]


def pod_container(version: str) -> tuple[dict[str, Any], dict[str, str]]:
    """The server container and the pod labels: the rendered Rollout's, else the image's."""
    if not (PROJECT / "deploy" / "k8s").is_dir():
        _, cmd = entrypoint_and_cmd()
        return {"args": cmd, "env": []}, {"role": "stable"}
    from {{ cookiecutter.package }}.rollout import argo, k8s_profile

    settings = k8s_profile.load_settings(PROJECT)
    rollout = argo.rollout_manifest(settings, "model-server:test", version)
    rendered = yaml.safe_load(yaml.safe_dump(rollout))  # exactly what the YAML file says
    template = rendered["spec"]["template"]
    return template["spec"]["containers"][0], template["metadata"]["labels"]


def resolve_env(container: dict[str, Any], labels: dict[str, str]) -> dict[str, str]:
    """Env as the kubelet sets it: values, and `metadata.labels['x']` field references."""
    env = {}
    for item in container.get("env", []):
        if "value" in item:
            env[item["name"]] = item["value"]
        else:
            path = item["valueFrom"]["fieldRef"]["fieldPath"]
            match = re.fullmatch(r"metadata\.labels\['(.+)'\]", path)
            assert match, f"unsupported fieldRef {path}"
            env[item["name"]] = labels[match[1]]
    return env


def expand(args: list[str], env: dict[str, str]) -> list[str]:
    """Kubernetes' $(VAR) expansion in args."""
    return [re.sub(r"\$\((\w+)\)", lambda m: env.get(m[1], m[0]), a) for a in args]


@pytest.fixture
def root_only() -> None:
    if os.geteuid() != 0 or shutil.which("setpriv") is None:
        pytest.skip("needs root and setpriv (util-linux) to run the server as uid 10001")


@pytest.fixture
def app_dir(base_project: Path, root_only: None) -> Iterator[Path]:
    """/app as the image lays it out: package, contract, params and bundles, Dockerfile modes."""
    app = Path(tempfile.mkdtemp(prefix="image-app-"))
    os.chmod(app, 0o755)
    registry = Registry(MODEL_NAME, root=base_project / "registry")
    export(registry, app / "build-bundles")  # what `make bundle` writes
    site = app / "site"
    shutil.copytree(SRC / PACKAGE, site / PACKAGE)  # pip install . in the image: world-readable
    for path in [site, *site.rglob("*")]:
        os.chmod(path, 0o755 if path.is_dir() else 0o644)
    files = app / "files"
    files.mkdir()
    shutil.copy(base_project / "contract.yaml", files / "contract.yaml")
    shutil.copy(base_project / "params.yaml", files / "params.yaml")
    root = app / "root"
    copy_like_docker(files, root, copy_flags("./"))
    copy_like_docker(app / "build-bundles", root / "bundles", copy_flags("bundles/"))
    os.chmod(root, 0o755)
    yield app
    shutil.rmtree(app, ignore_errors=True)


def start_pod(app: Path, name: str, args: list[str], env: dict[str, str]) -> subprocess.Popen[str]:
    """Run the image's entrypoint with `args` as uid/gid 10001 in the image's working dir."""
    entrypoint, _ = entrypoint_and_cmd()
    assert entrypoint[:2] == ["python", "-m"]
    full_env = {**image_env(), **env, "PYTHONPATH": str(app / "site"), "HOME": str(app / "root")}
    full_env["PATH"] = f"{Path(sys.executable).parent}:/usr/bin:/bin"
    command = ["setpriv", f"--reuid={UID}", f"--regid={GID}", "--clear-groups"]
    with (app / f"{name}.log").open("w") as log:  # the child keeps its own copy of the fd
        process = subprocess.Popen(
            [*command, sys.executable, "-m", PACKAGE, *args],
            cwd=app / "root",
            env=full_env,
            stdout=log,
            stderr=subprocess.STDOUT,
            text=True,
        )
    POD_LOGS[process.pid] = app / f"{name}.log"
    return process


def pod_log(process: subprocess.Popen[str]) -> str:
    """The end of what a pod printed, for a failure message."""
    return POD_LOGS[process.pid].read_text(errors="replace")[-3000:]


def request(url: str, method: str = "GET", body: Any = None) -> tuple[int, bytes]:
    parts = urlsplit(url)
    connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=5)
    try:
        payload = None if body is None else json.dumps(body)
        connection.request(method, parts.path, payload, {"content-type": "application/json"})
        response = connection.getresponse()
        return response.status, response.read()
    finally:
        connection.close()


def wait_probe(url: str, process: subprocess.Popen[str], timeout_s: float = 60) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        assert process.poll() is None, f"the server exited:\n{pod_log(process)}"
        try:
            if request(url)[0] == 200:
                return
        except OSError:
            pass
        time.sleep(0.1)
    raise AssertionError(f"{url} never answered 200")


def pod_args(container: dict[str, Any], env: dict[str, str], pod_ip: str) -> list[str]:
    args = expand(container["args"], env)
    # the pod listens on every interface (0.0.0.0); here, on its own loopback address
    return [pod_ip if a == "0.0.0.0" else a for a in args]


def port_of(args: list[str]) -> int:
    return int(args[args.index("--port") + 1])


def free_pod_ips(port: int) -> dict[str, str]:
    """Two loopback addresses (stable, shadow pods) on which the container port is free.

    The manifest fixes the port, so pods on one machine differ by address, as pod IPs do;
    a random 127.x.y.0/24 keeps this test clear of another project's running beside it.
    """
    rng = random.SystemRandom()
    for _ in range(50):
        prefix = f"127.{rng.randint(1, 254)}.{rng.randint(1, 254)}"
        ips = {"stable": f"{prefix}.2", "shadow": f"{prefix}.3"}
        try:
            for ip in ips.values():
                with socket.socket() as probe:
                    probe.bind((ip, port))
        except OSError:
            continue
        return ips
    raise AssertionError(f"no loopback /24 has port {port} free on two addresses")


def test_the_image_serves_as_uid_10001_with_the_manifest_args(app_dir: Path, base_project: Path):
    """Readiness, predictions, shadow comparisons and metrics, as the pod would run."""
    from {{ cookiecutter.package }}.contract import load_contract
    from {{ cookiecutter.package }}.rollout.loadgen import holdout_rows

    container, labels = pod_container("2")
    env = resolve_env(container, labels)
    port = port_of(pod_args(container, env, "0.0.0.0"))
    pod_ips = free_pod_ips(port)
    stable_args = pod_args(container, env, pod_ips["stable"])
    processes = []
    try:
        if "SHADOW_URL" in env:
            shadow_url = urlsplit(env["SHADOW_URL"])
            assert shadow_url.path in ("", "/"), "SHADOW_URL is a base URL: /predict is added"
            assert shadow_url.port == port, "an experiment Service exposes the container port"
            shadow_env = {**env, "VARIANT": "canary"}
            shadow_env.pop("SHADOW_URL")
            shadow_args = pod_args(container, shadow_env, pod_ips["shadow"])
            processes.append(start_pod(app_dir, "shadow", shadow_args, shadow_env))
            wait_probe(f"http://{pod_ips['shadow']}:{port}/readyz", processes[-1])
            # the Service name resolves to the shadow pod
            env = {**env, "SHADOW_URL": f"http://{pod_ips['shadow']}:{shadow_url.port}"}
        processes.append(start_pod(app_dir, "stable", stable_args, env))
        base = f"http://{pod_ips['stable']}:{port}"
        wait_probe(base + "/readyz", processes[-1])
        rows = holdout_rows(
            base_project / "data" / "holdout.parquet",
            load_contract(base_project / "contract.yaml"),
            60,
        )
        for row in rows:
            status, body = request(base + "/predict", "POST", row)
            assert status == 200, body
            assert json.loads(body)["model_version"] == "2"
        time.sleep(1.0)  # shadow copies are asynchronous
        metrics = request(base + "/metrics")[1].decode()
        assert re.search(r'model_requests_total\{[^}]*outcome="ok"[^}]*\} 60\.0', metrics), metrics
        if "SHADOW_URL" in env:
            agree = re.search(r'shadow_comparisons_total\{outcome="agree"\} (\d+)', metrics)
            assert agree, metrics
            assert int(agree[1]) >= 50, metrics
    finally:
        for process in processes:
            process.terminate()
            process.wait(timeout=15)


def test_an_unreadable_bundle_file_is_a_clear_error_at_start(app_dir: Path):
    """A plain copy of `make bundle` output (0600, root-owned) stops the server with a reason."""
    bundles = app_dir / "root" / "bundles"
    shutil.rmtree(bundles)
    shutil.copytree(app_dir / "build-bundles", bundles)
    for path in [bundles, *bundles.rglob("*")]:
        os.chown(path, 0, 0)
        if path.is_file():
            os.chmod(path, stat.S_IRUSR | stat.S_IWUSR)
    _, cmd = entrypoint_and_cmd()
    process = start_pod(app_dir, "unreadable", cmd, {})
    assert process.wait(timeout=60) == ServeStartError.exit_code, pod_log(process)
    output = (app_dir / "unreadable.log").read_text()
    assert "not readable by uid 10001" in output, output
    assert "Traceback" not in output


# What python:3.x-slim-bookworm holds besides Debian's minimal base (Essential packages and
# apt, with their dependencies): the runtime libraries of Python's own extension modules and
# the three packages its Dockerfile installs (docker-library/python, slim-bookworm).
PYTHON_IMAGE_PACKAGES = {
    "ca-certificates", "netbase", "tzdata", "libbz2-1.0", "libexpat1", "libffi8", "libgdbm6",
    "libncursesw6", "libnsl2", "libreadline8", "libsqlite3-0", "libssl3", "libtirpc3",
    "libuuid1", "liblzma5", "zlib1g", "libdb5.3",
}  # fmt: skip


def debian_base_packages() -> set[str]:
    """Essential packages and apt, closed over their dependencies, as installed here."""
    lines = subprocess.run(
        ["dpkg-query", "-W", "-f", "${Package}\t${Essential}\t${Pre-Depends}, ${Depends}\n"],
        capture_output=True, text=True, check=True,
    ).stdout.splitlines()  # fmt: skip
    depends, todo = {}, ["apt"]
    for line in lines:
        name, essential, needs = line.split("\t")
        alternatives = [part.split("|")[0] for part in needs.split(",") if part.strip()]
        depends[name] = {re.split(r"[\s:(]", a.strip())[0] for a in alternatives}
        if essential == "yes":
            todo.append(name)
    seen: set[str] = set()
    while todo:
        name = todo.pop()
        if name not in seen:
            seen.add(name)
            todo.extend(depends.get(name, ()))
    return seen


def system_libraries_needed() -> dict[str, set[str]]:
    """Debian package -> the serving packages' shared objects that load a library from it."""
    from importlib.metadata import PackageNotFoundError, distribution

    serve = (PROJECT / "requirements" / "serve.txt").read_text()
    users: dict[str, set[str]] = {}  # system library path -> "distribution: object"
    for name in re.findall(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==", serve, re.M):
        try:
            files = distribution(name).files or []
        except PackageNotFoundError:  # a platform marker left it out here
            continue
        objects = [Path(str(f.locate())) for f in files if ".so" in Path(str(f)).name]
        objects = [path for path in objects if path.is_file()]
        bundled = {path.name for path in objects}  # a wheel's own copies (auditwheel's .libs)
        if not objects:
            continue
        listing = subprocess.run(["ldd", *map(str, objects)], capture_output=True, text=True)
        current = str(objects[0])  # ldd names each file only when given several
        for line in listing.stdout.splitlines():
            if not line.startswith(("\t", " ")):
                current = line.rstrip(":")
                continue
            found = re.match(r"\s*(\S+) => (\S+)", line)
            if found is None:
                continue
            library, target = found.groups()
            if target == "not":  # a bundled library finds its siblings through its user's rpath
                assert library in bundled, f"{current} needs {library}, not installed here"
            elif target.startswith(("/lib", "/usr/lib")):
                user = f"{name}: {Path(current).name}"
                users.setdefault(str(Path(target).resolve()), set()).add(user)
    # dpkg knows each file under the name its package ships it as: /lib or /usr/lib (usrmerge)
    names = {alias: path for path in users for alias in (path, path.replace("/usr/lib/", "/lib/"))}
    owners = subprocess.run(["dpkg", "-S", *names], capture_output=True, text=True).stdout
    needed: dict[str, set[str]] = {}
    owned = set()
    for line in owners.splitlines():
        packages, _, alias = line.partition(": ")
        if alias in names:
            owned.add(names[alias])
            for package in packages.split(", "):
                needed.setdefault(package.split(":")[0], set()).update(users[names[alias]])
    assert owned == set(users), f"no Debian package owns {sorted(set(users) - owned)}"
    return needed


def test_the_image_installs_every_system_library_the_served_packages_link():
    """A wheel that links a system library the slim base lacks (LightGBM: libgomp.so.1) finds
    it in the image: it is in the base, or the runtime stage installs it (SYSTEM_PACKAGES)."""
    if shutil.which("dpkg-query") is None or shutil.which("ldd") is None:
        pytest.skip("needs a Debian system (dpkg, ldd) to map shared libraries to packages")
    runtime = dict(dockerfile())
    declared = re.fullmatch(r'SYSTEM_PACKAGES="([^"]*)"', runtime.get("ARG", ""))
    assert declared, 'the runtime stage declares ARG SYSTEM_PACKAGES="..."'
    installs = set(declared[1].split())
    assert any(i == "RUN" and "${SYSTEM_PACKAGES}" in rest for i, rest in dockerfile())
    available = debian_base_packages() | PYTHON_IMAGE_PACKAGES | installs
    missing = {
        pkg: users for pkg, users in system_libraries_needed().items() if pkg not in available
    }
    assert not missing, (
        f"add to the Dockerfile's SYSTEM_PACKAGES: {sorted(missing)} (needed by {missing})"
    )
    for package in installs:  # each name is a real Debian package (installed here to be read)
        known = subprocess.run(["dpkg-query", "-W", package], capture_output=True, text=True)
        assert known.returncode == 0, f"SYSTEM_PACKAGES: {package} is not a Debian package here"
