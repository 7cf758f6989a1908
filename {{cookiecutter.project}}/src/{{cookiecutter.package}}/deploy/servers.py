"""Start and wait for the local processes (model servers, the router) and give the router routes."""

from __future__ import annotations

import socket
from pathlib import Path
from typing import Any

from ..artifacts import write_json
from ..config import Serve
from ..errors import ServiceError
from ..rollout.admin import AdminError, free_port, put_json, wait_ready
from . import procs
from .state import DeployState, Role, RouterProc, Server

HOST = "127.0.0.1"


class DeployError(ServiceError):
    """A deploy step cannot be done; the message says what to do."""


def log_tail(log: str, lines: int = 8) -> str:
    """The last lines of a process's log, indented, for an error message."""
    try:
        text = Path(log).read_text(encoding="utf-8", errors="replace")
    except OSError:
        return ""
    return "\n".join("    " + line for line in text.strip().splitlines()[-lines:])


def startup_warnings(server: Server) -> list[str]:
    """What a server warned about when it started (e.g. why single rows are slower)."""
    try:
        text = Path(server.log).read_text(encoding="utf-8", errors="replace")
    except OSError:
        return []
    prefix = "serve: warning: "
    return [line[len(prefix) :] for line in text.splitlines() if line.startswith(prefix)]


def port_for(port: int, setting: str) -> int:
    """`port`, or any free port for 0. A fixed port something already listens on is an error:
    readiness checks would reach that other server and take it for ours."""
    if not port:
        return free_port(HOST)
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        if sock.connect_ex((HOST, port)) == 0:
            raise DeployError(
                f"port {port} on {HOST} is already in use by another process: stop it, or set "
                f"params.yaml: serve.{setting} to another port (0: any free port)"
            )
    return port


def start_server(
    root: Path,
    registry: tuple[Path, str | None],
    role: Role,
    version: str,
    port: int = 0,
    fault: str | None = None,
) -> Server:
    """Start a model server for `version` on `port` (0: any free port)."""
    port = port_for(port, "staging_port" if role == "staging" else "port")
    registry_root, model_name = registry
    args = ["--version", version, "--host", HOST, "--port", str(port), "--variant", role]
    args += ["--registry", str(registry_root)]
    if model_name:
        args += ["--model-name", model_name]
    module = "serve.app"
    if fault:  # the test harness wraps the production server; serve.app has no fault path
        module, args = "testing.faults", ["--fault", fault, *args]
    record = procs.start(module, args, root / "logs" / f"{role}-v{version}.log")
    return Server(**record, role=role, version=version, port=port, url=f"http://{HOST}:{port}")


def wait_server(server: Server, settings: Serve, timeout_s: float | None = None) -> float:
    """Wait for /readyz; DeployError with the server's last log lines if it never is."""
    try:
        return wait_ready(
            server.url, timeout_s or settings.ready_timeout_s, lambda: procs.alive(server)
        )
    except AdminError as error:
        raise DeployError(
            f"{server.role} v{server.version}: {error}\n{log_tail(server.log)}"
        ) from None


def routing(state: DeployState, weights: dict[str, int]) -> dict[str, Any]:
    """The router config for the state's servers with `weights` (missing roles get 0)."""
    upstreams = {
        role: {"url": s.url, "version": s.version}
        for role, s in state.servers.items()
        if role in ("stable", "canary", "previous")
    }
    return {
        "upstreams": upstreams,
        "weights": {role: int(weights.get(role, 0)) for role in upstreams},
        "shadow": None,
    }


def start_router(root: Path, config: dict[str, Any], port: int, settings: Serve) -> RouterProc:
    """Start the router with `config` on `port` (0: any free port) and wait for it."""
    port = port_for(port, "router_port")
    admin_port = free_port(HOST)
    path = root / "router.json"
    write_json(path, config)
    args = ["--config", str(path), "--host", HOST, "--port", str(port)]
    args += ["--admin-port", str(admin_port), "--max-body-bytes", str(settings.max_body_bytes)]
    record = procs.start("rollout.router", args, root / "logs" / "router.log")
    router = RouterProc(
        **record, port=port, url=f"http://{HOST}:{port}", admin_url=f"http://{HOST}:{admin_port}"
    )
    try:
        wait_ready(router.url, 20, lambda: procs.alive(router), path="/healthz")
    except AdminError as error:
        procs.stop(router)
        raise DeployError(f"router: {error}\n{log_tail(router.log)}") from None
    return router


def set_routes(router: RouterProc, config: dict[str, Any]) -> None:
    """Give the running router a new config (through its loopback admin port)."""
    put_json(router.admin_url + "/admin/config", config)
