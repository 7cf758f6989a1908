"""Local server processes: start them detached, recognise them by a tag, stop them by pid."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import psutil
from pydantic import BaseModel

Record = BaseModel | dict[str, Any] | None  # a typed state record, or its JSON form

PACKAGE = __name__.split(".")[0]
# Popen handles of the children this process started, so exited ones are reaped, not zombies
_CHILDREN: dict[int, subprocess.Popen[bytes]] = {}


def start(
    module: str, args: list[str], log_path: Path, env: dict[str, str] | None = None
) -> dict[str, Any]:
    """Start `python -m <package>.<module> args` in its own process group; return its record."""
    instance = uuid.uuid4().hex[:12]
    log_path.parent.mkdir(parents=True, exist_ok=True)
    full_env = {**os.environ, "OMP_NUM_THREADS": "1", "MLFLOW_DISABLE_TELEMETRY": "true"}
    full_env.update(env or {})
    with log_path.open("ab") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", f"{PACKAGE}.{module}", *args, "--instance", instance],
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            env=full_env,
            start_new_session=True,  # its own group: a signal to us does not reach it
        )
    _CHILDREN[process.pid] = process
    return {"pid": process.pid, "instance": instance, "log": str(log_path), "started": time.time()}


def _fields(record: Record) -> tuple[int, str]:
    """(pid, instance tag) of a record; pid 0 when there is none."""
    if isinstance(record, BaseModel):
        record = record.model_dump()
    if not record or not record.get("pid"):
        return 0, ""
    return int(record["pid"]), str(record.get("instance", ""))


def alive(record: Record) -> bool:
    """Whether the recorded process still runs and is the one we started (not a reused pid)."""
    pid, instance = _fields(record)
    if not pid:
        return False
    child = _CHILDREN.get(pid)
    # start() gives Popen a list of str; its `args` is typed for every form Popen takes
    if child is not None and isinstance(child.args, list) and instance in child.args:
        # our own child: its pid cannot be reused before we reap it, so no `ps` is needed
        # (the controller asks several times a second, on the loop that sends the traffic)
        return child.poll() is None
    if child is not None and child.poll() is not None:
        return False
    try:
        process = psutil.Process(pid)
        # the tag is an argument of the command we started: a reused pid does not carry it
        tagged = not instance or instance in process.cmdline()
        return tagged and process.status() != psutil.STATUS_ZOMBIE
    except (psutil.NoSuchProcess, psutil.AccessDenied):
        return False  # gone, or another user's process: not one of ours


def stop(record: Record, grace_s: float = 3.0) -> bool:
    """SIGTERM the recorded process group, SIGKILL after `grace_s`; True if it was running."""
    if not alive(record):
        _reap(record)
        return False
    pid, _ = _fields(record)
    _signal(pid, signal.SIGTERM)
    deadline = time.monotonic() + grace_s
    while time.monotonic() < deadline:
        if not alive(record):
            _reap(record)
            return True
        time.sleep(0.02)
    _signal(pid, signal.SIGKILL)
    for _ in range(100):
        if not alive(record):
            break
        time.sleep(0.02)
    _reap(record)
    return True


def kill_now(record: Record) -> None:
    """SIGKILL the recorded process group without waiting (a crashed canary is not drained)."""
    if alive(record):
        _signal(_fields(record)[0], signal.SIGKILL)


def _signal(pid: int, sig: signal.Signals) -> None:
    try:
        os.killpg(pid, sig)
    except (ProcessLookupError, PermissionError):
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(pid, sig)


def _reap(record: Record) -> None:
    pid, _ = _fields(record)
    if pid:
        child = _CHILDREN.pop(pid, None)
        if child is not None:
            child.wait(timeout=5)
