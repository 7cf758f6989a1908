"""Keep the registry's `champion` and `previous` aliases on what serves (processes or cluster)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ..provenance import override_reason, who
from .journal import Journal
from .state import DeployState

Log = Callable[[dict[str, Any]], None]  # where an alias move is recorded besides the registry


def why_not_champion(registry: Any, version: str) -> str | None:
    """None if a deploy may make `version` champion, else why not and how to do it anyway.

    It may when `version` is the champion or `previous` already, or promote promoted it (the
    registry's promotion log): a deploy must not skip the paired test promote refused.
    """
    for alias in ("champion", "previous"):
        ref = registry.get_alias(alias)
        if ref is not None and ref.version == version:
            return None
    log = registry.read_log()
    if any(
        (entry.get("decision") == "promoted" and entry.get("version") == version)
        or (entry.get("event") == "champion_moved" and entry.get("to") == version)
        for entry in log
    ):
        return None
    decided = [e for e in log if e.get("decision") and e.get("challenger") == version]
    said = (
        f"promote decided {decided[-1]['decision']}: {decided[-1].get('reason')}"
        if decided
        else "promote never decided on it"
    )
    return (
        f"v{version} is neither champion nor previous and was never promoted ({said}); "
        "deploying it would make it champion without the paired test. To deploy it anyway, "
        f"say why: `make deploy-canary VERSION={version} OVERRIDE='reason'` (recorded in the "
        "promotion log)"
    )


def authorise(registry: Any, version: str, by: str) -> tuple[bool, str | None]:
    """(may deploy `version`, what to say): `why_not_champion`, unless an override is given.

    An override is recorded in the promotion log before anything is deployed.
    """
    refused = why_not_champion(registry, version)
    if refused is None:
        return True, None
    override = override_reason()
    if override is None:
        return False, refused
    registry.append_log(
        {"event": "override", "version": version, "reason": override,
         "by": f"{by} ({who()})", "bypassed": refused}
    )  # fmt: skip
    return True, f"OVERRIDE ({override}): {refused}"


def move_champion(registry: Any, log: Log, expected: str | None, target: str, why: str) -> str:
    """Compare-and-set `champion` from `expected` to `target`; say what happened."""
    if expected == target:
        return f"champion stays v{target}"
    moved = registry.move_alias("champion", target, expected)
    override = override_reason()
    registry.append_log(
        {
            "event": "champion_moved" if moved else "champion_not_moved",
            "from": expected,
            "to": target,
            "reason": why,
            "by": f"deploy ({who()})",
        }
        | ({"override": override} if override else {})
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
