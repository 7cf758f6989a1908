"""Dependencies are locked with hashes, regenerable by `make lock`, and install hash-checked.

The lock files are the generated project's `requirements/*.txt` (layered serve <- train <- dev,
plus server and installer) and the template's own `requirements-dev.txt`, which is layered on
the project's dev.txt. `make lock` and the installs reach the package index (PyPI).
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from .conftest import TEMPLATE, bake, run, tool_env

PROJECT_REQUIREMENTS = TEMPLATE / "{{cookiecutter.project}}" / "requirements"
LOCK_FILES = [*sorted(PROJECT_REQUIREMENTS.glob("*.txt")), TEMPLATE / "requirements-dev.txt"]
PIN = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==(\S+?)\s*(;[^\\]*)?$")


def logical_lines(path: Path) -> list[str]:
    """Requirement lines with their backslash continuations joined, comments dropped."""
    text = re.sub(r"\\\n", " ", path.read_text(encoding="utf-8"))
    return [
        line.split(" #")[0].strip()
        for line in text.splitlines()
        if line.strip() and not line.startswith("#")
    ]


def uv() -> str:
    found = shutil.which("uv", path=str(Path(sys.executable).parent)) or shutil.which("uv")
    if found is None:
        pytest.fail("uv is not installed: run `make venv` (requirements-dev.txt pins it)")
    return found


def git(project: Path, *args: str) -> str:
    done = run(["git", "-c", "user.name=t", "-c", "user.email=t@example.invalid", *args], project)
    return done.stdout


@pytest.mark.parametrize("path", LOCK_FILES, ids=lambda p: p.name)
def test_every_pin_carries_a_hash(path: Path) -> None:
    """Each requirement is `name==version` with sha256 hashes; the rest are -r includes."""
    lines = logical_lines(path)
    pinned = 0
    for line in lines:
        if line.startswith("-r "):
            assert (path.parent / line.split()[1]).is_file(), f"{path.name}: {line}"
            continue
        requirement, *options = re.split(r"\s+(?=--)", line)
        assert PIN.match(requirement), f"{path.name}: not an exact pin: {requirement!r}"
        hashes = [o for o in options if o.startswith("--hash=sha256:")]
        assert hashes and len(hashes) == len(options), f"{path.name}: {requirement} has no hash"
        assert all(re.fullmatch(r"--hash=sha256:[0-9a-f]{64}", h) for h in hashes), requirement
        pinned += 1
    assert pinned > 0, path.name


def test_layers_and_the_template_agree() -> None:
    """serve <- train <- dev <- the template's requirements-dev.txt: one version per package.

    A layer repeats a package only where the one below pins it under a narrower marker
    (tzdata: Windows-only for pandas, everywhere for arrow), and then at the same version."""
    seen: dict[str, tuple[str, str, bool]] = {}
    for name in ("serve.txt", "train.txt", "dev.txt", "../../requirements-dev.txt"):
        path = (PROJECT_REQUIREMENTS / name).resolve()
        for line in logical_lines(path):
            match = PIN.match(line.split(" --")[0])
            if not match:
                continue
            key = re.sub(r"[-_.]+", "-", match.group(1)).lower()
            if key in seen:
                where, version, marked = seen[key]
                assert marked, f"{key} pinned in {where} and again in {path.name}"
                assert version == match.group(2), (
                    f"{key}: {version} in {where}, {match.group(2)} in {path.name}"
                )
            seen[key] = (path.name, match.group(2), match.group(3) is not None)
    assert {"fastapi", "dvc", "pytest", "cookiecutter", "zizmor", "tzdata"} <= set(seen)


@pytest.fixture(scope="module")
def committed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    project = bake(tmp_path_factory.mktemp("lock"))
    if not (project / ".git").exists():
        git(project, "init", "--quiet")
    git(project, "add", "-A")
    git(project, "commit", "--quiet", "--no-verify", "-m", "baked")
    return project


def lock_env() -> dict[str, str]:
    env = tool_env()
    env["PATH"] = f"{Path(uv()).parent}:{env['PATH']}"
    return env


@pytest.mark.slow
def test_make_lock_regenerates_the_same_files(committed: Path) -> None:
    """`make lock` from pyproject.toml's ranges reproduces the committed locks byte for byte."""
    done = run(["make", "lock", 'UPGRADE=x"; touch pwned; echo "'], committed, env=lock_env())
    assert "requirements/serve.txt:" in done.stdout
    assert not (committed / "pwned").exists()
    assert git(committed, "status", "--porcelain") == "", git(committed, "diff", "--stat")


