"""`make score ENGINE=spark` on a real local Spark session: the pandas path's guarantees.
`make test-spark` runs them (not `make test`: they start a JVM and need the spark extra).

One session (`local[2]`) serves the module: `score-spark` run in this process reuses it, as
it reuses a notebook's, so the JVM starts once; the S3 test runs `make score ENGINE=spark`
as a user does, in its own processes.

Needs the spark extra (`make install EXTRAS=spark`) and a Java runtime; without them these
tests are skipped, saying which is missing. The S3 test needs an S3 endpoint in
AWS_ENDPOINT_URL and a bucket in SCORE_TEST_BUCKET (the template's tests start moto's).
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pandas as pd
import pytest

from tests.code import test_score_refusals as refusals
from tests.code.test_bad_input import CASES
from tests.tiny_contract import tiny_contract, tiny_table

pytest.importorskip(
    "pyspark", reason="the spark extra is not installed (make install EXTRAS=spark)"
)
if shutil.which("java") is None:
    pytest.skip("no Java runtime for Spark (apt-get install openjdk-17-jre-headless)",
                allow_module_level=True)  # fmt: skip

DATA_ERROR = 4
LABEL_ONLY = refusals.LABEL_ONLY
make_score = refusals.make_score
tiny_project = refusals.tiny_project  # the module's tiny champion, registered in its own store
# the files Spark reads: the pandas path refuses the others before reading a row, and so
# does the Spark path (the same structure checks, on the driver)
SPARK = {"duplicate_ids", "mixed_types", "numbers_as_strings", "renamed_column", "unknown_category"}


def spark_score(project: Path, data: str, out: str, env: dict[str, str] | None = None):
    """`make score ENGINE=spark`, in the environment `make_score` gives the pandas path."""
    return make_score(project, data, out, "ENGINE=spark", env=env)


@pytest.fixture(scope="module")
def spark():
    """The module's local Spark session (two cores), stopped at the end."""
    from {{ cookiecutter.package }}.score_spark import spark_session

    session = spark_session("local[2]")
    yield session
    session.stop()


@pytest.fixture
def score(tiny_project, monkeypatch, capsys):
    """`python -m <package> <command> --data --out` in this process, in the tiny project:
    its exit code and what it printed to stderr."""
    from {{ cookiecutter.package }}.cli import main

    monkeypatch.chdir(tiny_project)
    for name in ("MLFLOW_TRACKING_URI", "SPARK_MASTER"):
        monkeypatch.delenv(name, raising=False)

    def run(command: str, data: Path, out: Path) -> tuple[int, str]:
        capsys.readouterr()
        code = main([command, "--data", str(data), "--out", str(out)])
        return code, capsys.readouterr().err

    return run


def problem_lines(stderr: str) -> list[str]:
    """The refused rows' lines of a `score` error, without where they were (chunk or split)."""
    lines = [line.strip() for line in stderr.splitlines() if line.startswith("  ")]
    return [line.split("rows ", 1)[-1] for line in lines if "rows " in line]


@pytest.mark.parametrize("case", sorted(set(CASES) - LABEL_ONLY - SPARK))
def test_spark_refuses_a_file_that_is_not_a_table_before_starting(case, score, tmp_path):
    """Exit 4 and the validate test's words (the pandas path's checks, on the driver)."""
    writer, words = CASES[case]
    data = writer(tmp_path)
    code, err = score("score-spark", data, tmp_path / "spark")
    assert code == DATA_ERROR, err
    assert str(data) in err
    for word in words:
        assert word in err, f"{word!r} not in:\n{err}"
    assert "on Spark" not in err  # refused before a model was loaded or a session used
    assert not (tmp_path / "spark").exists()


@pytest.mark.parametrize("case", sorted(SPARK))
def test_spark_refuses_the_rows_the_pandas_path_refuses(case, spark, score, tmp_path):
    """A corrupt table the executors check: the same rows refused, in the same words."""
    writer, words = CASES[case]
    data = writer(tmp_path)
    pandas_code, pandas_err = score("score", data, tmp_path / "pandas.parquet")
    assert pandas_code == DATA_ERROR, pandas_err
    assert problem_lines(pandas_err), pandas_err
    code, err = score("score-spark", data, tmp_path / "spark")
    assert code == DATA_ERROR, err
    assert "rows that do not meet contract.yaml; nothing was scored" in err
    assert sorted(problem_lines(err)) == sorted(problem_lines(pandas_err)), err
    assert all(word in err for word in words), err
    assert not (tmp_path / "spark").exists()


