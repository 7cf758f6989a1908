"""docs/architecture.md stays true where a claim is checkable: the files and tests it names."""

from __future__ import annotations

import ast
import re
from pathlib import Path

from .conftest import TEMPLATE

DOC = TEMPLATE / "docs" / "architecture.md"
PROJECT = TEMPLATE / "{{cookiecutter.project}}"
PACKAGE = PROJECT / "src" / "{{cookiecutter.package}}"
TICKED = re.compile(r"`([^`]+)`")


def section(title: str) -> str:
    """The text under a `## title` heading, up to the next one."""
    text = DOC.read_text(encoding="utf-8")
    start = text.index(f"## {title}")
    end = text.find("\n## ", start + 1)
    return text[start : end if end > 0 else None]


def package_rows() -> list[tuple[str, str]]:
    """(first cell, second cell) of each row of the generated package's module table."""
    rows = []
    for line in section("The generated package").splitlines():
        cells = [cell.strip() for cell in line.strip().strip("|").split(" | ")]
        if line.startswith("| `") and len(cells) == 2:
            rows.append((cells[0], cells[1]))
    return rows


def test_every_test_the_page_names_exists():
    """`tests/...py` and `tests/...py::test_name` name a template or generated test that exists."""
    named = {t for t in TICKED.findall(DOC.read_text(encoding="utf-8")) if t.startswith("tests/")}
    assert named
    for token in named:
        path, _, test = token.partition("::")
        candidates = [TEMPLATE / path, PROJECT / path]
        found = [c for c in candidates if c.is_file() or (path.endswith("/") and c.is_dir())]
        assert found, f"architecture.md names {path}, which neither level has"
        if test and found[0].is_file():
            assert f"def {test}(" in found[0].read_text(encoding="utf-8"), token


def test_every_module_in_the_package_table_exists():
    """A module or folder in the table's first column is in the generated package; the
    modules a folder's row lists are in that folder."""
    rows = package_rows()
    assert len(rows) > 10
    for first, second in rows:
        folder = ""
        for token in TICKED.findall(first):
            if token.endswith("/"):
                folder = token
                assert (PACKAGE / folder).is_dir(), token
            elif token.endswith(".py"):
                assert (PACKAGE / folder / token).is_file(), f"{folder}{token}"
        if re.fullmatch(r"`\w+/`", first):  # a folder's row lists its modules
            for name in re.findall(r"`(\w+\.py)`", second):
                assert (PACKAGE / folder / name).is_file(), f"{folder}{name} in the {first} row"


def test_every_generated_module_is_on_the_page():
    """A module added to the package is described: its file name appears in the section."""
    text = section("The generated package")
    missing = [
        path.relative_to(PACKAGE).as_posix()
        for path in sorted(PACKAGE.rglob("*.py"))
        if path.stem not in ("__init__", "__main__")
        and f"`{path.name}`" not in text
        and f"`{path.relative_to(PACKAGE).as_posix()}`" not in text
    ]
    assert not missing, f"add to docs/architecture.md's package table: {missing}"


# --- the shape of a bake: floors that run one way, small modules, short functions -----------

MAX_MODULE_LINES = 450
MAX_FUNCTION_LINES = 80
# Floors, lowest first. The shared core (every top-level module not listed, and `tasks/`) is
# floor 0; a module may import its own floor and those below. Stages (`pipeline/`) are leaves.
FLOORS = {
    "reports": 1,
    "asgi": 1,
    "serve": 2,
    "monitoring": 2,
    "rollout": 3,
    "pipeline": 3,
    "deploy": 4,
    "testing": 5,  # fault injection wraps the production app
    "cli": 5,
    "__main__": 5,
    "score": 5,
    "score_spark": 5,
    "draft_contract": 5,
    "draft_gates": 5,
    "data_push": 5,
}
# The one import that runs back up: the server hosts the shadow mirror, whose counters are
# the rollout's (docs/architecture.md says so).
UPWARD = {("serve.app", "rollout.shadow")}


def floor(module: str) -> int:
    return FLOORS.get(module.split(".")[0], 0)


def package_imports(package: Path) -> set[tuple[str, str]]:
    """(importer, imported) for every relative import in the package, lazy ones included."""
    names = {}
    for path in package.rglob("*.py"):
        parts = path.relative_to(package).with_suffix("").parts
        names[path] = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
    modules = set(names.values())
    edges = set()
    for path, name in names.items():
        here = name.split(".") if path.name == "__init__.py" else name.split(".")[:-1]
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if not isinstance(node, ast.ImportFrom):
                continue
            if not node.level:  # the package itself only relatively (its name is rendered)
                assert (node.module or "").split(".")[0] != package.name, (name, node.module)
                continue
            base = here[: len(here) - node.level + 1]
            target = ".".join([*base, *([node.module] if node.module else [])])
            submodules = {f"{target}.{a.name}".strip(".") for a in node.names}
            found = (submodules & modules) or ({target} & modules)
            edges |= {(name, other) for other in found if other != name}
    return edges


def cycles(edges: set[tuple[str, str]]) -> list[set[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    graph: dict[str, set[str]] = {}
    for a, b in edges:
        graph.setdefault(a, set()).add(b)
        graph.setdefault(b, set())
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[set[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = set()
            while True:
                w = stack.pop()
                component.add(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(component)

    for v in graph:
        if v not in index:
            visit(v)
    return found


def baked_package(project: Path) -> Path:
    return next(p for p in (project / "src").iterdir() if (p / "__init__.py").is_file())


def test_imports_run_one_way_without_circles(baked: Path):
    """No circle; nothing imports a stage; nothing imports a higher floor but the one named."""
    edges = package_imports(baked_package(baked))
    assert len(edges) > 100
    assert cycles(edges) == []
    into_stages = {(a, b) for a, b in edges if b.startswith("pipeline.") and floor(a) < 5}
    assert {(a, b) for a, b in into_stages if not a.startswith("pipeline.")} == set()
    upward = {(a, b) for a, b in edges if floor(b) > floor(a)}
    assert upward <= UPWARD, f"imports that run back up: {sorted(upward - UPWARD)}"


def test_modules_and_functions_stay_small(baked: Path):
    """No module over 450 lines and no function over 80 in the package a user reads."""
    too_long = []
    for path in sorted(baked_package(baked).rglob("*.py")):
        text = path.read_text(encoding="utf-8")
        if len(text.splitlines()) > MAX_MODULE_LINES:
            too_long.append(f"{path.name}: {len(text.splitlines())} lines")
        for node in ast.walk(ast.parse(text)):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                length = (node.end_lineno or node.lineno) - node.lineno + 1
                if length > MAX_FUNCTION_LINES:
                    too_long.append(f"{path.name}:{node.name}: {length} lines")
    assert not too_long, too_long
