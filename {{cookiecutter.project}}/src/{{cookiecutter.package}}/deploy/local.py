"""Local progressive delivery: staging, canary with automatic rollback, rollback, undeploy.

Every server is a process on loopback; a router in front of production holds the weights.
State and an append-only event log live under `.deploy/`; a file lock keeps deploys apart,
and every command first finishes whatever an interrupted one left half done.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from ..artifacts import write_json
from ..rollout.admin import AdminError, free_port, get_json, put_json, wait_ready
from ..rollout.spec import Rollout, Serve, SpecError, load_specs
from . import procs
from .journal import DEPLOY_DIR, DeployBusy, Journal

HOST = "127.0.0.1"
BAD = {
    "errors": "errors=0.3",
    "slow": "slow=400",
    "crash": "crash,after=25",
    "never_ready": "never_ready",
}
CRASH_ENV = "DEPLOY_CRASH_AT"  # tests kill a command at a named point to prove recovery


class DeployError(RuntimeError):
    """A deploy step cannot be done; the message says what to do."""


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


def _crash_point(name: str) -> None:
    if os.environ.get(CRASH_ENV) == name:
        os._exit(9)


def _log_tail(record: dict[str, Any], lines: int = 8) -> str:
    try:
        text = Path(record["log"]).read_text(encoding="utf-8", errors="replace")
    except OSError:
        return ""
    return "\n".join("    " + line for line in text.strip().splitlines()[-lines:])


def start_server(
    ctx: Context, role: str, version: str, port: int = 0, fault: str | None = None
) -> dict[str, Any]:
    """Start a model server for `version` on `port` (0: any free port)."""
    port = port or free_port(HOST)
    args = ["--version", version, "--host", HOST, "--port", str(port), "--variant", role]
    args += ["--registry", str(ctx.registry_root)]
    if ctx.model_name:
        args += ["--model-name", ctx.model_name]
    if fault:
        args += ["--fault", fault, "--allow-faults"]
    log = ctx.journal.root / "logs" / f"{role}-v{version}.log"
    record = procs.start("serve.app", args, log)
    return {
        **record,
        "role": role,
        "version": version,
        "port": port,
        "url": f"http://{HOST}:{port}",
    }


def wait_server(ctx: Context, record: dict[str, Any], timeout_s: float | None = None) -> float:
    """Wait for /readyz; DeployError with the server's last log lines if it never is."""
    try:
        return wait_ready(
            record["url"], timeout_s or ctx.serve.ready_timeout_s, lambda: procs.alive(record)
        )
    except AdminError as error:
        tail = _log_tail(record)
        raise DeployError(f"{record['role']} v{record['version']}: {error}\n{tail}") from None


def routing(servers: dict[str, dict[str, Any]], weights: dict[str, int]) -> dict[str, Any]:
    """A router config for `servers` (role -> record) with `weights` (missing roles get 0)."""
    upstreams = {
        role: {"url": r["url"], "version": r["version"]}
        for role, r in servers.items()
        if role in ("stable", "canary", "previous")
    }
    return {
        "upstreams": upstreams,
        "weights": {role: int(weights.get(role, 0)) for role in upstreams},
        "shadow": None,
    }


def start_router(ctx: Context, config: dict[str, Any], port: int) -> dict[str, Any]:
    """Start the router with `config` on `port` (0: any free port) and wait for it."""
    port = port or free_port(HOST)
    path = ctx.journal.root / "router.json"
    write_json(path, config)
    args = ["--config", str(path), "--host", HOST, "--port", str(port)]
    args += ["--max-body-bytes", str(ctx.serve.max_body_bytes)]
    record = procs.start("rollout.router", args, ctx.journal.root / "logs" / "router.log")
    record = {**record, "role": "router", "port": port, "url": f"http://{HOST}:{port}"}
    try:
        wait_ready(record["url"], 20, lambda: procs.alive(record), path="/healthz")
    except AdminError as error:
        procs.stop(record)
        raise DeployError(f"router: {error}\n{_log_tail(record)}") from None
    return record


