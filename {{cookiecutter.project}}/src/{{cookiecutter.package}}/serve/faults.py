"""Fault injection for delivery tests and demos; refused unless explicitly enabled."""

from __future__ import annotations

import os
from dataclasses import dataclass

ENABLE_ENV = "SERVE_ALLOW_FAULTS"
KINDS = ("errors", "slow", "crash", "never_ready")


class FaultError(ValueError):
    """A fault spec that cannot be parsed, or faults were not enabled."""


@dataclass
class Fault:
    """What to break: `errors` (share of 5xx), `slow` (ms added), `crash` (exit), `never_ready`.

    `after` requests are served normally first, so a breach can start mid-rollout.
    """

    kind: str
    amount: float = 0.0
    after: int = 0
    seen: int = 0
    _debt: float = 0.0

    def on_request(self) -> str | None:
        """Count one request; return the action to take: "error", "slow", "crash" or None."""
        self.seen += 1
        if self.seen <= self.after:
            return None
        if self.kind == "errors":
            # deterministic share: an error each time the accumulated share reaches one
            self._debt += self.amount
            if self._debt >= 1.0:
                self._debt -= 1.0
                return "error"
            return None
        if self.kind in ("slow", "crash"):
            return self.kind
        return None


def parse_fault(spec: str | None, allowed: bool) -> Fault | None:
    """Parse `kind[=amount][,after=N]`, e.g. `errors=0.3`, `slow=400`, `crash,after=50`."""
    if not spec:
        return None
    if not allowed and os.environ.get(ENABLE_ENV) != "1":
        raise FaultError(f"fault injection is off; pass --allow-faults or set {ENABLE_ENV}=1")
    head, *options = spec.split(",")
    kind, _, amount = head.partition("=")
    if kind not in KINDS:
        raise FaultError(f"unknown fault {kind!r}; expected one of {', '.join(KINDS)}")
    defaults = {"errors": 0.3, "slow": 400.0}
    try:
        fault = Fault(kind, float(amount) if amount else defaults.get(kind, 0.0))
        for option in options:
            key, _, value = option.partition("=")
            if key != "after":
                raise FaultError(f"unknown fault option {key!r}; expected after=N")
            fault.after = int(value)
    except ValueError as error:
        raise FaultError(f"bad fault spec {spec!r}: {error}") from None
    if kind == "errors" and not 0 < fault.amount <= 1:
        raise FaultError(f"errors share must be in (0, 1], got {fault.amount}")
    return fault
