"""`make bundle`: export registry versions so a server (a container) needs no registry."""

from __future__ import annotations

import argparse
import shutil
from pathlib import Path

from ..artifacts import write_json
from ..registry import Registry, RegistryError
from .loading import BUNDLE_ALIASES, write_bundle

ALIASES = ("champion", "previous", "challenger")


def export(registry: Registry, out: Path, aliases: tuple[str, ...] = ALIASES) -> dict[str, str]:
    """Write out/<version>/ for each alias that points somewhere, and out/aliases.json."""
    found = {alias: ref for alias in aliases if (ref := registry.get_alias(alias)) is not None}
    if "champion" not in found:
        raise RegistryError("the registry has no champion: run `dvc repro` first")
    staging = out.with_name(f".{out.name}.tmp")
    shutil.rmtree(staging, ignore_errors=True)
    for ref in {ref.version: ref for ref in found.values()}.values():
        write_bundle(registry, ref, staging / ref.version)
    mapping = {alias: ref.version for alias, ref in found.items()}
    write_json(staging / BUNDLE_ALIASES, mapping)
    shutil.rmtree(out, ignore_errors=True)  # replaced whole, so no stale version lingers
    staging.rename(out)
    return mapping


def main(argv: list[str] | None = None) -> int:
    """Export the champion, previous and challenger versions to a folder."""
    parser = argparse.ArgumentParser(prog="bundle", description=main.__doc__)
    parser.add_argument("--out", type=Path, default=Path("bundles"))
    parser.add_argument("--registry", type=Path, default=Path("registry"))
    parser.add_argument("--model-name", default=None)
    args = parser.parse_args(argv)
    mapping = export(Registry(args.model_name, root=args.registry), args.out)
    listed = ", ".join(f"{alias} v{version}" for alias, version in mapping.items())
    print(f"bundle: {listed} -> {args.out}/")
    return 0