def set_routes(state: dict[str, Any], config: dict[str, Any]) -> None:
    """Give the running router a new config."""
    put_json(state["router"]["url"] + "/admin/config", config)


def ensure_production(
    ctx: Context, state: dict[str, Any], registry: Any, router_port: int | None
) -> dict[str, Any]:
    """Make sure a stable server and the router run; start or restart what is missing."""
    servers = state.setdefault("servers", {})
    stable = servers.get("stable")
    if not procs.alive(stable):
        version = stable["version"] if stable else state.get("production_version")
        if version is None:
            ref = registry.get_alias("previous") or registry.get_alias("champion")
            if ref is None:
                raise DeployError("no champion in the registry: run `dvc repro` first")
            version = ref.version
        ctx.console.print(f"starting stable v{version}")
        stable = start_server(ctx, "stable", version)
        servers["stable"] = stable
        ctx.journal.save(state)
        try:
            wait_server(ctx, stable)
        except DeployError:
            procs.stop(servers.pop("stable"))
            ctx.journal.save(state)
            raise
        ctx.journal.log({"event": "started", "role": "stable", "version": version})
    if "previous" in servers and not procs.alive(servers["previous"]):
        servers.pop("previous")
    config = routing(servers, {"stable": 100})
    router = state.get("router")
    if procs.alive(router):
        set_routes(state, config)
    else:
        port = router["port"] if router else ctx.serve.router_port
        port = port if router_port is None else router_port
        state["router"] = start_router(ctx, config, port)
        ctx.journal.log({"event": "started", "role": "router", "url": state["router"]["url"]})
    state["production_version"] = servers["stable"]["version"]
    ctx.journal.save(state)
    return state


def move_champion(ctx: Context, registry: Any, expected: str, target: str, why: str) -> str:
    """Compare-and-set `champion` from `expected` to `target`; say what happened."""
    if expected == target:
        return f"champion stays v{target}"
    moved = registry.move_alias("champion", target, expected)
    registry.append_log(
        {
            "event": "champion_moved" if moved else "champion_not_moved",
            "from": expected,
            "to": target,
            "reason": why,
            "by": "deploy",
        }
    )
    ctx.journal.log({"event": "champion", "moved": moved, "from": expected, "to": target})
    if moved:
        return f"champion moved v{expected} -> v{target}"
    current = registry.get_alias("champion")
    return f"champion left at v{current.version if current else 'none'} (it had moved meanwhile)"


def abort_rollout(ctx: Context, state: dict[str, Any], reason: str) -> dict[str, Any]:
    """Everything back on stable, the canary stopped, `champion` moved back; idempotent."""
    servers = state.get("servers", {})
    canary = servers.pop("canary", None)
    if procs.alive(state.get("router")):
        try:
            set_routes(state, routing(servers, {"stable": 100}))
        except AdminError as error:
            ctx.journal.log({"event": "router_unreachable", "error": str(error)})
    procs.stop(canary, grace_s=2.0)
    rollout = state.get("rollout") or {}
    state["phase"] = "idle"
    state["rollout"] = None
    ctx.journal.save(state)
    message = ""
    if rollout:
        message = move_champion(
            ctx, ctx.registry(), rollout["canary_version"], rollout["stable_version"], reason
        )
    ctx.journal.log({"event": "rolled_back", "reason": reason, "champion": message})
    return state


def finish_rollback(ctx: Context, state: dict[str, Any]) -> tuple[dict[str, Any], str]:
    """Complete a rollback to N-1 from wherever it stopped."""
    plan = state["rollback"]
    source, target = plan["from"], plan["to"]
    if not procs.alive(target):
        target = start_server(ctx, "stable", target["version"])
        wait_server(ctx, target)
    servers = {"stable": {**target, "role": "stable"}}
    set_routes(state, routing(servers, {"stable": 100}))
    procs.stop(source)
    message = move_champion(
        ctx, ctx.registry(), source["version"], target["version"], "rollback to N-1"
    )
    state.update(servers=servers, production_version=target["version"], phase="idle", rollback=None)
    ctx.journal.save(state)
    ctx.journal.log({"event": "rollback_complete", "version": target["version"]})
    return state, message


