"""Keep the registry's `champion` and `previous` aliases on what the processes serve."""

from __future__ import annotations

from typing import Any

from .journal import Journal
from .state import DeployState


def move_champion(registry: Any, journal: Journal, expected: str, target: str, why: str) -> str:
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
    journal.log({"event": "champion", "moved": moved, "from": expected, "to": target})
    if moved:
        return f"champion moved v{expected} -> v{target}"
    current = registry.get_alias("champion")
    return f"champion left at v{current.version if current else 'none'} (it had moved meanwhile)"


def sync_previous(registry: Any, journal: Journal, state: DeployState) -> None:
    """Point `previous` at the N-1 server's version (none when nothing served before)."""
    wanted = state.previous.version if state.previous is not None else None
    current = registry.get_alias("previous")
    have = current.version if current is not None else None
    if have != wanted and registry.move_alias("previous", wanted, have):
        journal.log({"event": "previous", "from": have, "to": wanted})


def sync_aliases(
    registry: Any, journal: Journal, state: DeployState, champion_was: str, why: str
) -> str:
    """After a transition: `champion` (compare-and-set from `champion_was`) and `previous`."""
    assert state.stable is not None
    message = move_champion(registry, journal, champion_was, state.stable.version, why)
    sync_previous(registry, journal, state)
    return message
