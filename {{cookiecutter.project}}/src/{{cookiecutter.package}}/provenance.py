"""Who may move a shared alias: promotion is a decision about a commit.

Against a shared registry (a tracking server) `champion` moves only from a clean tree at a
commit on the default branch, so production's model is always one the team's history holds;
anything else compares and reports. An explicit override (`PROMOTION_OVERRIDE="why"`, which
`make promote OVERRIDE=...` sets) moves it anyway and is recorded in the promotion log. The
embedded registry belongs to this machine and moves freely. A DVC experiment never registers
a version or moves an alias, whatever the registry: its parameters exist only in its ref.
"""

from __future__ import annotations

import getpass
import os
import socket
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

OVERRIDE_ENV = "PROMOTION_OVERRIDE"
EXPERIMENT_ENV = "DVC_EXP_NAME"  # set by `dvc exp run` (workspace, --temp, --queue) for its stages
LOCK_FILE = "dvc.lock"


@dataclass(frozen=True)
class Authority:
    """Whether this run may register a version and move aliases, and why not."""

    may_move: bool
    refusal: str | None = None  # why it may not (None when it may)
    how: str = ""  # what to do instead, when it may not
    override: str | None = None  # the reason given, when an override is what allows it
    bypassed: str | None = None  # what the override stepped over

    def compared_only(self) -> str | None:
        """The sentence a compare-only run reports, or None."""
        return None if self.may_move else f"{self.refusal}. To promote: {self.how}"


def override_reason() -> str | None:
    """The reason given for an explicit override, or None."""
    return os.environ.get(OVERRIDE_ENV, "").strip() or None


def who() -> str:
    """user@host, for the promotion log."""
    try:
        user = getpass.getuser()
    except (KeyError, OSError):
        user = "unknown"
    return f"{user}@{socket.gethostname()}"


def experiment() -> str | None:
    """The DVC experiment this stage runs in, or None."""
    return os.environ.get(EXPERIMENT_ENV) or None


def _git(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["git", *args], capture_output=True, text=True, check=False)


def head_commit() -> str | None:
    """The checked-out commit, or None outside git."""
    done = _git("rev-parse", "--verify", "--quiet", "HEAD")
    return done.stdout.strip() if done.returncode == 0 else None


def stage_outputs(dvc_yaml: Path = Path("dvc.yaml")) -> dict[str, list[str]]:
    """Each stage's outputs (outs, metrics, plots), in pipeline order."""
    stages: dict[str, Any] = (yaml.safe_load(dvc_yaml.read_text(encoding="utf-8")) or {}).get(
        "stages", {}
    )
    return {
        name: [
            next(iter(entry)) if isinstance(entry, dict) else str(entry)
            for key in ("outs", "metrics", "plots")
            for entry in stage.get(key) or []
        ]
        for name, stage in stages.items()
    }


def pipeline_outputs(dvc_yaml: Path = Path("dvc.yaml")) -> set[str]:
    """Files the pipeline writes (they change on every run, so they do not make a tree dirty).

    Each stage's outs, metrics and plots, dvc.lock, and the .gitignore files DVC keeps
    beside cached outputs.
    """
    paths = {LOCK_FILE}
    for outputs in stage_outputs(dvc_yaml).values():
        for path in outputs:
            paths.add(path)
            parent = Path(path).parent
            paths.add((parent / ".gitignore").as_posix() if parent != Path() else ".gitignore")
    return paths


def uncommitted(outputs: set[str]) -> list[str]:
    """Changed, staged or untracked (not ignored) files git sees, other than `outputs`."""
    # only this project's folder counts (it may live inside a larger repository); git
    # names paths from the repository's top, outputs are named from here
    done = _git("status", "--porcelain=v1", "-z", "--untracked-files=all", "--", ".")
    prefix = _git("rev-parse", "--show-prefix").stdout.strip()
    if done.returncode != 0:
        return [f"(git status failed: {done.stderr.strip()})"]
    outputs = {prefix + out for out in outputs}
    entries = [entry for entry in done.stdout.split("\0") if entry]
    paths: list[str] = []
    skip = False
    for entry in entries:
        if skip:  # the source path of a rename
            skip = False
            continue
        status, path = entry[:2], entry[3:]
        skip = "R" in status or "C" in status
        inside = any(path == out or path.startswith(out.rstrip("/") + "/") for out in outputs)
        if not inside:
            paths.append(path)
    return sorted(paths)


def default_branch() -> str | None:
    """The ref of the team's default branch: origin's HEAD, else origin/main, else main."""
    named = _git("symbolic-ref", "--quiet", "--short", "refs/remotes/origin/HEAD")
    if named.returncode == 0 and named.stdout.strip():
        return named.stdout.strip()
    for ref in ("origin/main", "origin/master", "main", "master"):
        if _git("rev-parse", "--verify", "--quiet", ref + "^{commit}").returncode == 0:
            return ref
    return None


def raw_data_changes(raw: Path) -> str | None:
    """Why the raw data is not the version its .dvc file (in git) records, or None."""
    from .data_sync import DataSyncError, file_md5, recorded_md5

    dvc_file = raw.with_name(raw.name + ".dvc")
    if not raw.is_file() or not dvc_file.is_file():
        return None  # validate, which ran before, said what is missing
    try:
        if file_md5(raw) != recorded_md5(dvc_file):
            return f"{raw} differs from the version {dvc_file} records (not `dvc add`-ed and committed)"
    except DataSyncError as error:
        return str(error)
    return None


def release_problems(raw: Path) -> list[str]:
    """Why this workspace is not a release: dirty tree, commit not on the default branch."""
    commit = head_commit()
    if commit is None:
        return ["this is not a git repository with a commit"]
    problems = []
    changed = uncommitted(pipeline_outputs())
    if changed:
        shown = ", ".join(changed[:5]) + (
            f" and {len(changed) - 5} more" if len(changed) > 5 else ""
        )
        problems.append(f"uncommitted changes: {shown}")
    data = raw_data_changes(raw)
    if data:
        problems.append(data)
    branch = default_branch()
    if branch is None:
        problems.append("no default branch found (origin/HEAD, origin/main or main)")
    elif _git("merge-base", "--is-ancestor", commit, branch).returncode != 0:
        problems.append(f"commit {commit[:12]} is not on the default branch {branch}")
    return problems


def authority(shared: bool, raw: Path) -> Authority:
    """May this run register and move aliases (see the module docstring)?"""
    name = experiment()
    if name:
        return Authority(
            False,
            f"experiment {name}: compared, not promoted (an experiment never registers a "
            "version or moves an alias)",
            f"`dvc exp apply {name}`, commit, and promote from the default branch (CI)",
        )
    if not shared:
        return Authority(True)
    problems = release_problems(raw)
    if not problems:
        return Authority(True)
    why = "; ".join(problems)
    override = override_reason()
    if override:
        return Authority(True, override=override, bypassed=why)
    return Authority(
        False,
        f"the registry is shared and this is not a release ({why}): compared only, "
        "nothing registered, no alias moved",
        "commit, push to the default branch and let CI promote (or run `make promote` on a "
        "clean checkout of it); to move the alias from here anyway, say why: "
        "`make promote OVERRIDE='reason'` (recorded in the promotion log)",
    )