def recover(ctx: Context, state: dict[str, Any]) -> dict[str, Any]:
    """Finish what an interrupted command left: a rollout is rolled back, a rollback completed."""
    if state.get("phase") == "rollout":
        ctx.console.print("[yellow]recovering an interrupted rollout: back to stable[/]")
        state = abort_rollout(ctx, state, "interrupted rollout recovered")
    elif state.get("phase") == "rolling_back":
        ctx.console.print("[yellow]completing an interrupted rollback[/]")
        state, message = finish_rollback(ctx, state)
        ctx.console.print(message)
    return state


class Progress:
    """Print the rollout as it runs: a live table on a terminal, one line per look otherwise."""

    def __init__(self, console: Console) -> None:
        self.console = console
        self.live: Any = None
        self.phase = ""

    def __enter__(self) -> Progress:
        if self.console.is_terminal:
            from rich.live import Live

            self.live = Live(Table(), console=self.console, refresh_per_second=4)
            self.live.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        if self.live is not None:
            self.live.__exit__(None, None, None)

    def __call__(self, event: dict[str, Any]) -> None:
        evidence = event.get("evidence", {})
        canary = evidence.get("canary") or evidence.get("shadow") or {}
        stable = evidence.get("stable") or {}
        p99 = evidence.get("p99_ms", {})
        colour = {"pass": "green", "fail": "red"}.get(event["verdict"], "yellow")
        if self.live is None:
            self.console.print(
                f"{event['phase']:<9} weight {event['weight']:>3}%  t={event['elapsed_s']:>5}s  "
                f"canary n={canary.get('n', 0)} err={canary.get('errors', 0)}  "
                f"stable n={stable.get('n', 0)} err={stable.get('errors', 0)}  "
                f"[{colour}]{event['verdict']}[/]: {event['reason']}",
                highlight=False,
            )
            return
        table = Table(title="canary rollout", expand=False)
        for column in (
            "phase",
            "weight",
            "t (s)",
            "canary n/err",
            "stable n/err",
            "p99 ms",
            "verdict",
        ):
            table.add_column(column)
        table.add_row(
            event["phase"],
            f"{event['weight']}%",
            str(event["elapsed_s"]),
            f"{canary.get('n', 0)}/{canary.get('errors', 0)}",
            f"{stable.get('n', 0)}/{stable.get('errors', 0)}",
            f"{p99.get('canary', canary.get('p99_ms'))} / {p99.get('stable')}",
            f"[{colour}]{event['verdict']}[/]",
        )
        table.caption = event["reason"]
        self.live.update(table)


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
    from ..rollout.loadgen import LoadGenerator, holdout_rows
    from ..serve.predictor import example_row

    contract = load_contract("contract.yaml")
    holdout = Path("data/holdout.parquet")
    rows = holdout_rows(holdout, contract) if holdout.is_file() else [example_row(contract)]
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
            raise DeployError("no champion in the registry: run `dvc repro` first")
        canary_version = version or champion.version
        state = ensure_production(ctx, state, registry, router_port)
        stable_version = state["servers"]["stable"]["version"]
        state["phase"] = "rollout"
        state["rollout"] = {
            "stable_version": stable_version,
            "canary_version": canary_version,
            "pid": os.getpid(),
            "started": time.time(),
            "fault": fault,
        }
        ctx.journal.save(state)
        ctx.journal.log({"event": "rollout_started", **state["rollout"]})
        note = " (the same version as stable)" if canary_version == stable_version else ""
        ctx.console.print(f"canary v{canary_version} vs stable v{stable_version}{note}")
        canary = start_server(ctx, "canary", canary_version, fault=fault)
        state["servers"]["canary"] = canary
        ctx.journal.save(state)
        _crash_point("canary:started")
        try:
            seconds = wait_server(ctx, canary)
        except DeployError as error:
            abort_rollout(ctx, state, f"canary never became ready: {error}")
            ctx.console.print(f"[red]rolled back[/]: canary v{canary_version} never became ready")
            ctx.console.print(str(error), highlight=False)
            return 1
        ctx.console.print(f"canary ready in {seconds:.1f} s")
        router_url = state["router"]["url"]
        progress = Progress(ctx.console)
        controller = Controller(
            ctx.rollout,
            router_url,
            routing(state["servers"], {"stable": 100}),
            {"stable": stable_version, "canary": canary_version},
            lambda: procs.alive(canary),
            ctx.journal.log,
            progress,
        )
        generator = _loadgen(ctx, router_url) if loadgen and ctx.rollout.loadgen.enabled else None
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
            return 1
        message = finish_promotion(ctx, state, registry, champion.version if champion else None)
        ctx.console.print(f"[green]promoted[/]: v{canary_version} serves 100% ({message})")
        return 0


