#!/usr/bin/env python3
"""Regenerate requirements/*.txt from pyproject.toml's ranges, locked with hashes (`make lock`).

Each file is `uv pip compile --generate-hashes --universal` of its pyproject groups,
constrained to the versions the files pin today, so nothing moves unless it is named:
`make lock UPGRADE="numpy pandas"` (or UPGRADE=all). serve <- train <- dev are layered:
a file includes the one below it with `-r` and lists only what that one does not.
Every file is compiled before any is written, so a failure leaves the previous files.
`make add PKG=lightgbm [GROUP=serve|train|dev]` adds a requirement to pyproject.toml's group
and re-locks; pyproject.toml is changed only if the lock succeeds.
Standard library only: it runs before (and without) the project's environment.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
import tomllib
from dataclasses import dataclass
from pathlib import Path

REQUIREMENTS = Path("requirements")
# `name==version`, as written by uv or by hand (markers, hashes and comments follow it)
PIN = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==([^\s;\\#]+)", re.MULTILINE)


@dataclass(frozen=True)
class Lock:
    name: str
    groups: tuple[str, ...]  # "dependencies" or an optional-dependencies key
    base: str | None  # the file this one includes with -r
    header: str


LOCKS = (
    # the build backend too: `pip install --no-build-isolation .` (make install, the image)
    # then builds the package with this hash-checked setuptools, never one fetched unchecked
    Lock("serve", ("dependencies", "build-system"), None, "serving, and the build backend"),
    Lock("train", ("dependencies", "train"), "serve", "training: serving plus the pipeline tools"),
    Lock("dev", ("dependencies", "train", "dev"), "train", "development: training plus test tools"),
    Lock(
        "server",
        ("server",),
        None,
        "the shared registry server, `make registry-server`, in its own environment: full\n"
        "# mlflow requires pyarrow<26, which train.txt's pyarrow cannot meet",
    ),
    Lock(
        "spark",
        ("dependencies", "train", "spark"),
        "train",
        "PySpark for `make score ENGINE=spark`, on top of training; installed by\n"
        "# `make install EXTRAS=spark` only",
    ),
    Lock(
        "installer",
        ("installer",),
        None,
        "the uv that `make install` bootstraps when none is on PATH",
    ),
)


class LockError(Exception):
    """Something `make lock` cannot do; the message says what to change."""


def normalise(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def chain(path: Path) -> str:
    """A requirements file's text, then the text of the files it includes with -r."""
    if not path.is_file():
        return ""
    text = path.read_text(encoding="utf-8")
    for included in re.findall(r"^-r\s+(\S+)", text, re.MULTILINE):
        text += "\n" + chain(path.parent / included)
    return text


def pins(text: str) -> dict[str, str]:
    """The `name==version` pins in a requirements text (the first one of a name wins)."""
    found: dict[str, str] = {}
    for name, version in PIN.findall(text):
        found.setdefault(normalise(name), version)
    return found


def heads(text: str) -> set[str]:
    """Each entry's requirement line (`name==version ; marker`), as uv writes it."""
    return {line.rstrip(" \\") for line in text.splitlines() if PIN.match(line)}


def without(text: str, below: set[str]) -> str:
    """uv's output less the entries the locks below already cover.

    Covered: the same line, or the same version pinned there with no marker. An entry the
    layer below holds only under a narrower marker stays, or pip would meet an unpinned
    requirement (tzdata is Windows-only for pandas, everywhere for arrow)."""
    kept_lines: list[str] = []
    keep = True
    for line in text.splitlines(keepends=True):
        if not line.startswith((" ", "\t")):
            head = line.rstrip(" \\\n")
            keep = head not in below and head.split(";")[0].strip() not in below
        if keep:
            kept_lines.append(line)
    return "".join(kept_lines)


def requirements_of(pyproject: dict, groups: tuple[str, ...]) -> list[str]:
    project = pyproject["project"]
    out: list[str] = []
    for group in groups:
        if group == "dependencies":
            out += project["dependencies"]
        elif group == "build-system":
            out += pyproject["build-system"]["requires"]
        elif group in project.get("optional-dependencies", {}):
            out += project["optional-dependencies"][group]
        else:
            raise LockError(f"pyproject.toml: [project.optional-dependencies] has no {group!r}")
    return out


