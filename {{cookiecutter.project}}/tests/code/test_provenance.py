"""Who may move a shared alias: a clean tree at a commit on the default branch (real git)."""

from __future__ import annotations

import hashlib
import subprocess
from pathlib import Path

import pytest

from {{ cookiecutter.package }} import provenance

DVC_YAML = """\
stages:
  train:
    cmd: python train.py
    outs:
      - models/model.skops
    metrics:
      - metrics/metrics.json:
          cache: false
"""
RAW = Path("data/raw/table.csv")


def git(*args: str) -> None:
    subprocess.run(
        ["git", "-c", "user.name=t", "-c", "user.email=t@example.invalid", *args],
        check=True,
        capture_output=True,
    )


@pytest.fixture
def repo(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A repository on `main` with a pipeline, tracked raw data, and one commit."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv(provenance.EXPERIMENT_ENV, raising=False)
    monkeypatch.delenv(provenance.OVERRIDE_ENV, raising=False)
    git("init", "--quiet", "--initial-branch=main")
    Path("dvc.yaml").write_text(DVC_YAML)
    Path("params.yaml").write_text("model: {max_iter: 30}\n")
    RAW.parent.mkdir(parents=True)
    RAW.write_text("id,y\n1,0\n")
    md5 = hashlib.md5(RAW.read_bytes(), usedforsecurity=False).hexdigest()
    Path(f"{RAW}.dvc").write_text(f"outs:\n- md5: {md5}\n  path: table.csv\n")
    Path("data/raw/.gitignore").write_text("/table.csv\n")
    git("add", "-A")
    git("commit", "--quiet", "-m", "first")
    return tmp_path


def test_a_clean_commit_on_main_may_move_the_shared_alias(repo: Path) -> None:
    """The pipeline's own outputs (dvc.lock, outs, metrics, DVC's .gitignore) are not changes."""
    Path("dvc.lock").write_text("schema: '2.0'\n")
    Path("metrics").mkdir()
    Path("metrics/metrics.json").write_text("{}")
    Path("models").mkdir()
    Path("models/.gitignore").write_text("/model.skops\n")
    assert provenance.release_problems(RAW) == []
    assert provenance.authority(shared=True, raw=RAW).may_move


def test_a_dirty_tree_compares_and_says_how_to_promote(repo: Path) -> None:
    """An edited params.yaml or an untracked source file: compare only, naming the files."""
    Path("params.yaml").write_text("model: {max_iter: 31}\n")
    Path("extra.py").write_text("x = 1\n")
    authority = provenance.authority(shared=True, raw=RAW)
    assert not authority.may_move
    assert "uncommitted changes: extra.py, params.yaml" in (authority.refusal or "")
    assert "make promote OVERRIDE=" in (authority.compared_only() or "")
    # the embedded registry is this machine's own: it may move
    assert provenance.authority(shared=False, raw=RAW).may_move


def test_raw_data_must_be_the_version_git_records(repo: Path) -> None:
    RAW.write_text("id,y\n1,1\n")
    assert any("differs from the version" in p for p in provenance.release_problems(RAW))


def test_a_commit_off_the_default_branch_compares(repo: Path) -> None:
    git("checkout", "--quiet", "-b", "feature")
    Path("params.yaml").write_text("model: {max_iter: 31}\n")
    git("commit", "--quiet", "-am", "more trees")
    (problem,) = provenance.release_problems(RAW)
    assert "is not on the default branch main" in problem


def test_an_override_is_explicit(repo: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """With PROMOTION_OVERRIDE the move is allowed, and what it stepped over is kept for the log."""
    Path("params.yaml").write_text("model: {max_iter: 31}\n")
    monkeypatch.setenv(provenance.OVERRIDE_ENV, "hotfix, reviewed by Ana")
    authority = provenance.authority(shared=True, raw=RAW)
    assert authority.may_move
    assert authority.override == "hotfix, reviewed by Ana"
    assert "params.yaml" in (authority.bypassed or "")


def test_an_experiment_never_moves_an_alias(repo: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Not even with the embedded registry, nor with an override."""
    monkeypatch.setenv(provenance.EXPERIMENT_ENV, "exp-1")
    monkeypatch.setenv(provenance.OVERRIDE_ENV, "please")
    for shared in (True, False):
        authority = provenance.authority(shared=shared, raw=RAW)
        assert not authority.may_move
        assert (authority.refusal or "").startswith("experiment exp-1: compared, not promoted")
