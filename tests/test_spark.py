"""`make score ENGINE=spark` end to end in a bake: a real local Spark session (the machine's
Java, PySpark from requirements-dev), real S3 (moto's server on loopback).

The baked project's own tests (tests/spark/test_score_spark.py) do the work: the same rows
refused as the pandas path for every corruption the validate tests use, the same scores,
the run's version, sha256 and fingerprint in the output, a refused run that leaves the
previous output, an executor that refuses a model file it was not promised, and
DATA=s3://... OUT=s3://... through the endpoint. Here they run with the S3 endpoint set,
and none may be skipped: a missing Java or PySpark fails this test instead of hiding.
"""

from __future__ import annotations

import re
import shutil

import pytest

from .conftest import bake, run, tool_env
from .servers import moto_s3, s3_env

BUCKET = "team-scores"


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory):
    return bake(tmp_path_factory.mktemp("spark"))


def test_spark_scoring_end_to_end_on_a_local_session_and_s3(project):
    """Every Spark scoring test of the bake passes on real Spark against real S3."""
    assert shutil.which("java"), "Spark needs Java: apt-get install openjdk-17-jre-headless"
    import pyspark  # noqa: F401  (in requirements-dev: a missing one fails, never skips)

    with moto_s3(bucket=BUCKET) as endpoint:
        env = tool_env(project) | s3_env(endpoint) | {"SCORE_TEST_BUCKET": BUCKET}
        env["PYTHONPATH"] = f"{project / 'src'}:{project}"
        done = run(
            ["python", "-m", "pytest", "tests/spark/test_score_spark.py", "-q", "-rs", "-p",
             "no:cacheprovider"],
            cwd=project, env=env, check=False, timeout=1200,
        )  # fmt: skip
    assert done.returncode == 0, done.stdout[-6000:] + done.stderr[-3000:]
    summary = done.stdout.strip().splitlines()[-1]
    assert "skipped" not in summary, done.stdout[-3000:]
    passed = re.search(r"(\d+) passed", summary)
    assert passed and int(passed.group(1)) >= 12, summary
