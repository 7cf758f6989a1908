"""Local progressive delivery: staging, canary with automatic rollback, rollback, undeploy.

Every server is a process on loopback; a router in front of production holds the weights.
The state (`state.py`: typed, with explicit transitions) and an append-only event log live
under `.deploy/`; a file lock keeps deploys apart, and every command first finishes
whatever an interrupted one left half done. After each transition the registry's
`champion` and `previous` aliases are moved to what the processes serve.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import time
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from ..artifacts import write_json
from ..config import load_config
from ..errors import RefusedError, run_main
from ..registry import version_argument
from ..rollout.admin import AdminError, get_json
from . import procs
from .aliases import authorise
from .journal import DEPLOY_DIR, Journal
from .production import (
    Context,
    abort_rollout,
    ensure_production,
    finish_promotion,
    finish_rollback,
    recover,
)
from .progress import Progress
from .servers import (
    DeployError,
    routing,
    set_routes,
    wait_server,
)
from .state import DeployState, RolloutPlan, RouterProc, Server

BAD = {
    "errors": "errors=0.3",
    "slow": "slow=400",
    "crash": "crash,after=25",
    "never_ready": "never_ready",
}
CRASH_ENV = "DEPLOY_CRASH_AT"  # tests kill a command at a named point to prove recovery


def _crash_point(name: str) -> None:
    if os.environ.get(CRASH_ENV) == name:
        os._exit(9)


async def _drive(controller: Any, generator: Any) -> tuple[Any, Any]:
    stop = asyncio.Event()
    task = asyncio.create_task(generator.run(stop)) if generator is not None else None
    try:
        outcome = await controller.run()
    finally:
        stop.set()
        report = await task if task is not None else None
    return outcome, report


def _loadgen(ctx: Context, url: str) -> Any:
    from ..contract import load_contract
    from ..rollout.loadgen import LoadGenerator, traffic_rows

    contract_path = Path("contract.yaml")
    rows, source = traffic_rows(contract_path, load_contract(contract_path))
    ctx.console.print(f"traffic: {len(rows)} {source}", highlight=False)
    spec = ctx.rollout.loadgen
    return LoadGenerator(url, rows, spec.rps, spec.concurrency)


def cmd_canary(
    ctx: Context, version: str | None, fault: str | None, loadgen: bool, router_port: int | None
) -> int:
    """Roll the champion (or `version`) out behind the router; roll back on a failed verdict."""
    from ..rollout.controller import Controller

    with ctx.journal.locked("deploy canary"):
        state = recover(ctx, ctx.journal.state())
        registry = ctx.registry()
        champion = registry.get_alias("champion")
        if version is None and champion is None:
            raise RefusedError("no champion in the registry: run `dvc repro` first")
        canary_version = version or champion.version
        allowed, note = authorise(registry, canary_version, "deploy canary")
        if not allowed:
            raise RefusedError(str(note))
        if note:
            ctx.console.print(note, highlight=False)
        state = ensure_production(ctx, state, registry, router_port)
        assert state.stable is not None
        assert state.router is not None
        router = state.router  # the rollout below keeps this router; `state` is reassigned
        stable_version = state.stable.version
        plan = RolloutPlan(
            stable_version=stable_version,
            canary_version=canary_version,
            pid=os.getpid(),
            started=time.time(),
            fault=fault,
        )
        state = ctx.journal.save(state.begin_rollout(plan))
        ctx.journal.log({"event": "rollout_started", **plan.model_dump()})
        note = " (the same version as stable)" if canary_version == stable_version else ""
        ctx.console.print(f"canary v{canary_version} vs stable v{stable_version}{note}")
        canary = ctx.start("canary", canary_version, fault=fault)
        state = ctx.journal.save(state.with_canary(canary))
        _crash_point("canary:started")
        try:
            seconds = wait_server(canary, ctx.serve)
        except DeployError as error:
            abort_rollout(ctx, state, f"canary never became ready: {error}")
            ctx.console.print(f"[red]rolled back[/]: canary v{canary_version} never became ready")
            raise RefusedError(f"canary v{canary_version} never became ready: {error}") from None
        ctx.console.print(f"canary ready in {seconds:.1f} s")
        ctx.report_warnings(canary)
        progress = Progress(ctx.console)
        controller = Controller(
            ctx.rollout,
            router.admin_url,
            routing(state, {"stable": 100}),
            {"stable": stable_version, "canary": canary_version},
            lambda: procs.alive(canary),
            ctx.journal.log,
            progress,
        )
        use_loadgen = loadgen and ctx.rollout.loadgen.enabled
        generator = _loadgen(ctx, router.url) if use_loadgen else None
        try:
            with progress:
                outcome, report = asyncio.run(_drive(controller, generator))
        except KeyboardInterrupt:
            abort_rollout(ctx, state, "interrupted by the user")
            ctx.console.print("[red]interrupted: rolled back to stable[/]")
            return 130
        if report is not None:
            ctx.journal.log({"event": "loadgen", **report.as_dict()})
        if not outcome.promoted:
            abort_rollout(ctx, state, outcome.reason)
            took = f" in {outcome.switch_seconds:.3f} s" if outcome.switch_seconds else ""
            ctx.console.print(f"[red]rolled back{took}[/]: {outcome.reason}", highlight=False)
            ctx.console.print(f"stable v{stable_version} is serving")
            raise RefusedError(f"canary v{canary_version} rolled back: {outcome.reason}")
        message = finish_promotion(ctx, state, registry, champion.version if champion else None)
        ctx.console.print(f"[green]promoted[/]: v{canary_version} serves 100% ({message})")
        return 0


def cmd_rollback(ctx: Context) -> int:
    """Put production back on the N-1 version; print how long the switch took."""
    with ctx.journal.locked("deploy rollback"):
        state = ctx.journal.state()
        if state.phase in ("rollout", "rolling_back"):
            recover(ctx, state)
            ctx.console.print("done: stable is serving")
            return 0
        stable, previous = state.stable, state.previous
        if stable is None or not procs.alive(state.router):
            raise RefusedError("nothing is deployed: run `make deploy-canary` first")
        if previous is None:
            raise RefusedError(f"no N-1 version to roll back to (v{stable.version} is the first)")
        start = time.perf_counter()
        if not procs.alive(previous):
            ctx.console.print(f"v{previous.version} was not running: starting it")
            previous = ctx.start_ready("previous", previous.version)
        state = ctx.journal.save(state.begin_rollback(previous))
        assert state.rollback is not None
        assert state.router is not None
        set_routes(state.router, routing(state.rolled_back(), {"stable": 100}))
        switch = time.perf_counter() - start
        ctx.journal.log(
            {
                "event": "rollback",
                "from": stable.version,
                "to": previous.version,
                "switch_seconds": round(switch, 4),
            }
        )
        _crash_point("rollback:switched")
        state, message = finish_rollback(ctx, state)
        ctx.console.print(
            f"[green]rolled back[/] v{stable.version} -> v{previous.version}: "
            f"all traffic on v{previous.version} after {switch * 1000:.1f} ms; "
            f"N-1 is now v{stable.version}; {message}",
            highlight=False,
        )
        return 0


def cmd_staging(ctx: Context, version: str | None, port: int | None) -> int:
    """Serve the champion (or `version`) on the staging port and record golden rows."""
    from ..serve.loading import resolve
    from .golden import golden_rows

    with ctx.journal.locked("deploy staging"):
        state = ctx.journal.state()
        registry = ctx.registry()
        ref = resolve(registry, version or "champion")
        procs.stop(state.staging)
        port = ctx.serve.staging_port if port is None else port
        staging = ctx.start("staging", ref.version, port)
        ctx.journal.save(state.model_copy(update={"staging": staging}))
        seconds = wait_server(staging, ctx.serve)
        ctx.report_warnings(staging)
        write_json(ctx.journal.root / "golden.json", golden_rows(registry, ref))
        ctx.journal.log({"event": "staging", "version": ref.version, "url": staging.url})
        ctx.console.print(
            f"staging: v{ref.version} ready at {staging.url} in {seconds:.1f} s "
            f"(golden rows in {ctx.journal.root / 'golden.json'})",
            highlight=False,
        )
        return 0


def cmd_status(ctx: Context) -> int:
    """Show processes, versions, weights and the latest verdicts."""
    state = ctx.journal.state()
    weights: dict[str, int] = {}
    if state.router is not None and procs.alive(state.router):
        try:
            weights = get_json(state.router.admin_url + "/admin/config")["weights"]
        except AdminError:
            weights = {}
    table = Table(title=f"local delivery ({state.phase})")
    for column in ("role", "version", "url", "pid", "running", "weight"):
        table.add_column(column)
    records: dict[str, Server | RouterProc | None] = {role: s for role, s in state.servers.items()}
    records.update(staging=state.staging, router=state.router)
    for role, record in records.items():
        if record is None:
            continue
        running = "[green]yes[/]" if procs.alive(record) else "[red]no[/]"
        weight = f"{weights[role]}%" if role in weights else ""
        version = getattr(record, "version", "")
        table.add_row(role, version, record.url, str(record.pid), running, weight)
    ctx.console.print(table)
    if state.phase in ("rollout", "rolling_back"):
        ctx.console.print(
            "[yellow]a deploy was interrupted; the next deploy command (or `make rollback`) "
            "finishes it[/]"
        )
    interesting = ("analysis", "rollback", "rolled_back", "promotion_complete", "champion")
    for event in [e for e in ctx.journal.events() if e.get("event") in interesting][-6:]:
        stamp = time.strftime("%H:%M:%S", time.localtime(event["time"]))
        detail = event.get("reason") or event.get("version") or ""
        verdict = event.get("verdict", "")
        ctx.console.print(f"{stamp} {event['event']} {verdict} {detail}", highlight=False)
    return 0


def cmd_undeploy(ctx: Context) -> int:
    """Stop every process this tool started, by pid."""
    with ctx.journal.locked("deploy undeploy"):
        state = ctx.journal.state()
        records = [*state.servers.values(), state.staging, state.router]
        stopped = [f"{r.role} (pid {r.pid})" for r in records if r and procs.stop(r)]
        ctx.journal.save(DeployState())
        ctx.journal.log({"event": "undeploy", "stopped": stopped})
        ctx.console.print("stopped: " + (", ".join(stopped) or "nothing was running"))
        return 0


def build_parser() -> argparse.ArgumentParser:
    """Arguments of `deploy`."""
    parser = argparse.ArgumentParser(prog="deploy", description=__doc__.splitlines()[0])
    parser.add_argument("--params", type=Path, default=Path("params.yaml"))
    parser.add_argument("--registry", type=Path, default=Path("registry"))
    parser.add_argument("--model-name", default=None)
    parser.add_argument("--dir", type=Path, default=DEPLOY_DIR, help="state and event log")
    commands = parser.add_subparsers(dest="command", required=True)
    staging = commands.add_parser("staging", help="serve the champion on the staging port")
    staging.add_argument("--version", type=version_argument, default=None)
    staging.add_argument("--port", type=int, default=None, help="0 picks a free port")
    canary = commands.add_parser("canary", help="shadow, then 5 -> 25 -> 100 with rollback")
    canary.add_argument(
        "--version",
        type=version_argument,
        default=None,
        help="default: the champion; another version only if promote promoted it, or with "
        "a reason in PROMOTION_OVERRIDE (make deploy-canary VERSION=n OVERRIDE='why')",
    )
    canary.add_argument("--bad", choices=sorted(BAD), default=None, help="inject a fault")
    canary.add_argument("--fault", default=None, help="raw fault spec, e.g. errors=0.5,after=100")
    canary.add_argument("--no-loadgen", action="store_true", help="no generated traffic")
    canary.add_argument("--router-port", type=int, default=None, help="0 picks a free port")
    commands.add_parser("rollback", help="back to the N-1 version (or abort a rollout)")
    commands.add_parser("status", help="versions, weights, verdicts")
    commands.add_parser("undeploy", help="stop everything this tool started")
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run one deploy command; a refused or failed one raises its ExpectedError (errors.py)."""
    args = build_parser().parse_args(argv)
    console = Console(highlight=False, soft_wrap=True)
    config = load_config(args.params)
    ctx = Context(
        Journal(args.dir), config.rollout, config.serve, args.registry, args.model_name, console
    )
    if args.command == "staging":
        return cmd_staging(ctx, args.version, args.port)
    if args.command == "canary":
        fault = args.fault or (BAD[args.bad] if args.bad else None)
        return cmd_canary(ctx, args.version, fault, not args.no_loadgen, args.router_port)
    if args.command == "rollback":
        return cmd_rollback(ctx)
    if args.command == "status":
        return cmd_status(ctx)
    return cmd_undeploy(ctx)


if __name__ == "__main__":
    sys.exit(run_main("deploy", main, sys.argv[1:]))