def python_floor(pyproject: dict) -> str:
    spec = pyproject["project"]["requires-python"]
    match = re.fullmatch(r">=\s*(\d+\.\d+)", spec.strip())
    if match is None:
        raise LockError(f"pyproject.toml: requires-python is {spec!r}; expected '>=X.Y'")
    return match.group(1)


def compile_lock(
    uv: str,
    wanted: list[str],
    python: str,
    keep: dict[str, str],
    below: str,
    header: str,
    base: str | None,
) -> str:
    """The text of one lock file: our header, the -r of its base, then uv's output."""
    with tempfile.TemporaryDirectory() as tmp:
        inputs = Path(tmp, "requirements.in")
        inputs.write_text("\n".join(wanted) + "\n")
        constraints = Path(tmp, "constraints.txt")
        constraints.write_text("".join(f"{n}=={v}\n" for n, v in sorted(keep.items())))
        command = [
            uv, "pip", "compile", str(inputs), "--constraint", str(constraints),
            "--generate-hashes", "--universal", "--python-version", python,
            "--no-header", "--no-annotate", "--quiet",
        ]  # fmt: skip
        done = subprocess.run(command, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise LockError(f"uv pip compile failed for {header}:\n{done.stderr}")
    head = (
        f"# Generated by `make lock` ({header}).\n"
        "# Exact versions with every distribution's sha256; installed with --require-hashes.\n"
        "# Do not edit: change the ranges it is generated from and run `make lock`.\n"
    )
    return head + (f"-r {base}\n" if base else "") + without(done.stdout, heads(below))


def write_all(files: dict[Path, str]) -> None:
    """Replace each file atomically, after every one was compiled."""
    for path, text in files.items():
        tmp = path.with_name(path.name + ".tmp")
        tmp.write_text(text, encoding="utf-8")
        os.replace(tmp, path)
        print(f"{path}: {len(PIN.findall(text))} pins")


def lock_project(uv: str, upgrade: set[str]) -> dict[Path, str]:
    """The project's layered locks, from pyproject.toml's groups."""
    pyproject = tomllib.loads(Path("pyproject.toml").read_text(encoding="utf-8"))
    python = python_floor(pyproject)
    written: dict[str, str] = {}
    for lock in LOCKS:
        path = REQUIREMENTS / f"{lock.name}.txt"
        # the base was just regenerated: its pins hold here; our own old pins are kept
        base = compiled_chain(written, lock.base)
        keep = kept(pins(chain(path)), upgrade) | pins(base)
        header = f"from pyproject.toml: {lock.header}"
        ref = f"{lock.base}.txt" if lock.base else None
        wanted = requirements_of(pyproject, lock.groups)
        written[lock.name] = compile_lock(uv, wanted, python, keep, base, header, ref)
    return {REQUIREMENTS / f"{name}.txt": text for name, text in written.items()}


def lock_files(
    uv: str, inputs: list[Path], base: Path, out: Path, python: str, upgrade: set[str]
) -> dict[Path, str]:
    """One lock of requirement files (`.in`), layered on another lock file."""
    wanted: list[str] = []
    for path in inputs:
        if not path.is_file():
            raise LockError(f"{path}: no such requirements file")
        wanted += [line for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    below = chain(base)
    keep = kept(pins(chain(out)), upgrade) | pins(below)
    header = "from " + " and ".join(p.name for p in inputs) + f", on top of {base.name}"
    ref = os.path.relpath(base, out.parent)
    return {out: compile_lock(uv, wanted, python, keep, below, header, ref)}


# what `make add` accepts: a name, extras, a version range; no URL, path, quote or marker
REQUIREMENT = re.compile(
    r"([A-Za-z0-9](?:[A-Za-z0-9._-]*[A-Za-z0-9])?)(\[[A-Za-z0-9._,-]+\])?"
    r"((?:\s*(?:==|!=|<=|>=|~=|<|>)\s*[A-Za-z0-9.*+!-]+\s*,?)*)"
)
# `make add GROUP=...` -> the pyproject array it writes to (serve: the image installs it too)
GROUPS = {"serve": "dependencies", "train": "train", "dev": "dev"}


def add_to_pyproject(text: str, requirements: list[str], group: str) -> str:
    """pyproject.toml's text with `requirements` appended to `group`'s array, comments kept."""
    if group not in GROUPS:
        raise LockError(f"GROUP={group!r}: choose one of {', '.join(GROUPS)}")
    key = GROUPS[group]
    existing = {
        normalise(REQUIREMENT.match(r).group(1))  # type: ignore[union-attr]
        for r in requirements_of(tomllib.loads(text), tuple(GROUPS.values()))
        if REQUIREMENT.match(r)
    }
    lines: list[str] = []
    for requirement in requirements:
        match = REQUIREMENT.fullmatch(requirement.strip())
        if match is None:
            raise LockError(
                f"{requirement!r} is not a package requirement: give a name and optionally "
                "a range, e.g. lightgbm or 'lightgbm>=4.5,<5'"
            )
        if normalise(match.group(1)) in existing:
            raise LockError(f"{match.group(1)} is already in pyproject.toml")
        lines.append(f'    "{match.group(0)}",\n')
    section = "[project]" if key == "dependencies" else "[project.optional-dependencies]"
    start = text.find(f"\n{section}\n")
    opening = re.compile(rf"^{re.escape(key)}\s*=\s*\[", re.MULTILINE).search(text, start + 1)
    if start < 0 or opening is None:
        raise LockError(f"pyproject.toml: no {key} = [...] under {section}")
    closing = text.find("\n]", opening.end())
    if closing < 0:
        raise LockError(f"pyproject.toml: the {key} array has no closing ] on a line of its own")
    return text[: closing + 1] + "".join(lines) + text[closing + 1 :]


def add(uv: str, requirements: list[str], group: str) -> dict[Path, str]:
    """pyproject.toml with the requirements added, and the locks compiled from it."""
    pyproject = Path("pyproject.toml")
    before = pyproject.read_text(encoding="utf-8")
    after = add_to_pyproject(before, requirements, group)
    pyproject.write_text(after, encoding="utf-8")
    try:
        files = lock_project(uv, set())
    except BaseException:
        pyproject.write_text(before, encoding="utf-8")  # a failed lock changes nothing
        raise
    return files


def kept(old: dict[str, str], upgrade: set[str]) -> dict[str, str]:
    """Today's pins less the ones to upgrade."""
    return {} if "all" in upgrade else {n: v for n, v in old.items() if n not in upgrade}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--upgrade",
        default="",
        help="package names to move to their newest allowed version, or 'all'",
    )
    # without these: the project's own locks; with them: one lock of .in files on top of BASE
    parser.add_argument("--inputs", nargs="+", type=Path, help="requirement files to lock")
    parser.add_argument("--base", type=Path, help="the lock they are layered on (-r)")
    parser.add_argument("--out", type=Path, help="the lock file to write")
    parser.add_argument("--python", default="3.11", help="the oldest Python to lock for")
    parser.add_argument("--add", default="", help="requirements to add to pyproject.toml first")
    parser.add_argument(
        "--group", default="serve", help=f"where --add puts them: {', '.join(GROUPS)}"
    )
    args = parser.parse_args(argv)
    uv = shutil.which("uv")
    if uv is None:
        print(
            "make lock: no uv on PATH; run `make install` (it bootstraps the pinned uv)",
            file=sys.stderr,
        )
        return 1
    upgrade = {normalise(n) for n in args.upgrade.replace(",", " ").split()}
    try:
        if args.add.strip():
            files = add(uv, args.add.split(), args.group)
        elif args.inputs:
            if args.base is None or args.out is None:
                raise LockError("--inputs needs --base and --out")
            files = lock_files(uv, args.inputs, args.base, args.out, args.python, upgrade)
        else:
            files = lock_project(uv, upgrade)
    except LockError as error:
        print(f"make lock: {error}", file=sys.stderr)
        return 1
    write_all(files)
    if args.add.strip():
        print(f"added to pyproject.toml ({args.group}): {args.add.strip()}; now run `make install`")
    return 0


def compiled_chain(written: dict[str, str], name: str | None) -> str:
    """The text of an already compiled lock, then of the locks it includes."""
    if name is None:
        return ""
    lock = next(lock for lock in LOCKS if lock.name == name)
    return written[name] + "\n" + compiled_chain(written, lock.base)


if __name__ == "__main__":
    sys.exit(main())