def test_scores_match_the_pandas_path_and_carry_the_run(spark, score, tmp_path):
    """The same ids and scores as the pandas path; version, sha256 and input fingerprint recorded;
    a refused run afterwards leaves that output as it was."""
    data = tmp_path / "good.csv"
    tiny_table(300, seed=3).drop(columns="left").to_csv(data, index=False)
    assert score("score", data, tmp_path / "pandas.parquet")[0] == 0
    out = tmp_path / "scored"
    code, err = score("score-spark", data, out)
    assert code == 0, err
    expected = pd.read_parquet(tmp_path / "pandas.parquet")
    scored = pd.read_parquet(out).sort_values("account").reset_index(drop=True)
    expected = expected.sort_values("account").reset_index(drop=True)
    assert scored["account"].tolist() == expected["account"].astype(str).tolist()
    assert (scored["score"] - expected["score"]).abs().max() < 1e-12
    assert len(list(out.glob("part-*.parquet"))) >= 1  # partitioned: part files of a directory
    inside = json.loads((out / "_score.json").read_text())
    beside = json.loads((tmp_path / "scored.json").read_text())
    pandas_side = json.loads((tmp_path / "pandas.json").read_text())
    assert inside["data_sha256"] == beside["data_sha256"] == pandas_side["data_sha256"]
    assert inside["model_sha256"] == beside["model_sha256"] == pandas_side["model_sha256"]
    assert inside["model_version"] == pandas_side["model_version"]
    assert inside["rows"] == 300
    before = sorted((p.name, p.read_bytes()) for p in out.iterdir())
    bad = CASES["unknown_category"][0](tmp_path)
    assert score("score-spark", bad, out)[0] == DATA_ERROR
    assert sorted((p.name, p.read_bytes()) for p in out.iterdir()) == before


def test_an_executor_refuses_a_model_file_that_is_not_the_recorded_one(spark, tmp_path):
    """Each executor checks the shipped file's sha256 itself (serve.loading), on real Spark."""
    from {{ cookiecutter.package }}.config import load_config
    from {{ cookiecutter.package }}.data import conform, features_and_target
    from {{ cookiecutter.package }}.model_io import environment, save_model
    from {{ cookiecutter.package }}.pipeline.train import build_pipeline
    from {{ cookiecutter.package }}.registry import ModelRef
    from {{ cookiecutter.package }}.score_spark import PartitionJob, check_and_score, output_schema

    contract = tiny_contract()
    x, y = features_and_target(conform(tiny_table(200), contract), contract)
    params = load_config(Path(__file__).resolve().parents[2] / "params.yaml").model
    model = tmp_path / "executor-test.skops"
    sha256 = save_model(build_pipeline(contract, params).fit(x, y), model)
    tags = environment() | {"contract_fingerprint": contract.fingerprint}
    spark.sparkContext.addFile(str(model))
    table = spark.createDataFrame(tiny_table(40).drop(columns="left"))
    results = {}
    for name, recorded in (("recorded", sha256), ("tampered", "0" * 64)):
        job = PartitionJob(contract, ModelRef("1", recorded, tags), model.name, 0.5, (0, 1), False)
        schema = output_schema(table.schema["account"])
        results[name] = table.mapInPandas(check_and_score(job), schema).collect()
    tampered = results["tampered"]
    assert tampered
    assert all(r["failure"] == "model" for r in tampered), tampered
    assert all("sha256" in r["problem"] for r in tampered), tampered
    recorded = results["recorded"]
    assert len(recorded) == 40
    assert all(r["problem"] is None for r in recorded), recorded[:3]
    assert sorted(r["account"] for r in recorded) == sorted(tiny_table(40)["account"])


@pytest.mark.skipif(
    not (os.environ.get("AWS_ENDPOINT_URL") and os.environ.get("SCORE_TEST_BUCKET")),
    reason="no S3 endpoint (AWS_ENDPOINT_URL) and bucket (SCORE_TEST_BUCKET)",
)
def test_s3_in_s3_out(tiny_project, tmp_path):
    """DATA=s3://... OUT=s3://...: read, scored and written back through the S3 endpoint."""
    import fsspec

    bucket = os.environ["SCORE_TEST_BUCKET"]
    fs = fsspec.filesystem("s3")
    data = tmp_path / "batch.parquet"
    tiny_table(120, seed=5).drop(columns="left").to_parquet(data, index=False)
    fs.put(str(data), f"{bucket}/in/batch.parquet")
    s3 = {k: v for k, v in os.environ.items() if k.startswith("AWS_")}
    done = spark_score(tiny_project, f"s3://{bucket}/in/batch.parquet",
                       f"s3://{bucket}/out/batch", s3)  # fmt: skip
    assert done.returncode == 0, done.stderr
    parts = [k for k in fs.find(f"{bucket}/out/batch") if k.endswith(".parquet")]
    scored = pd.concat(pd.read_parquet(fs.open(k, "rb")) for k in parts)
    assert sorted(scored["account"]) == sorted(pd.read_parquet(data)["account"])
    summary = json.loads(fs.cat(f"{bucket}/out/batch.json"))
    assert summary["rows"] == 120
    assert summary["data"] == f"s3://{bucket}/in/batch.parquet"