def finish_promotion(
    ctx: Context, state: dict[str, Any], registry: Any, champion: str | None
) -> str:
    """The canary becomes stable; the old stable stays warm as `previous` for rollback."""
    servers = state["servers"]
    canary, old_stable = servers.pop("canary"), servers.pop("stable")
    procs.stop(servers.pop("previous", None))
    state["servers"] = {"stable": {**canary, "role": "stable"}, "previous": old_stable}
    set_routes(state, routing(state["servers"], {"stable": 100}))
    version = canary["version"]
    state.update(production_version=version, phase="idle", rollout=None)
    ctx.journal.save(state)
    ctx.journal.log({"event": "promotion_complete", "version": version})
    if champion is None or champion == version:
        return f"champion is v{version}"
    return move_champion(ctx, registry, champion, version, "canary promoted")


def cmd_rollback(ctx: Context) -> int:
    """Put production back on the N-1 version; print how long the switch took."""
    with ctx.journal.locked("deploy rollback"):
        state = ctx.journal.state()
        if state.get("phase") in ("rollout", "rolling_back"):
            recover(ctx, state)
            ctx.console.print("done: stable is serving")
            return 0
        servers = state.get("servers", {})
        stable, previous = servers.get("stable"), servers.get("previous")
        if not stable or not procs.alive(state.get("router")):
            raise DeployError("nothing is deployed: run `make deploy-canary` first")
        if not previous:
            raise DeployError(f"no N-1 version to roll back to (v{stable['version']} is the first)")
        start = time.perf_counter()
        if not procs.alive(previous):
            ctx.console.print(f"v{previous['version']} was not running: starting it")
            previous = start_server(ctx, "stable", previous["version"])
            wait_server(ctx, previous)
        state.update(phase="rolling_back", rollback={"from": stable, "to": previous})
        ctx.journal.save(state)
        set_routes(state, routing({"stable": previous}, {"stable": 100}))
        switch = time.perf_counter() - start
        ctx.journal.log(
            {
                "event": "rollback",
                "from": stable["version"],
                "to": previous["version"],
                "switch_seconds": round(switch, 4),
            }
        )
        _crash_point("rollback:switched")
        state, message = finish_rollback(ctx, state)
        ctx.console.print(
            f"[green]rolled back[/] v{stable['version']} -> v{previous['version']}: "
            f"all traffic on v{previous['version']} after {switch * 1000:.1f} ms; {message}",
            highlight=False,
        )
        return 0


def golden_rows(ctx: Context, registry: Any, ref: Any, count: int = 25) -> dict[str, Any]:
    """Holdout rows and the scores the model itself gives them, for integration tests."""
    from ..contract import load_contract
    from ..data import load_table
    from ..rollout.loadgen import holdout_rows
    from ..serve.loading import load_pinned

    contract = load_contract("contract.yaml")
    predictor, _ = load_pinned(registry, ref, contract)
    holdout = Path("data/holdout.parquet")
    if not holdout.is_file():
        raise DeployError(f"{holdout} not found: run `dvc repro` (train writes it)")
    frame = load_table(holdout).head(count)
    scores = predictor.model.predict_proba(frame[contract.feature_columns])[:, 1]
    return {
        "model_version": ref.version,
        "rows": holdout_rows(holdout, contract, count),
        "scores": [float(s) for s in scores],
        "tolerance": 1e-9,
    }


