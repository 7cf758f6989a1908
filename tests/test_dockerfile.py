"""The generated Dockerfile passes hadolint and keeps its basics."""

from __future__ import annotations

from pathlib import Path

from .generated_files import (
    run,
    tool,
)


def test_hadolint(baked: Path) -> None:
    """hadolint finds nothing in the Dockerfile."""
    done = run([tool("hadolint"), "Dockerfile"], cwd=baked)
    assert done.returncode == 0, done.stdout + done.stderr


def test_dockerfile_basics(baked: Path) -> None:
    """Base pinned by digest, serving pins installed, non-root, health check, one OMP thread."""
    text = (baked / "Dockerfile").read_text()
    assert "@sha256:" in text and "-slim-bookworm" in text
    assert "requirements/serve.txt" in text
    assert "USER 10001:10001" in text and "HEALTHCHECK" in text and "/healthz" in text
    assert "OMP_NUM_THREADS=1" in text
    assert text.count("FROM ") == 2
