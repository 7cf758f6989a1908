"""`make score ENGINE=spark`: batch predictions on a Spark session, for tables one machine
cannot hold or that live in object storage.

The same guarantees as `score.py`, on every executor: each loads the model file shipped to it
through `serve.loading.load_pinned` (the recorded sha256, the trusted types, the training
environment's library versions, checked where the model is loaded); each checks its rows with
`score.ChunkChecker` (the contract's vectorised row checks, Great Expectations deciding and
explaining a batch they do not pass), so the rows the pandas path refuses are refused here,
in the same words. CSV text is typed per batch as pandas types it (`pd.read_csv`), so a
column reads as the same dtype both ways. Any refused row stops the run and nothing is
written; a model an executor refuses stops it too. The output is a directory of Parquet
part files (one per input split) written beside OUT and renamed into place, with the
model's version and sha256 and the input's fingerprint in `_score.json` inside it and in
`<out>.json` beside it, as the pandas path writes. Spark's console progress bar and a line
per phase report progress.

`SPARK_MASTER` names a cluster (`spark://host:7077`, `yarn`, `k8s://...`); without it, and
outside `spark-submit`, the session is `local[*]`. Where data lives (s3://...) is in
`spark_io.py`.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Callable, Generator, Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from . import spark_io
from .config import load_config
from .contract import Contract, load_contract
from .errors import DataError, ExpectedError, RefusedError
from .registry import ModelRef, Registry
from .score import (
    MAX_REPORTED,
    ChunkChecker,
    ScoreSummary,
    iter_chunks,
    load_champion,
    refused_rows,
    scored_columns,
)
from .serve.schema import target_labels

BATCH_ROWS = 20_000  # rows per Arrow batch handed to the checks and the model
PANDAS_3_WARNING = "PySpark does not yet fully support pandas"
SIDECAR = "_score.json"  # inside the output: Spark's readers skip names starting with _


@dataclass(frozen=True)
class PartitionJob:
    """What each executor needs to check and score its splits (pickled to it)."""

    contract: Contract
    ref: ModelRef
    model_file: str  # the name the model file was shipped under (SparkContext.addFile)
    threshold: float
    labels: tuple[Any, Any]  # negative, positive, in the table's own values
    csv: bool  # CSV text arrives as strings: typed per batch as pandas types it


def output_schema(id_field: Any) -> Any:
    """The columns `check_and_score` yields: the scored row, or why a batch was refused."""
    from pyspark.sql.types import DoubleType, StringType, StructField, StructType

    text = StringType()
    return StructType([
        id_field,
        StructField("score", DoubleType()),
        StructField("label", text),
        StructField("model_version", text),
        StructField("problem", text),  # set on the rows that report a refusal
        StructField("failure", text),  # "data" (exit 4) or "model" (exit 5)
    ])  # fmt: skip


_MODELS: dict[str, Any] = {}  # a reused Python worker loads a version once


def _executor_model(job: PartitionJob) -> Any:
    """The model file Spark shipped here, loaded after the same checks the server makes."""
    from pyspark import SparkFiles

    from .serve.loading import load_pinned

    if job.ref.sha256 not in _MODELS:
        path = Path(SparkFiles.get(job.model_file))
        predictor, _ = load_pinned(None, job.ref, job.contract, path)
        _MODELS[job.ref.sha256] = predictor.model
    return _MODELS[job.ref.sha256]


def _typed(batch: pd.DataFrame, job: PartitionJob) -> pd.DataFrame:
    """A batch as pandas would have read it: CSV strings re-read by `pd.read_csv`."""
    if not job.csv:
        return batch
    return pd.read_csv(io.StringIO(batch.to_csv(index=False)))


def _refusal(job: PartitionJob, lines: list[str], failure: str) -> pd.DataFrame:
    return pd.DataFrame({
        job.contract.id: pd.Series([None] * len(lines), dtype=object),
        "score": np.nan, "label": None, "model_version": None,
        "problem": lines, "failure": failure,
    })  # fmt: skip


def check_and_score(
    job: PartitionJob,
) -> Callable[[Iterator[pd.DataFrame]], Iterator[pd.DataFrame]]:
    """The function `mapInPandas` runs on each split: check each batch, then score it."""

    def run(batches: Iterator[pd.DataFrame]) -> Iterator[pd.DataFrame]:
        from pyspark import TaskContext
        from threadpoolctl import threadpool_limits

        context = TaskContext.get()
        where = f"split {context.partitionId() if context else 0}"
        try:
            model = _executor_model(job)
        except ExpectedError as error:
            yield _refusal(job, [f"{where}: {error}"], "model")
            return
        checker, first_row = ChunkChecker(job.contract), 0
        features = job.contract.feature_columns
        # Spark runs a task per core: one model thread each, or OpenMP threads fight for them
        with threadpool_limits(limits=1):
            for batch in batches:
                checked = checker.check(_typed(batch, job), first_row)
                first_row += len(batch)
                if checked.inputs is None or checked.problems:
                    yield _refusal(job, [f"{where}, {p}" for p in checked.problems], "data")
                    continue
                scores = model.predict_proba(checked.inputs[features])[:, 1]
                columns = scored_columns(job.contract, checked.inputs, scores, job.labels,
                                         job.threshold, job.ref)  # fmt: skip
                columns["label"] = columns["label"].astype(str)  # Spark's column is text
                yield pd.DataFrame(columns | {"problem": None, "failure": None})

    return run


def refuse_other_tasks(ref: ModelRef) -> None:
    """RefusedError for a multiclass or regression version: Spark writes a binary score only."""
    from .serve.loading import task_of

    task = task_of(ref)
    if task != "binary":
        raise RefusedError(
            f"version {ref.version} is a {task} model: ENGINE=spark writes a binary model's "
            f"score and label only so far; score it with the pandas engine (leave out ENGINE)"
        )


def table_kind(path: Path) -> str:
    """The kind of a file or a directory of part files, "csv" or "parquet"; its structure
    checked as the pandas path checks a file (readable, the header, at least one row)."""
    files = spark_io.data_files(path) if path.exists() else [path]
    if not files:
        raise DataError(f"{path}: a directory with no data files; expected .csv or .parquet")
    kinds = {f.suffix.lower().replace(".pq", ".parquet") for f in files}
    if len(kinds) > 1:
        raise DataError(f"{path}: mixes {sorted(kinds)} files; expected one kind of table")
    first_rows = iter_chunks(files[0], 1_000)  # the first rows only: structure, not content
    try:
        next(first_rows)
    finally:
        if isinstance(first_rows, Generator):  # closed now, not at garbage collection
            first_rows.close()
    return "csv" if kinds == {".csv"} else "parquet"


def spark_session(master: str | None) -> Any:
    """A session on `master` (SPARK_MASTER), else on what spark-submit set, else local[*]."""
    import warnings

    from pyspark.sql import SparkSession

    # PySpark 4 warns about pandas 3 in general: our use (Arrow batches through mapInPandas)
    # is checked by tests/spark/test_score_spark.py against the pandas path
    warnings.filterwarnings("ignore", PANDAS_3_WARNING, FutureWarning)
    if master is None or master.startswith("local"):
        # a local session: its Python workers use this interpreter (and its packages), and
        # it listens on loopback only
        os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
        os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
    builder = (
        SparkSession.builder.appName(f"{__package__} score")
        .config("spark.sql.execution.arrow.maxRecordsPerBatch", str(BATCH_ROWS))
        .config("spark.sql.session.timeZone", "UTC")
        .config("spark.ui.showConsoleProgress", "true")
        .config("spark.executorEnv.PYTHONWARNINGS", f"ignore:{PANDAS_3_WARNING}:FutureWarning")
    )
    if master:
        builder = builder.master(master)
    return builder.getOrCreate()


def _read(spark: Any, location: str, kind: str) -> Any:
    reader = spark.read
    if kind == "csv":  # strings, RFC 4180 quoting; a malformed line stops the run
        reader = reader.options(header=True, inferSchema=False, escape='"', mode="FAILFAST")
        return reader.csv(location)
    return reader.parquet(location)


def _refused(data: str, rows: list[Any], count: int) -> ExpectedError:
    lines = [row["problem"] for row in rows[:MAX_REPORTED]]
    if any(row["failure"] == "model" for row in rows):
        more = count - len(lines)
        text = "\n  ".join(lines) + (f"\n  ... and {more} more" if more > 0 else "")
        return RefusedError(f"cannot score {data}: an executor refused the model:\n  {text}")
    return refused_rows(data, lines, count)


@dataclass(frozen=True)
class Source:
    """The table Spark reads: where, what kind, and its fingerprint."""

    location: str  # what Spark reads (a local path, or a URL on a cluster)
    kind: str
    sha256: str


def locate(data: str, staging: Path, cluster: bool) -> Source:
    """Stage a remote table locally (unless a cluster reads it), check it, fingerprint it."""
    if spark_io.is_remote(data) and cluster:  # the cluster reads it where it is
        first, sha256 = spark_io.remote_table(data, staging)
        return Source(spark_io.for_spark(data), table_kind(first), sha256)
    local = spark_io.stage_in(data, staging) if spark_io.is_remote(data) else Path(data)
    if not local.exists():
        raise DataError(f"{data}: file not found")
    kind = table_kind(local)
    return Source(str(local.resolve()), kind, spark_io.fingerprint(local))


def score_on_spark(
    data: str,
    out: str,
    contract: Contract,
    registry: Registry,
    version: str | None = None,
    threshold: float = 0.5,
    master: str | None = None,
) -> ScoreSummary:
    """Check and score `data` on Spark; write Parquet parts to `out` and `<out>.json`."""
    started = time.perf_counter()
    if out.lower().endswith(".csv"):
        raise DataError(f"OUT={out}: Spark writes a directory of Parquet files; name a directory")
    cluster = master is not None and not master.startswith("local")
    with tempfile.TemporaryDirectory(prefix="score-spark-") as staging:
        source = locate(data, Path(staging), cluster)  # a bad DATA fails before any other work
        ref, _ = load_champion(registry, version, contract)  # the driver's checks first
        refuse_other_tasks(ref)
        # shipped under a name of its own: a session that scores two versions keeps both
        registered = registry.model_path(ref.version)
        model_path = Path(staging, f"{ref.sha256[:16]}-{registered.name}")
        shutil.copyfile(registered, model_path)
        print(f"score: {data} ({source.kind}) with v{ref.version} on Spark", file=sys.stderr)
        from pyspark.sql import SparkSession

        ours = SparkSession.getActiveSession() is None  # a notebook's session is left running
        spark = spark_session(master)
        try:
            spark.sparkContext.addFile(str(model_path))
            job = PartitionJob(contract, ref, model_path.name, threshold,
                               target_labels(contract), source.kind == "csv")  # fmt: skip
            rows = _run(spark, job, source, data, out, Path(staging))
        finally:
            if ours:
                spark.stop()
    summary = ScoreSummary(data, source.sha256, out, rows, registry.model_name, ref.version,
                           ref.sha256, time.perf_counter() - started)  # fmt: skip
    sidecar = out.rstrip("/")
    spark_io.write_text(sidecar.removesuffix(".parquet") + ".json", json.dumps(asdict(summary)))
    return summary


def _run(spark: Any, job: PartitionJob, source: Source, data: str, out: str, staging: Path) -> int:
    """Check and score every split; write the output only if no row was refused."""
    from pyspark import StorageLevel
    from pyspark.sql import functions as F

    table = _read(spark, source.location, source.kind)
    id_field = next((f for f in table.schema.fields if f.name == job.contract.id), None)
    if id_field is None:  # the structure check found the header; a later file lacks it
        raise DataError(f"{data}: no {job.contract.id!r} column (the contract's id)")
    scored = table.mapInPandas(check_and_score(job), output_schema(id_field))
    scored = scored.persist(StorageLevel.MEMORY_AND_DISK)  # checked and scored once
    try:
        refused = scored.where(F.col("problem").isNotNull())
        count = refused.count()
        print(f"score: checked and scored every split; {count} problems", file=sys.stderr)
        if count:
            raise _refused(data, refused.select("problem", "failure").limit(MAX_REPORTED).collect(),
                           count)  # fmt: skip
        output = scored.where(F.col("problem").isNull()).drop("problem", "failure")
        rows = _write(output, job, source, data, out, staging)
    finally:
        scored.unpersist()
    return rows


def _write(
    output: Any, job: PartitionJob, source: Source, data: str, out: str, staging: Path
) -> int:
    """Parquet parts and `_score.json` beside `out`, moved (or uploaded) into place."""
    meta = {"model_version": job.ref.version, "model_sha256": job.ref.sha256,
            "data": data, "data_sha256": source.sha256}  # fmt: skip
    if spark_io.is_remote(out) and source.location.startswith("s3a://"):
        # a cluster writes where it reads: beside OUT, then Hadoop's rename over it
        target = spark_io.for_spark(out.rstrip("/"))
        written = f"{target}.{job.ref.sha256[:12]}.tmp"
        output.write.mode("overwrite").parquet(written)
        rows = int(output.count())
        spark_io.hadoop_replace(output.sparkSession, written, target)
        spark_io.write_text(f"{out.rstrip('/')}/{SIDECAR}", json.dumps(meta | {"rows": rows}))
        return rows
    local = staging / "out" if spark_io.is_remote(out) else Path(out)
    rows = int(output.count())
    with spark_io.new_directory(local) as tmp:
        output.write.parquet(str(tmp))
        (tmp / SIDECAR).write_text(json.dumps(meta | {"rows": rows}), encoding="utf-8")
    if spark_io.is_remote(out):
        spark_io.publish(local, out)
    print(f"score: {rows} rows written to {out}", file=sys.stderr)
    return rows


def main(argv: list[str] | None = None) -> int:
    """Score a CSV or Parquet table (a file, a directory of parts, or an s3:// URL) on Spark."""
    parser = argparse.ArgumentParser(prog="score-spark", description=main.__doc__)
    parser.add_argument("--data", required=True, help="CSV/Parquet file or directory, or a URL")
    parser.add_argument("--out", help="output directory or URL (default predictions/<name>)")
    parser.add_argument("--version", help="model version or alias (default: champion)")
    parser.add_argument("--contract", type=Path, default=Path("contract.yaml"))
    args = parser.parse_args(argv)
    name = Path(args.data.rstrip("/")).stem
    out = args.out or str(Path("predictions") / name)
    summary = score_on_spark(args.data, out, load_contract(args.contract), Registry(),
                             args.version, load_config().evaluate.threshold,
                             os.environ.get("SPARK_MASTER") or None)  # fmt: skip
    print(
        f"score: {summary.rows} rows of {args.data} with {summary.model_name} "
        f"v{summary.model_version} on Spark -> {out} ({summary.rows / summary.seconds:,.0f} rows/s)"
    )
    return 0
