"""What production is on one machine, and the moves that keep it whole.

`Context` is what every deploy command works with (files, settings, registry, console).
`ensure_production` starts whatever of stable and the router is missing; `abort_rollout` and
`finish_rollback` complete a rollback from any point, `finish_promotion` a canary's promotion, and `recover` finishes what an
interrupted command left, so every command starts from a whole state.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rich.console import Console

from ..config import Rollout, Serve
from ..errors import RefusedError
from ..rollout.admin import AdminError
from . import procs
from .aliases import sync_aliases
from .journal import Journal
from .servers import (
    DeployError,
    routing,
    set_routes,
    start_router,
    start_server,
    startup_warnings,
    wait_server,
)
from .state import DeployState, Role, Server


@dataclass
class Context:
    """What every command needs: files, settings, the registry and the console."""

    journal: Journal
    rollout: Rollout
    serve: Serve
    registry_root: Path
    model_name: str | None
    console: Console

    def registry(self) -> Any:
        """The registry (imports MLflow, so only when needed)."""
        from ..registry import Registry

        return Registry(self.model_name, root=self.registry_root)

    def start(self, role: Role, version: str, port: int = 0, fault: str | None = None) -> Server:
        """Start a model server for `version` (not yet ready)."""
        registry = (self.registry_root, self.model_name)
        return start_server(self.journal.root, registry, role, version, port, fault)

    def start_ready(self, role: Role, version: str) -> Server:
        """Start a model server and wait until it is ready; stop it if it never is."""
        server = self.start(role, version)
        try:
            wait_server(server, self.serve)
        except DeployError:
            procs.stop(server)
            raise
        return server

    def report_warnings(self, server: Server) -> None:
        """Print what a ready server warned about at start, so a deploy says it."""
        for line in startup_warnings(server):
            self.console.print(
                f"{server.role} v{server.version}: {line}",
                style="yellow",
                markup=False,
                highlight=False,
                soft_wrap=True,
            )

    def route(self, state: DeployState, weights: dict[str, int]) -> None:
        """Give the running router the state's servers with `weights`."""
        assert state.router is not None
        set_routes(state.router, routing(state, weights))


def ensure_production(
    ctx: Context, state: DeployState, registry: Any, router_port: int | None
) -> DeployState:
    """Make sure a stable server and the router run; start or restart what is missing."""
    stable = state.stable
    if not procs.alive(stable):
        if stable is not None:
            version = stable.version
        else:
            ref = registry.get_alias("previous") or registry.get_alias("champion")
            if ref is None:
                raise RefusedError("no champion in the registry: run `dvc repro` first")
            version = ref.version
        ctx.console.print(f"starting stable v{version}")
        state = ctx.journal.save(state.with_stable(ctx.start_ready("stable", version)))
        ctx.journal.log({"event": "started", "role": "stable", "version": version})
    if state.previous is not None and not procs.alive(state.previous):
        state = state.without("previous")  # restarted on demand by a rollback
    if procs.alive(state.router):
        ctx.route(state, {"stable": 100})
    else:
        port = state.router.port if state.router else ctx.serve.router_port
        port = port if router_port is None else router_port
        router = start_router(ctx.journal.root, routing(state, {"stable": 100}), port, ctx.serve)
        state = state.model_copy(update={"router": router})
        ctx.journal.log({"event": "started", "role": "router", "url": router.url})
    return ctx.journal.save(state)


def abort_rollout(ctx: Context, state: DeployState, reason: str) -> DeployState:
    """Everything back on stable, the canary stopped, `champion` moved back; idempotent."""
    plan = state.rollout
    state, canary = state.aborted()
    if procs.alive(state.router):
        try:
            ctx.route(state, {"stable": 100})
        except AdminError as error:
            ctx.journal.log({"event": "router_unreachable", "error": str(error)})
    procs.stop(canary, grace_s=2.0)
    ctx.journal.save(state)
    message = ""
    if plan is not None and state.stable is not None:
        message = sync_aliases(ctx.registry(), ctx.journal, state, plan.canary_version, reason)
    ctx.journal.log({"event": "rolled_back", "reason": reason, "champion": message})
    return state


def finish_rollback(ctx: Context, state: DeployState) -> tuple[DeployState, str]:
    """Complete a rollback to N-1 from wherever it stopped."""
    assert state.rollback is not None
    source, target = state.rollback.source, state.rollback.target
    if not procs.alive(target):
        target = ctx.start_ready("stable", target.version)
        state = state.model_copy(
            update={"rollback": state.rollback.model_copy(update={"target": target})}
        )
    state = state.rolled_back()
    ctx.route(state, {"stable": 100})
    ctx.journal.save(state)
    message = sync_aliases(ctx.registry(), ctx.journal, state, source.version, "rollback to N-1")
    ctx.journal.log(
        {"event": "rollback_complete", "version": target.version, "previous": source.version}
    )
    return state, message


def recover(ctx: Context, state: DeployState) -> DeployState:
    """Finish what an interrupted command left: a rollout is rolled back, a rollback completed."""
    if state.phase == "rollout":
        ctx.console.print("[yellow]recovering an interrupted rollout: back to stable[/]")
        state = abort_rollout(ctx, state, "interrupted rollout recovered")
    elif state.phase == "rolling_back":
        ctx.console.print("[yellow]completing an interrupted rollback[/]")
        state, message = finish_rollback(ctx, state)
        ctx.console.print(message)
    return state


def finish_promotion(ctx: Context, state: DeployState, registry: Any, champion: str | None) -> str:
    """The canary becomes stable; N-1 stays warm for rollback (see `DeployState.promoted`)."""
    state, retired = state.promoted()
    ctx.route(state, {"stable": 100})  # before any process stops: nothing routes to it now
    ctx.journal.save(state)
    for server in retired:
        procs.stop(server)
    assert state.stable is not None
    version = state.stable.version
    ctx.journal.log({"event": "promotion_complete", "version": version})
    return sync_aliases(registry, ctx.journal, state, champion or version, "canary promoted")
