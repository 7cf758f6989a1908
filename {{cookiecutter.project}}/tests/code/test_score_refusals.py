"""`make score` refuses every corrupt file the validate stage refuses, in the same words.

The corruptions are the validate tests' own (tests/code/test_bad_input.py `CASES`), scored
with a champion trained on the tiny contract they are written for. Scoring checks chunks with
vectorised checks and asks Great Expectations only about a chunk they do not pass; these
tests hold that to the rule that nothing GE refuses is scored. They judge the code, not this
project's table, so they live with the code tests.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from {{ cookiecutter.package }}.config import load_config
from {{ cookiecutter.package }}.contract_checks import passes
from {{ cookiecutter.package }}.data import conform, features_and_target, load_table
from {{ cookiecutter.package }}.errors import DataError
from {{ cookiecutter.package }}.expectations import row_level_specs
from {{ cookiecutter.package }}.model import ESTIMATORS
from {{ cookiecutter.package }}.model_io import environment, save_model
from {{ cookiecutter.package }}.pipeline.train import build_pipeline
from {{ cookiecutter.package }}.registry import Registry
from {{ cookiecutter.package }}.suite import prepare, run_suite
from tests.code.test_bad_input import CASES
from tests.tiny_contract import tiny_contract, tiny_table, write_project

PROJECT = Path(__file__).resolve().parents[2]
DATA_ERROR = 4  # errors.DataError's exit code


@pytest.fixture(scope="module")
def tiny_project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A directory with the tiny contract, this project's Makefile and a tiny champion."""
    root = tmp_path_factory.mktemp("tiny-score")
    write_project(root)
    shutil.copy(PROJECT / "Makefile", root / "Makefile")
    contract = tiny_contract()
    # the project's own estimator (what the loader trusts), trained on the tiny table
    x, y = features_and_target(conform(tiny_table(500), contract), contract)
    model = root / "model.skops"
    settings = load_config(PROJECT / "params.yaml").model
    if settings.kind not in ESTIMATORS:  # a regression project's ridge: its linear classifier
        settings = settings.model_copy(update={"kind": "logistic_regression"})
    save_model(build_pipeline(contract, settings).fit(x, y), model)
    tags = environment() | {"contract_fingerprint": contract.fingerprint}
    # the embedded store `score` in `root` reads by default, never a shared server a CI job
    # names in MLFLOW_TRACKING_URI (a tiny test model must not reach the team's registry)
    store = root / "registry"
    registry = Registry(root=store, tracking_uri=f"sqlite:///{(store / 'mlflow.db').resolve()}")
    ref = registry.register(model, tags)
    registry.move_alias("champion", ref.version, expected=None)
    return root


