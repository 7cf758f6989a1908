"""The `.deploy/` directory: state (atomic JSON), an append-only event log, and the deploy lock."""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from filelock import FileLock, Timeout

from ..artifacts import write_json
from ..errors import RefusedError
from .state import DeployState

DEPLOY_DIR = Path(".deploy")


class DeployBusy(RefusedError):
    """Another deploy command holds the lock."""


class Journal:
    """State, events and lock of local delivery, all under one directory."""

    def __init__(self, root: Path = DEPLOY_DIR) -> None:
        self.root = root
        self.state_path = root / "state.json"
        self.events_path = root / "events.jsonl"
        self.lock_path = root / "deploy.lock"
        self.holder_path = root / "lock-holder.json"

    def state(self) -> DeployState:
        """The current state (idle with nothing running when nothing was ever deployed)."""
        if not self.state_path.is_file():
            return DeployState()
        raw = json.loads(self.state_path.read_text(encoding="utf-8"))
        raw.pop("updated", None)
        return DeployState.model_validate(raw)

    def save(self, state: DeployState) -> DeployState:
        """Replace the state atomically; return it (so a command can save as it assigns)."""
        write_json(self.state_path, {**state.model_dump(mode="json"), "updated": time.time()})
        return state

    def log(self, event: dict[str, Any]) -> None:
        """Append one event (a JSON line, fsynced) with its wall-clock time."""
        self.root.mkdir(parents=True, exist_ok=True)
        record = {"time": time.time(), **event}
        with self.events_path.open("a", encoding="utf-8") as handle:
            handle.write(json.dumps(record, default=str) + "\n")
            handle.flush()
            os.fsync(handle.fileno())

    def events(self) -> list[dict[str, Any]]:
        """Every event so far, oldest first (a torn last line is skipped)."""
        if not self.events_path.is_file():
            return []
        out = []
        for line in self.events_path.read_text(encoding="utf-8").splitlines():
            try:
                out.append(json.loads(line))
            except ValueError:
                continue
        return out

    @contextmanager
    def locked(self, command: str) -> Iterator[None]:
        """Hold the deploy lock; DeployBusy at once if another command has it."""
        self.root.mkdir(parents=True, exist_ok=True)
        lock = FileLock(str(self.lock_path), timeout=0)
        try:
            lock.acquire()
        except Timeout:
            holder = self._holder()
            raise DeployBusy(f"another deploy is running ({holder}); wait for it") from None
        try:
            write_json(
                self.holder_path, {"pid": os.getpid(), "command": command, "since": time.time()}
            )
            yield
        finally:
            lock.release()

    def _holder(self) -> str:
        try:
            holder = json.loads(self.holder_path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return "holder unknown"
        since = time.strftime("%H:%M:%S", time.localtime(holder.get("since", 0)))
        return f"`{holder.get('command')}`, pid {holder.get('pid')}, since {since}"
