"""`make data`: the raw data set present, and exactly the version its `.dvc` file records.

From the DVC remote when one is configured; else a sample data set is regenerated (the
generator is deterministic) and checked against the recorded hash; a team's own data
cannot be regenerated, so without a remote this says what to configure.
"""

from __future__ import annotations

import argparse
import hashlib
import subprocess
import sys
from pathlib import Path

import yaml

from .config import load_config
from .errors import DataError
from .sample_data import generate

REMOTE_HELP = (
    "configure the DVC remote that holds it: `make remote URL=s3://bucket/path` (also gs://, "
    "azure://, ssh:// or a directory; credentials come from the environment or "
    "`.dvc/config.local`, never from the repository), then `make pull`"
)


class DataSyncError(DataError):
    """The raw data cannot be made present and verified; the message says what to do."""


def recorded_md5(dvc_file: Path) -> str:
    """The md5 a `.dvc` file records for its single output."""
    try:
        outs = yaml.safe_load(dvc_file.read_text(encoding="utf-8"))["outs"]
        return str(outs[0]["md5"])
    except (OSError, yaml.YAMLError, KeyError, IndexError, TypeError) as error:
        raise DataSyncError(f"{dvc_file}: not a DVC file with one output ({error})") from None


def file_md5(path: Path) -> str:
    """The md5 DVC 3 computes for a file: of its bytes."""
    digest = hashlib.md5(usedforsecurity=False)
    with path.open("rb") as handle:
        while block := handle.read(1 << 20):
            digest.update(block)
    return digest.hexdigest()


def default_remote() -> str | None:
    """The default DVC remote's name (`.dvc/config` or `.dvc/config.local`), or None."""
    found = subprocess.run(["dvc", "remote", "default"], capture_output=True, text=True)
    name = found.stdout.strip()
    return name if found.returncode == 0 and name else None


def dvc(*args: str) -> None:
    """Run a DVC command, its output shown; DataSyncError if it fails."""
    if subprocess.run(["dvc", *args]).returncode != 0:
        raise DataSyncError(f"`dvc {' '.join(args)}` failed (its message is above)")


def regenerate(raw: Path, dvc_file: Path, contract: Path, params: Path) -> None:
    """Write the sample again from contract + params; keep it only if the hash matches."""
    settings = load_config(params).data
    rows, seed = settings.sample_rows, settings.seed
    staged = raw.with_name(f".{raw.name}.regenerated")
    generate(contract, staged, rows, seed)
    expected, got = recorded_md5(dvc_file), file_md5(staged)
    if got != expected:
        staged.unlink()
        raise DataSyncError(
            f"regenerated {raw} has md5 {got}, but {dvc_file} records {expected}: the "
            f"generator (sample_data.py), {contract} or {params} data.sample_rows/seed changed "
            "since the data was recorded. Restore them, or record the new data with "
            f"`dvc add {raw}` and commit {dvc_file}; to share the exact data, {REMOTE_HELP}"
        )
    staged.replace(raw)
    dvc("commit", "--force", "--quiet", str(dvc_file))  # into the cache, so `make push` has it


def ensure(raw: Path, sample: bool, contract: Path, params: Path) -> str:
    """Make `raw` present and verified; say how. DataSyncError when it cannot be."""
    dvc_file = raw.with_name(raw.name + ".dvc")
    if not dvc_file.is_file():
        if sample:
            raise DataSyncError(f"{dvc_file} is missing: run `make setup` to create and track it")
        raise DataSyncError(f"no data yet ({dvc_file} is missing): `make contract DATA=path`")
    if raw.is_file():
        if file_md5(raw) == recorded_md5(dvc_file):
            return f"{raw} matches {dvc_file}"
        raise DataSyncError(
            f"{raw} differs from the version {dvc_file} records: if you changed it on "
            f"purpose, `dvc add {raw}` and commit {dvc_file}; else `dvc checkout {dvc_file}`"
        )
    remote = default_remote()
    if remote:
        try:
            dvc("pull", "--quiet", str(dvc_file))
            return f"{raw} pulled from DVC remote {remote!r}"
        except DataSyncError as error:
            if not sample:
                raise DataSyncError(f"{error}: check the remote's credentials") from None
            # a sample is the same bytes either way (checked below), e.g. before the first push
            print(f"data: {error}; regenerating the sample instead", file=sys.stderr)
    if sample:
        regenerate(raw, dvc_file, contract, params)
        how = "the remote could not supply it" if remote else "no DVC remote configured"
        return f"{raw} regenerated and verified against {dvc_file} ({how})"
    raise DataSyncError(f"{raw} is not here and no DVC remote is configured: {REMOTE_HELP}")


def main(argv: list[str] | None = None) -> int:
    """Pull the raw data, or regenerate and verify a sample data set."""
    parser = argparse.ArgumentParser(prog="data", description=main.__doc__)
    parser.add_argument("--sample", action="store_true", help="the data set can be regenerated")
    parser.add_argument("--contract", type=Path, default=Path("contract.yaml"))
    parser.add_argument("--params", type=Path, default=Path("params.yaml"))
    args = parser.parse_args(argv)
    raw = Path(load_config(args.params).data.raw)
    print(f"data: {ensure(raw, args.sample, args.contract, args.params)}")
    return 0
