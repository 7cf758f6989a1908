"""docs/architecture.md stays true where a claim is checkable: the files and tests it names."""

from __future__ import annotations

import re

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
