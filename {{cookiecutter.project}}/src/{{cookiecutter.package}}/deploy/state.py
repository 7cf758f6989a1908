"""The local delivery state: which process serves which role, and the only ways it changes.

Every transition is a pure function from one state to the next, so the rules about N-1
live here and nowhere else: `previous` is always the version that served before the
current stable one, whichever command (promotion, rollback, a canary of the same version,
a rollback of a rollback) made the change.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Literal

from pydantic import Field

from ..errors import RefusedError
from ..typed import Frozen

Phase = Literal["idle", "rollout", "rolling_back"]
Role = Literal["stable", "canary", "previous", "staging"]


class Proc(Frozen):
    """A process this tool started: recognised by pid and a tag on its command line."""

    pid: int
    instance: str
    log: str
    started: float
    port: int
    url: str


class Server(Proc):
    """A model server process and the version it serves."""

    role: Role
    version: str

    def as_role(self, role: Role) -> Server:
        """The same process under another role (it is not restarted)."""
        return self.model_copy(update={"role": role})


class RouterProc(Proc):
    """The router process: traffic on `url`, the admin API on `admin_url` (loopback)."""

    role: Literal["router"] = "router"
    admin_url: str


class RolloutPlan(Frozen):
    """A rollout in progress (so an interrupted one can be rolled back by the next command)."""

    stable_version: str
    canary_version: str
    pid: int
    started: float
    fault: str | None = None


class RollbackPlan(Frozen):
    """A rollback in progress: traffic moves from `source` to `target`."""

    source: Server
    target: Server


class TransitionError(RefusedError):
    """A command asked for a change the current state does not allow."""


class DeployState(Frozen):
    """Everything `.deploy/state.json` holds."""

    phase: Phase = "idle"
    servers: dict[Role, Server] = Field(default_factory=dict)
    staging: Server | None = None
    router: RouterProc | None = None
    rollout: RolloutPlan | None = None
    rollback: RollbackPlan | None = None

    @property
    def stable(self) -> Server | None:
        return self.servers.get("stable")

    @property
    def canary(self) -> Server | None:
        return self.servers.get("canary")

    @property
    def previous(self) -> Server | None:
        return self.servers.get("previous")

    def _with(self, changes: Mapping[Role, Server | None]) -> dict[Role, Server]:
        merged: dict[Role, Server | None] = {**self.servers, **changes}
        return {role: s.as_role(role) for role, s in merged.items() if s is not None}

    # ------------------------------------------------------------------ transitions

    def with_stable(self, server: Server) -> DeployState:
        """A (re)started stable server; the rest is unchanged."""
        return self.model_copy(update={"servers": self._with({"stable": server})})

    def without(self, role: Role) -> DeployState:
        """Forget a server that is gone."""
        return self.model_copy(update={"servers": self._with({role: None})})

    def begin_rollout(self, plan: RolloutPlan) -> DeployState:
        """idle -> rollout."""
        if self.phase != "idle" or self.stable is None:
            raise TransitionError(f"cannot start a rollout from phase {self.phase!r}")
        return self.model_copy(update={"phase": "rollout", "rollout": plan})

    def with_canary(self, server: Server) -> DeployState:
        """The canary process of the rollout in progress."""
        if self.phase != "rollout":
            raise TransitionError("a canary exists only during a rollout")
        return self.model_copy(update={"servers": self._with({"canary": server})})

    def promoted(self) -> tuple[DeployState, list[Server]]:
        """rollout -> idle with the canary as stable; return the processes to stop.

        A canary of another version pushes stable down to N-1. A canary of the version that
        already serves (a re-deploy) replaces the stable process only: N-1 stays what it was.
        """
        stable, canary, previous = self.stable, self.canary, self.previous
        if self.phase != "rollout" or stable is None or canary is None:
            raise TransitionError("nothing to promote: no rollout with a canary")
        if canary.version == stable.version:
            servers, retired = self._with({"stable": canary, "canary": None}), [stable]
        else:
            servers = self._with({"stable": canary, "previous": stable, "canary": None})
            retired = [previous] if previous is not None else []
        state = self.model_copy(update={"phase": "idle", "rollout": None, "servers": servers})
        return state, retired

    def aborted(self) -> tuple[DeployState, Server | None]:
        """rollout -> idle with stable and N-1 untouched; return the canary to stop."""
        canary = self.canary
        state = self.model_copy(
            update={"phase": "idle", "rollout": None, "servers": self._with({"canary": None})}
        )
        return state, canary

    def begin_rollback(self, target: Server) -> DeployState:
        """idle -> rolling_back: traffic goes to `target` (the N-1 version, maybe restarted)."""
        stable = self.stable
        if self.phase != "idle" or stable is None:
            raise TransitionError(f"cannot roll back from phase {self.phase!r}")
        plan = RollbackPlan(source=stable, target=target.as_role("stable"))
        return self.model_copy(update={"phase": "rolling_back", "rollback": plan})

    def rolled_back(self) -> DeployState:
        """rolling_back -> idle: N-1 serves, and the version it replaced becomes N-1.

        So a second rollback undoes the first, as the version that served before is the
        one rolled back from (it stays running, warm).
        """
        if self.phase != "rolling_back" or self.rollback is None:
            raise TransitionError("no rollback in progress")
        plan = self.rollback
        servers = self._with({"stable": plan.target, "previous": plan.source})
        return self.model_copy(update={"phase": "idle", "rollback": None, "servers": servers})