def cmd_staging(ctx: Context, version: str | None, port: int | None) -> int:
    """Serve the champion (or `version`) on the staging port and record golden rows."""
    from ..serve.loading import resolve

    with ctx.journal.locked("deploy staging"):
        state = ctx.journal.state()
        registry = ctx.registry()
        ref = resolve(registry, version or "champion")
        procs.stop(state.get("staging"))
        port = ctx.serve.staging_port if port is None else port
        staging = start_server(ctx, "staging", ref.version, port)
        state["staging"] = staging
        ctx.journal.save(state)
        seconds = wait_server(ctx, staging)
        write_json(ctx.journal.root / "golden.json", golden_rows(ctx, registry, ref))
        ctx.journal.log({"event": "staging", "version": ref.version, "url": staging["url"]})
        ctx.console.print(
            f"staging: v{ref.version} ready at {staging['url']} in {seconds:.1f} s "
            f"(golden rows in {ctx.journal.root / 'golden.json'})",
            highlight=False,
        )
        return 0


def cmd_status(ctx: Context) -> int:
    """Show processes, versions, weights and the latest verdicts."""
    state = ctx.journal.state()
    weights: dict[str, int] = {}
    router = state.get("router")
    if procs.alive(router):
        try:
            weights = get_json(router["url"] + "/admin/config")["weights"]
        except AdminError:
            weights = {}
    table = Table(title=f"local delivery ({state.get('phase', 'idle')})")
    for column in ("role", "version", "url", "pid", "running", "weight"):
        table.add_column(column)
    records = {**state.get("servers", {}), "staging": state.get("staging"), "router": router}
    for role, record in records.items():
        if not record:
            continue
        running = "[green]yes[/]" if procs.alive(record) else "[red]no[/]"
        weight = f"{weights[role]}%" if role in weights else ""
        table.add_row(
            role, record.get("version", ""), record["url"], str(record["pid"]), running, weight
        )
    ctx.console.print(table)
    if state.get("phase") in ("rollout", "rolling_back"):
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
        records = [*state.get("servers", {}).values(), state.get("staging"), state.get("router")]
        stopped = [f"{r['role']} (pid {r['pid']})" for r in records if r and procs.stop(r)]
        state.update(servers={}, staging=None, router=None, phase="idle", rollout=None)
        ctx.journal.save(state)
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
    staging.add_argument("--version", default=None)
    staging.add_argument("--port", type=int, default=None, help="0 picks a free port")
    canary = commands.add_parser("canary", help="shadow, then 5 -> 25 -> 100 with rollback")
    canary.add_argument("--version", default=None, help="default: the champion")
    canary.add_argument("--bad", choices=sorted(BAD), default=None, help="inject a fault")
    canary.add_argument("--fault", default=None, help="raw fault spec, e.g. errors=0.5,after=100")
    canary.add_argument("--no-loadgen", action="store_true", help="no generated traffic")
    canary.add_argument("--router-port", type=int, default=None, help="0 picks a free port")
    commands.add_parser("rollback", help="back to the N-1 version (or abort a rollout)")
    commands.add_parser("status", help="versions, weights, verdicts")
    commands.add_parser("undeploy", help="stop everything this tool started")
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run one deploy command; exit 1 with a reason when it cannot be done."""
    args = build_parser().parse_args(argv)
    console = Console(highlight=False, soft_wrap=True)
    try:
        rollout, serve = load_specs(args.params)
    except (SpecError, ValueError) as error:
        print(f"deploy: {error}", file=sys.stderr)
        return 2
    ctx = Context(Journal(args.dir), rollout, serve, args.registry, args.model_name, console)
    try:
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
    except (DeployBusy, DeployError, AdminError, RuntimeError) as error:
        # our errors (registry, model integrity, deploy) all say what to do: no traceback
        print(f"deploy: {error}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
