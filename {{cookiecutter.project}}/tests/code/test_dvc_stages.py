"""dvc.yaml and the code agree, so `dvc repro` reruns a stage whenever what it reads changes.

Each stage declares the pipeline files its code names (paths.py spells them once) and the
package modules it imports; a stale entry fails too. Modules that only read, write, type or
fail (PLUMBING) compute nothing a stage writes and need not rerun it; the values of
params.yaml are tracked by each stage's `params`.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest
import yaml

import {{ cookiecutter.package }} as package
from {{ cookiecutter.package }} import paths
from tests.conftest import ROOT

PACKAGE = Path(package.__file__).parent
PLUMBING = {"errors", "typed", "config", "artifacts", "paths", "records", "registry"}
STAGES = yaml.safe_load((ROOT / "dvc.yaml").read_text(encoding="utf-8"))["stages"]


def source(module: str) -> Path:
    """The file of a module named relative to the package (`pipeline.train`)."""
    path = PACKAGE.joinpath(*module.split("."))
    return path / "__init__.py" if path.is_dir() else path.with_suffix(".py")


def imported(module: str) -> dict[str, set[str]]:
    """Module-level imports from the package: {module: names imported from it}."""
    found: dict[str, set[str]] = {}
    here = module.split(".")[:-1]
    for node in ast.parse(source(module).read_text(encoding="utf-8")).body:
        if not isinstance(node, ast.ImportFrom) or node.level == 0:
            continue
        base = here[: len(here) - (node.level - 1)] + (
            node.module.split(".") if node.module else []
        )
        for alias in node.names:
            target = ".".join([*base, alias.name])
            if not source(target).is_file():  # a name from the module, not a submodule
                target = ".".join(base)
            found.setdefault(target, set()).add(alias.name)
    return found


def closure(module: str) -> set[str]:
    """The package modules `module` needs at import time, itself included."""
    seen: set[str] = set()
    todo = [module]
    while todo:
        name = todo.pop()
        if name not in seen and name:
            seen.add(name)
            todo.extend(imported(name))
    return seen - {""}


def named_files(module: str) -> set[Path]:
    """The paths.py files a stage's module imports (directly, or as re-exported by records)."""
    names = set().union(*imported(module).values()) - {"PARAMS"}  # dvc tracks it by `params`
    return {getattr(paths, n) for n in names if isinstance(getattr(paths, n, None), Path)}


def declared(stage: dict) -> tuple[set[Path], set[str]]:
    """(data files, package modules) a dvc stage lists in deps, outs, metrics and plots."""
    entries = [*stage.get("deps", [])]
    for key in ("outs", "metrics", "plots"):
        entries += [next(iter(e)) if isinstance(e, dict) else e for e in stage.get(key, [])]
    prefix = f"src/{package.__name__}/"
    modules = {
        e[len(prefix) : -len(".py")].replace("/", ".")
        for e in entries
        if e.startswith(prefix) and e.endswith(".py")
    }
    files = {Path(e) for e in entries if not e.startswith(("src/", "${")) and "/" in e}
    return files, modules


def covers(named: set[Path], file: Path) -> bool:
    """A declared file is named as is, under a named folder, or as a page beside a named file."""
    return any(file == p or p in file.parents or file.with_suffix(p.suffix) == p for p in named)


@pytest.mark.parametrize("stage", list(STAGES))
def test_a_stage_declares_the_files_its_code_names(stage):
    module = f"pipeline.{stage}"
    named = named_files(module)
    files, _ = declared(STAGES[stage])
    assert named, f"{module} names no file of paths.py"
    for path in named:
        assert path in files or any(path in f.parents for f in files), (
            f"dvc.yaml stage {stage}: {path} is read or written by {module} but not declared"
        )
    stale = sorted(str(f) for f in files if not covers(named, f))
    assert not stale, f"dvc.yaml stage {stage} declares files its code does not name: {stale}"


@pytest.mark.parametrize("stage", list(STAGES))
def test_a_stage_depends_on_the_modules_it_runs(stage):
    module = f"pipeline.{stage}"
    needed = {m for m in closure(module) if m.split(".")[-1] not in PLUMBING | {"__init__"}}
    _, modules = declared(STAGES[stage])
    missing = sorted(needed - modules)
    assert not missing, f"dvc.yaml stage {stage}: add src/.../{missing} to deps"
    stale = sorted(modules - closure(module))
    assert not stale, f"dvc.yaml stage {stage} depends on modules it does not import: {stale}"
