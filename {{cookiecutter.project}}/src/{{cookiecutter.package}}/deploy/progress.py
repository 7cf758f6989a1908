"""Print a rollout as it runs: a live table on a terminal, one line per look otherwise."""

from __future__ import annotations

from typing import Any

from rich.console import Console
from rich.table import Table


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
        colour = {"pass": "green", "fail": "red"}.get(event["verdict"], "yellow")
        if self.live is None:
            self.console.print(
                f"{event['phase']:<9} weight {event['weight']:>3}%  t={event['elapsed_s']:>5}s  "
                f"canary n={canary.get('n', 0):.0f} err={_errors(canary):.0f}  "
                f"stable n={stable.get('n', 0):.0f} err={_errors(stable):.0f}  "
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
            f"{canary.get('n', 0):.0f}/{_errors(canary):.0f}",
            f"{stable.get('n', 0):.0f}/{_errors(stable):.0f}",
            f"{canary.get('p99_ms')} / {stable.get('p99_ms')}",
            f"[{colour}]{event['verdict']}[/]",
        )
        table.caption = event["reason"]
        self.live.update(table)


def _errors(counts: dict[str, Any]) -> float:
    """Errors of a variant, or of the shadow copies (errors and timeouts)."""
    if "errors" in counts:
        return float(counts["errors"])
    return float(counts.get("error", 0) + counts.get("timeout", 0))
