"""The next version of your data, on purpose: `make data-update DATA=path`.

`dvc repro` re-records the hash of a raw file that changed under it (its `.dvc` file is
rewritten before any stage runs), so a file replaced by accident would train the next model
without anyone having said so. The raw file's md5 is therefore also recorded beside it, in
`<raw>.recorded`, by `make contract` and `make data-update` only; `validate` refuses a raw
file that does not match that record and says which command accepts it.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import shutil
import subprocess
from pathlib import Path

from .artifacts import write_text
from .config import load_config
from .contract import load_contract
from .errors import DataError, ServiceError

CHUNK = 1 << 20


def record_path(raw: Path) -> Path:
    """Where the accepted md5 of `raw` is kept (committed to git beside `raw.dvc`)."""
    return raw.with_name(raw.name + ".recorded")


def file_md5(path: Path) -> str:
    """The md5 DVC 3 records for a file (`hash: md5`): of its bytes, as they are."""
    digest = hashlib.md5(usedforsecurity=False)
    with path.open("rb") as handle:
        while block := handle.read(CHUNK):
            digest.update(block)
    return digest.hexdigest()


def record(raw: Path) -> str:
    """Accept `raw` as it is now: write its md5 to the record; return the md5."""
    md5 = file_md5(raw)
    write_text(record_path(raw), json.dumps({"path": raw.name, "md5": md5}, indent=2) + "\n")
    return md5


def unrecorded_change(raw: Path) -> str | None:
    """Why `raw` is not the file that was accepted, or None (also when nothing was recorded)."""
    path = record_path(raw)
    if not path.is_file() or not raw.is_file():
        return None
    recorded = json.loads(path.read_text(encoding="utf-8")).get("md5")
    found = file_md5(raw)
    if found == recorded:
        return None
    return (
        f"{raw} is not the file that was recorded (md5 {found}, recorded {recorded} in {path}); "
        "nobody said this data should change. If it should: "
        f"`make data-update DATA={raw}` (validates it, `dvc add`s it, records it), then "
        f"`dvc repro`. If not: `git checkout {raw}.dvc && dvc checkout {raw}` brings back the "
        "recorded file"
    )


def update(source: Path, raw: Path, contract_path: Path) -> list[str]:
    """Validate `source` against the contract, make it the raw data, `dvc add` and record it.

    Returns the lines to print. Nothing changes unless the new file meets the contract.
    """
    from .suite import validate_file

    if source.suffix.lower() != raw.suffix.lower():
        raise DataError(
            f"{source}: a {source.suffix or 'suffix-less'} file, but params.yaml data.raw is "
            f"{raw} ({raw.suffix}); convert it, or draft again with `make contract DATA=...`"
        )
    if raw.is_file() and source.resolve() != raw.resolve() and file_md5(source) == file_md5(raw):
        return [f"data-update: {source} is the same as {raw}: nothing to do"]
    report, _ = validate_file(source, load_contract(contract_path))
    if not report["success"]:
        raise DataError(
            f"{source} does not meet {contract_path}; nothing was changed:\n  - "
            + "\n  - ".join(report["failures"])
        )
    if source.resolve() != raw.resolve():
        raw.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(source, raw)
    done = subprocess.run(["dvc", "add", "--quiet", str(raw)], check=False)
    if done.returncode != 0:
        raise ServiceError(
            f"`dvc add {raw}` failed (its message is above); the record was not changed"
        )
    md5 = record(raw)
    return [
        f"data-update: {raw} is now {source} ({report['rows']} rows, md5 {md5}); it meets "
        f"{contract_path}",
        "data-update: next, `dvc repro` (validate -> ... -> promote), then commit the new "
        f"version: git add {raw}.dvc {record_path(raw)} dvc.lock && git commit -m 'Data: ...'",
        "data-update: with a DVC remote, `make push` (or `dvc push`) so CI and the team get it",
    ]


def main(argv: list[str] | None = None) -> int:
    """Make a new file the pipeline's raw data, on purpose: validated, `dvc add`ed, recorded."""
    parser = argparse.ArgumentParser(prog="data-update", description=main.__doc__)
    parser.add_argument("--data", type=Path, required=True, help="the new CSV or Parquet file")
    parser.add_argument("--contract", type=Path, default=Path("contract.yaml"))
    args = parser.parse_args(argv)
    raw = Path(load_config().data.raw)
    print("\n".join(update(args.data, raw, args.contract)))
    return 0