@pytest.mark.slow
def test_make_lock_that_cannot_keep_a_pin_changes_nothing(committed: Path) -> None:
    """A range that excludes a pinned version fails clearly; every lock file stays as it was."""
    pyproject = committed / "pyproject.toml"
    original = pyproject.read_text()
    pyproject.write_text(original.replace('"numpy>=1.26,<3"', '"numpy>=1.26,<2"'))
    try:
        done = run(["make", "lock"], committed, check=False, env=lock_env())
    finally:
        pyproject.write_text(original)
    assert done.returncode != 0
    assert "make lock: uv pip compile failed" in done.stderr and "numpy" in done.stderr
    assert git(committed, "status", "--porcelain") == ""


def test_install_is_hash_checked(committed: Path) -> None:
    """make install: the locks with --require-hashes (uv and pip), the package itself apart."""
    script = run(["make", "-n", "install"], committed).stdout
    assert "--require-hashes -r requirements/installer.txt" in script
    dev = [line for line in script.splitlines() if "requirements/dev.txt" in line]
    assert dev and all(line.count("--require-hashes -r requirements/dev.txt") == 2 for line in dev)
    editable = [line for line in script.splitlines() if "-e ." in line]
    assert editable and all("--require-hashes" not in line for line in editable)
    assert "--require-hashes -r requirements/serve.txt" in (committed / "Dockerfile").read_text()


@pytest.mark.slow
@pytest.mark.parametrize("installer", ["pip", "uv"])
def test_fresh_venv_installs_the_serving_lock(
    committed: Path, tmp_path: Path, installer: str
) -> None:
    """A new venv installs requirements/serve.txt with --require-hashes and imports it."""
    venv = tmp_path / "venv"
    run([sys.executable, "-m", "venv", str(venv)], tmp_path)
    python = venv / "bin" / "python"
    lock = committed / "requirements" / "serve.txt"
    if installer == "pip":
        command = [
            str(python),
            "-m",
            "pip",
            "install",
            "--quiet",
            "--require-hashes",
            "-r",
            str(lock),
        ]
    else:
        command = [
            uv(),
            "pip",
            "install",
            "--quiet",
            "--python",
            str(python),
            "--require-hashes",
            "-r",
            str(lock),
        ]
    run(command, tmp_path, timeout=600)
    done = run(
        [
            str(python),
            "-c",
            "import fastapi, sklearn, skops, uvicorn, pandas; print(sklearn.__version__)",
        ],
        tmp_path,
    )
    assert done.stdout.strip() == re.search(r"^scikit-learn==(\S+)", lock.read_text(), re.M).group(
        1
    )


@pytest.mark.slow
def test_a_wrong_hash_is_refused(committed: Path, tmp_path: Path) -> None:
    """A lock whose hash does not match the download installs nothing."""
    lock = tmp_path / "serve.txt"
    text = (committed / "requirements" / "serve.txt").read_text()
    lines = text.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("six=="))
    block = [lines[start], f"    --hash=sha256:{'0' * 64}"]
    lock.write_text("\n".join(block) + "\n")
    venv = tmp_path / "venv"
    run([sys.executable, "-m", "venv", str(venv)], tmp_path)
    done = subprocess.run(
        [
            str(venv / "bin" / "python"),
            "-m",
            "pip",
            "install",
            "--no-deps",
            "--require-hashes",
            "-r",
            str(lock),
        ],
        capture_output=True,
        text=True,
        check=False,
        timeout=300,
    )
    assert done.returncode != 0 and "DO NOT MATCH" in done.stderr, done.stderr
    assert not list((venv / "lib").glob("python*/site-packages/six.py"))
