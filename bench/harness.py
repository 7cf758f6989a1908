"""What every benchmark shares: the figure record, the table, a project baked the way a user's
is, and running one benchmark file on its own.

Benchmarks measure the code a user gets: they bake the template with cookiecutter into their
work directory and import or run the baked package, never template files copied by hand (the
template's sources hold Jinja that only a bake renders).
"""

from __future__ import annotations

import argparse
import importlib
import os
import subprocess
import sys
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
# Full mlflow (`mlflow models serve`, `mlflow server`) lives in its own environment, which
# `make venv` builds beside .venv; BENCH_SERVER_VENV points elsewhere.
SERVER_VENV = Path(os.environ.get("BENCH_SERVER_VENV", ROOT / ".venv-server"))
QUIET = {
    "MLFLOW_DISABLE_TELEMETRY": "true",
    "DO_NOT_TRACK": "true",
    "DVC_NO_ANALYTICS": "1",
    "GX_ANALYTICS_ENABLED": "false",
}

Figure = dict[str, Any]
Runner = Callable[[Path, bool], list[Figure]]


def figure(
    name: str,
    value: float,
    unit: str,
    note: str,
    baseline: float | None = None,
    ratio: float | None = None,
) -> Figure:
    """One measured figure; `ratio` says how many times better than `baseline` we are."""
    return {
        "name": name,
        "value": value,
        "unit": unit,
        "baseline": baseline,
        "ratio": ratio,
        "note": note,
    }


def table(figures: list[Figure]) -> str:
    """Figures as an aligned text table with their notes."""
    lines = [f"{'figure':<44} {'value':>14} {'unit':<6} {'baseline':>12} {'ratio':>8}"]
    for f in figures:
        baseline = f"{f['baseline']:,.4g}" if f.get("baseline") is not None else ""
        ratio = f"{f['ratio']:.2f}x" if f.get("ratio") is not None else ""
        lines.append(
            f"{f['name']:<44} {f['value']:>14,.4g} {f['unit']:<6} {baseline:>12} {ratio:>8}"
        )
        if f.get("note"):
            lines.append(f"    {f['note']}")
    return "\n".join(lines)


def tools_path() -> str:
    """PATH with this interpreter's tools (dvc, mlflow-skinny, uvicorn) first."""
    return f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"


@dataclass(frozen=True)
class Baked:
    """A project baked from this checkout: its directory and its package's name."""

    root: Path
    package: str

    def env(self, **extra: str) -> dict[str, str]:
        """Our tools first on PATH, telemetry off, the baked package importable, no shared
        registry: what `make` gives a command inside the project."""
        env = {**os.environ, **QUIET, "PATH": tools_path(), "PYTHONPATH": str(self.root / "src")}
        env.pop("MLFLOW_TRACKING_URI", None)
        return {**env, **extra}

    def run(self, *command: str, env: dict[str, str] | None = None) -> str:
        """Run a command in the project; a failure stops the benchmark with what it printed."""
        done = subprocess.run(
            list(command),
            cwd=self.root,
            env=env or self.env(),
            capture_output=True,
            text=True,
            check=False,
        )
        if done.returncode != 0:
            raise RuntimeError(
                f"`{' '.join(command)}` exited {done.returncode} in {self.root}:\n"
                f"{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
            )
        return done.stdout

    def python(self, code: str, *args: str) -> str:
        """Run Python source in the project with its package importable; return its stdout."""
        return self.run(sys.executable, "-c", code, *args)

    def module(self, name: str, *args: str) -> str:
        """`python -m <package> <name> ...` in the project (the project's own CLI)."""
        return self.run(sys.executable, "-m", self.package, name, *args)

    def repro(self) -> None:
        """`dvc repro`: validate, train, evaluate, gate, promote: a champion in the registry."""
        self.run("dvc", "repro")

    def sample_rows(self, out: Path, rows: int, seed: int) -> Path:
        """`rows` rows of the project's own sample generator (its contract, with the label)."""
        self.module("sample-data", "--out", str(out), "--rows", str(rows), "--seed", str(seed))
        return out


def bake(workdir: Path, **answers: str) -> Baked:
    """Bake this checkout with cookiecutter (defaults unless `answers`) under `workdir`."""
    from cookiecutter.main import cookiecutter

    old_path = os.environ.get("PATH", "")
    os.environ["PATH"] = tools_path()  # the post-generation hook runs git and dvc
    try:
        project = Path(
            cookiecutter(str(ROOT), no_input=True, extra_context=answers, output_dir=str(workdir))
        )
    finally:
        os.environ["PATH"] = old_path
    packages = [p.parent.name for p in (project / "src").glob("*/__init__.py")]
    if len(packages) != 1:
        raise RuntimeError(f"{project}: expected one package under src/, found {packages}")
    return Baked(project, packages[0])


def mlflow_command() -> Path:
    """The full mlflow's command line tool (for `mlflow models serve`)."""
    command = SERVER_VENV / "bin" / "mlflow"
    if not command.is_file():
        raise RuntimeError(
            f"{command} not found: `make venv` builds {SERVER_VENV.name} (full mlflow), or set "
            "BENCH_SERVER_VENV to an environment that has it"
        )
    return command


def run_standalone(run: Runner) -> int:
    """`python bench/bench_x.py [--smoke]`: run one benchmark in a temporary directory."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--smoke", action="store_true", help="tiny sizes: does it still run?")
    args = parser.parse_args()
    smoke = args.smoke or os.environ.get("BENCH_SMOKE") == "1"
    with tempfile.TemporaryDirectory() as tmp:
        print(table(run(Path(tmp), smoke)))
    return 0


def import_baked(src: Path, *names: str) -> list[ModuleType]:
    """Import modules of a baked package from `src`, never an earlier bake's copy.

    `make bench` runs the benchmarks in one process and each bakes the same package name
    into its own folder: the modules cached by an earlier benchmark (whose folder is gone)
    are forgotten first.
    """
    package = names[0].split(".")[0]
    for cached in [m for m in sys.modules if m == package or m.startswith(package + ".")]:
        del sys.modules[cached]
    sys.path.insert(0, str(src))
    try:
        return [importlib.import_module(name) for name in names]
    finally:
        sys.path.remove(str(src))
