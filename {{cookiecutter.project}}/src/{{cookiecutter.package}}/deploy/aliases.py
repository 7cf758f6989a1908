"""Keep the registry's `champion` and `previous` aliases on what serves (processes or cluster)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from .journal import Journal
from .state import DeployState

Log = Callable[[dict[str, Any]], None]  # where an alias move is recorded besides the registry


def move_champion(registry: Any, log: Log, expected: str | None, target: str, why: str) -> str:
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
    log({"event": "champion", "moved": moved, "from": expected, "to": target})
    if moved:
        return f"champion moved v{expected} -> v{target}"
    current = registry.get_alias("champion")
    return f"champion left at v{current.version if current else 'none'} (it had moved meanwhile)"


def move_previous(registry: Any, log: Log, wanted: str | None) -> None:
    """Point `previous` at the N-1 version (none when nothing served before)."""
    current = registry.get_alias("previous")
    have = current.version if current is not None else None
    if have != wanted and registry.move_alias("previous", wanted, have):
        log({"event": "previous", "from": have, "to": wanted})


def sync_aliases(
    registry: Any, journal: Journal, state: DeployState, champion_was: str, why: str
) -> str:
    """After a local transition: `champion` (compare-and-set from `champion_was`), `previous`."""
    assert state.stable is not None
    message = move_champion(registry, journal.log, champion_was, state.stable.version, why)
    move_previous(registry, journal.log, state.previous.version if state.previous else None)
    return message
