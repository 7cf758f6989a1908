"""Reject answers that would bake a broken project, saying what to type instead."""

from __future__ import annotations

import keyword
import re
import sys

# Answers arrive through tojson, so quotes and backslashes cannot break this file.
ANSWERS: dict[str, str] = {
    "project": {{ cookiecutter.project | tojson }},
    "package": {{ cookiecutter.package | tojson }},
}
# Choice answers (dataset, model, ...) need no check here: cookiecutter refuses a value
# that is not among the choices before any hook runs.

# Names that would shadow a module the project imports.
TAKEN = {
    "dvc", "mlflow", "pandas", "numpy", "sklearn", "scipy", "skops", "yaml", "fastapi",
    "uvicorn", "pydantic", "great_expectations", "tests", "test", "src", "setup",
}  # fmt: skip


def problems(answers: dict[str, str]) -> list[str]:
    """Every reason the answers cannot be baked, as instructions."""
    found = []
    project, package = answers["project"], answers["package"]
    if not project.strip() or project.strip() in (".", ".."):
        found.append("project: give a directory name, e.g. churn-model")
    elif re.search(r"[/\\\x00]", project) or project.startswith("."):
        found.append(f"project: {project!r} must be one directory name, without / or \\ and not hidden; e.g. churn-model")
    if not package.isidentifier() or keyword.iskeyword(package) or not package.isascii():
        ascii_name = (package or project).encode("ascii", "ignore").decode().lower()
        suggestion = re.sub(r"\W+", "_", ascii_name).strip("_") or "model"
        if keyword.iskeyword(suggestion):
            suggestion = f"{suggestion}_model"
        if suggestion[0].isdigit():
            suggestion = f"m_{suggestion}"
        found.append(f"package: {package!r} is not a Python identifier; type e.g. {suggestion}")
    elif package != package.lower():
        found.append(f"package: use lower case, e.g. {package.lower()}")
    elif package in TAKEN:
        found.append(f"package: {package!r} would shadow a library the project uses; e.g. {package}_model")
    return found


def main() -> int:
    """Exit 1 with every problem listed, so one retry is enough."""
    found = problems(ANSWERS)
    for line in found:
        print(f"error: {line}", file=sys.stderr)
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main())
