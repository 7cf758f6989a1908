"""`make push`: send what exists to the DVC remote (the data, each stage that has run) and say so.

Outputs restored from a CI artifact are in the workspace but not in the DVC cache, and `dvc
push` sends only the cache: each stage whose outputs all exist is committed to the cache
first (recorded in dvc.lock). A stage that has not run yet (e.g. right after `make remote`,
before the first `dvc repro`) is named and skipped, never an error.
"""

from __future__ import annotations

import argparse
import subprocess
from pathlib import Path

from .data_sync import DataSyncError, default_remote, dvc
from .provenance import stage_outputs


def tracked_data() -> list[str]:
    """The `.dvc` files of this project (data added with `dvc add`), committed or not."""
    listed = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard", "--", "*.dvc"],
        capture_output=True,
        text=True,
        check=False,
    )
    if listed.returncode == 0:
        return sorted(set(listed.stdout.split()))
    skip = {".git", ".dvc", ".venv", ".venv-server", "registry"}
    found = Path().rglob("*.dvc")
    return sorted(p.as_posix() for p in found if p.is_file() and not skip & set(p.parts))


def plan(outputs: dict[str, list[str]]) -> tuple[list[str], dict[str, list[str]]]:
    """Stages ready to push (every output present) and, for the others, what is missing."""
    ready, missing = [], {}
    for stage, paths in outputs.items():
        absent = [path for path in paths if not Path(path).exists()]
        if absent:
            missing[stage] = absent
        else:
            ready.append(stage)
    return ready, missing


def main(argv: list[str] | None = None) -> int:
    """Push the data and every stage that has run to the DVC remote; say what was pushed."""
    parser = argparse.ArgumentParser(prog="push", description=main.__doc__)
    parser.parse_args(argv)
    remote = default_remote()
    if remote is None:
        raise DataSyncError("no DVC remote is configured: `make remote URL=s3://bucket/path` first")
    data = tracked_data()
    ready, missing = plan(stage_outputs())
    if ready:
        dvc("commit", "--force", "--quiet", *ready)
    targets = data + ready
    if not targets:
        print(f"push: nothing to push to {remote!r} yet (no `dvc add`-ed data, no stage has run)")
        return 0
    dvc("push", *targets)
    print(f"push: sent to DVC remote {remote!r}: " + ", ".join(targets))
    if missing:
        for stage, absent in missing.items():
            print(f"push: not pushed: stage {stage} has not run here ({', '.join(absent)} missing)")
        print("push: run `dvc repro` (or `make repro`), then `make push` again to send them")
    return 0