def make_score(
    project: Path, data: Path | str, out: Path | str, *args: str, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """`make score DATA=... OUT=... [args]` in `project`, with this interpreter's environment
    (and `env`'s variables)."""
    env = {
        **(env or {}),
        "PATH": f"{Path(sys.executable).parent}:/usr/bin:/bin",
        "PYTHONPATH": str(PROJECT / "src") + ":" + str(PROJECT),
        "HOME": str(project),
    }
    return subprocess.run(
        ["make", "--no-print-directory", "score", f"DATA={data}", f"OUT={out}",
         f"VENV={Path(sys.executable).parent.parent}", *args],
        cwd=project, env=env, capture_output=True, text=True, check=False, timeout=300,
    )  # fmt: skip


# the label is not an input to scoring: a file whose only defect is a missing label scores
LABEL_ONLY = {"null_label"}


@pytest.mark.parametrize("case", sorted(set(CASES) - LABEL_ONLY))
def test_corrupt_file_is_refused_by_make_score(case, tiny_project, tmp_path):
    """Exit code 4, the file and the validate test's words in the error, no output written."""
    writer, words = CASES[case]
    data = writer(tmp_path)
    out = tmp_path / "scores.parquet"
    done = make_score(tiny_project, data, out)
    assert done.returncode != 0, done.stdout
    assert f"Error {DATA_ERROR}" in done.stderr, done.stderr  # make reports the exit code
    assert str(data) in done.stderr
    for word in words:
        assert word in done.stderr, f"{word!r} not in:\n{done.stderr}"
    assert "Traceback" not in done.stderr
    assert not out.exists()
    assert not list(tmp_path.glob(".scores.parquet.*"))


@pytest.mark.parametrize("case", sorted(LABEL_ONLY))
def test_a_defect_in_the_label_alone_does_not_stop_scoring(case, tiny_project, tmp_path):
    """Scoring reads the id and the features; the label's checks belong to validate."""
    writer, _ = CASES[case]
    data = writer(tmp_path)
    out = tmp_path / "scores.csv"
    done = make_score(tiny_project, data, out)
    assert done.returncode == 0, done.stderr
    assert len(pd.read_csv(out)) == len(pd.read_csv(data))


@pytest.mark.parametrize("case", sorted(CASES))
def test_vectorised_checks_never_pass_what_great_expectations_refuses(case, tmp_path):
    """Wherever the file is a table, `passes` is True only if every GE expectation passes."""
    writer, _ = CASES[case]
    data = writer(tmp_path)
    try:
        table = load_table(data)
    except DataError:
        return  # not a table at all: refused before any check (the make test shows how)
    contract = tiny_contract()
    specs = row_level_specs(contract)
    frame, _ = prepare(table, contract)
    outcomes = run_suite(frame, contract, [spec.build() for spec in specs])
    if passes(frame, specs):
        assert all(c.success for c in outcomes), [c.describe() for c in outcomes if not c.success]


def test_a_clean_table_passes_without_great_expectations():
    """The vectorised checks accept a good table: clean chunks never pay for GE."""
    contract = tiny_contract()
    frame, checks = prepare(tiny_table(500), contract)
    assert all(c.success for c in checks)
    assert passes(frame, row_level_specs(contract))


def test_an_unknown_output_suffix_is_refused_before_any_work(tiny_project, tmp_path):
    """OUT must name a format score writes; the error names OUT and the choices."""
    data = tmp_path / "good.csv"
    tiny_table(50).drop(columns="left").to_csv(data, index=False)
    done = make_score(tiny_project, data, tmp_path / "scores.json")
    assert done.returncode != 0
    for word in ("OUT=", "scores.json", ".csv", ".parquet"):
        assert word in done.stderr, done.stderr
    assert not (tmp_path / "scores.json").exists()


@pytest.mark.parametrize("suffix", [".csv", ".parquet"])
def test_output_format_follows_the_suffix(suffix, tiny_project, tmp_path):
    """OUT=x.csv is CSV text, OUT=x.parquet is Parquet: the same ids and scores either way."""
    data = tmp_path / "good.csv"
    tiny_table(50).drop(columns="left").to_csv(data, index=False)
    out = tmp_path / f"scores{suffix}"
    done = make_score(tiny_project, data, out)
    assert done.returncode == 0, done.stderr
    scored = pd.read_csv(out) if suffix == ".csv" else pd.read_parquet(out)
    assert scored["account"].astype(str).tolist() == pd.read_csv(data)["account"].tolist()
    assert scored["score"].between(0, 1).all()
    assert out.read_bytes().startswith(b"PAR1") == (suffix == ".parquet")
    assert (tmp_path / "scores.json").is_file()


@pytest.mark.parametrize(("command", "backend"), [("score", "system"), ("gate", "mimalloc")])
def test_score_streams_on_the_allocator_that_returns_freed_chunks(command, backend):
    """`score` sets Arrow's allocator before Arrow loads (mimalloc keeps the pages of freed
    chunks); other commands keep Arrow's default."""
    code = (
        "import contextlib, io, os, sys\n"
        "os.environ.pop('ARROW_DEFAULT_MEMORY_POOL', None)\n"
        "from {{ cookiecutter.package }}.cli import main\n"
        "with contextlib.suppress(SystemExit), contextlib.redirect_stdout(io.StringIO()):\n"
        f"    main([{command!r}, '--help'])\n"
        "import pyarrow\n"
        "print(pyarrow.default_memory_pool().backend_name)\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          env={**os.environ, "PYTHONPATH": str(PROJECT / "src")}, check=True)  # fmt: skip
    assert done.stdout.split()[-1] == backend
