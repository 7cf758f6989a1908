"""`score`: batch predictions for a file of any size, in chunks, with the champion or a version.

Every chunk is checked against the contract's row-level expectations (the validate stage's
suite without the label and the table-level checks) before it is scored. Bad rows stop the
run and are reported with their ids; nothing is silently dropped and no partial output is
left behind (the output is written to a temporary file and moved into place at the end).
The output records the model version and the input's sha256, in the Parquet metadata and in
a `<out>.json` sidecar.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from .artifacts import atomic_path, write_json
from .config import load_config
from .contract import Contract, load_contract
from .data import READERS, conform, file_sha256
from .errors import DataError, RefusedError
from .registry import ModelRef, Registry
from .serve.schema import target_labels

CHUNK_ROWS = 100_000  # bounded memory: about 100 MB for a 20-column table
OUT_DIR = Path("predictions")
MAX_REPORTED = 20  # failing checks listed in the error; the rest are counted


@dataclass(frozen=True)
class ScoreSummary:
    """What one scoring run did: recorded beside the output."""

    data: str
    data_sha256: str
    output: str
    rows: int
    model_name: str
    model_version: str
    model_sha256: str
    seconds: float


def iter_chunks(path: Path, chunk_rows: int) -> Iterator[pd.DataFrame]:
    """The table in chunks of at most `chunk_rows` rows, CSV or Parquet."""
    kind = READERS.get(path.suffix.lower())
    if kind is None:
        raise DataError(f"{path}: unsupported file type {path.suffix!r}; expected .csv or .parquet")
    if not path.is_file():
        raise DataError(f"{path}: file not found")
    if kind == "parquet":
        import pyarrow.parquet as pq

        for batch in pq.ParquetFile(path).iter_batches(batch_size=chunk_rows):
            yield batch.to_pandas()
        return
    try:
        with pd.read_csv(path, chunksize=chunk_rows) as reader:
            yield from reader
    except (UnicodeDecodeError, pd.errors.ParserError, ValueError) as error:
        raise DataError(f"{path}: cannot be read as CSV: {error}") from None


def scoring_suite(contract: Contract) -> list[Any]:
    """The contract's row-level expectations for rows that have no label yet."""
    import great_expectations as gx

    from .suite import build_suite

    table_level = (gx.expectations.ExpectTableRowCountToBeBetween,
                   gx.expectations.ExpectColumnMeanToBeBetween)  # fmt: skip
    return [
        expectation
        for expectation in build_suite(contract)
        if not isinstance(expectation, table_level)
        and getattr(expectation, "column", None) != contract.target
    ]


def chunk_failures(chunk: pd.DataFrame, contract: Contract, first_row: int) -> list[str]:
    """Why rows of this chunk cannot be scored (ids named), or nothing."""
    from .suite import explain_types, prepare, run_suite, summarize

    frame, checks = prepare(chunk, contract)
    # a GE suite owns its expectations: each chunk's run gets fresh ones
    checks += run_suite(frame, contract, expectations=scoring_suite(contract))
    explain_types(checks, chunk, contract)
    where = f"rows {first_row + 1}-{first_row + len(chunk)}"
    return [f"{where}: {line}" for line in summarize(checks)]


def load_champion(
    registry: Registry, version: str | None, contract: Contract
) -> tuple[ModelRef, Any]:
    """The pinned model (champion by default) after the server's environment and hash checks."""
    from .serve.loading import ServeStartError, load_pinned, resolve

    try:
        ref = resolve(registry, version or "champion")
        predictor, _ = load_pinned(registry, ref, contract)
    except ServeStartError as error:
        raise RefusedError(f"cannot score: {error}") from None
    return ref, predictor.model


def score_file(
    data: Path,
    out: Path,
    contract: Contract,
    registry: Registry,
    version: str | None = None,
    chunk_rows: int = CHUNK_ROWS,
    threshold: float = 0.5,
) -> ScoreSummary:
    """Validate and score `data` chunk by chunk; write `out` (Parquet) and `<out>.json`."""
    import pyarrow as pa
    import pyarrow.parquet as pq
    from tqdm import tqdm

    started = time.perf_counter()
    ref, model = load_champion(registry, version, contract)
    inputs = [contract.id, *contract.feature_columns]
    negative, positive = target_labels(contract)  # labels in the table's own values
    data_sha256 = file_sha256(data)
    metadata = {"model_version": ref.version, "model_sha256": ref.sha256,
                "data": str(data), "data_sha256": data_sha256}  # fmt: skip
    failures: list[str] = []
    rows = 0
    writer: pq.ParquetWriter | None = None
    with atomic_path(out) as temporary:
        progress = tqdm(unit="rows", desc=f"score {data.name}", disable=None)
        for chunk in iter_chunks(data, chunk_rows):
            problems = chunk_failures(chunk, contract, rows)
            rows += len(chunk)
            progress.update(len(chunk))
            failures += problems
            if failures:
                continue  # keep checking, so one run reports every bad chunk; score nothing
            X = conform(chunk, contract, columns=inputs)
            scores = model.predict_proba(X[contract.feature_columns])[:, 1]
            table = pa.table({
                contract.id: X[contract.id].to_numpy(),
                "score": scores,
                "label": np.where(scores >= threshold, positive, negative),
                "model_version": [ref.version] * len(X),
            })  # fmt: skip
            if writer is None:
                schema = table.schema.with_metadata({f"ml.{k}": v for k, v in metadata.items()})
                writer = pq.ParquetWriter(temporary, schema)
            writer.write_table(table.replace_schema_metadata(writer.schema.metadata))
        progress.close()
        if writer is not None:
            writer.close()
        if failures:
            shown = "\n  ".join(failures[:MAX_REPORTED])
            more = len(failures) - MAX_REPORTED
            raise DataError(
                f"{data}: rows that do not meet contract.yaml; nothing was scored:\n  {shown}"
                + (f"\n  ... and {more} more" if more > 0 else "")
            )
        if rows == 0:
            raise DataError(f"{data}: no rows to score")
    summary = ScoreSummary(str(data), data_sha256, str(out), rows, registry.model_name,
                           ref.version, ref.sha256, time.perf_counter() - started)  # fmt: skip
    write_json(out.with_suffix(".json"), asdict(summary))
    return summary


def main(argv: list[str] | None = None) -> int:
    """Score a CSV or Parquet file with the champion (or --version) in bounded memory."""
    parser = argparse.ArgumentParser(prog="score", description=main.__doc__)
    parser.add_argument("--data", type=Path, required=True, help="CSV or Parquet file to score")
    parser.add_argument(
        "--out", type=Path, help="Parquet output (default predictions/<name>.parquet)"
    )
    parser.add_argument("--version", help="model version or alias (default: champion)")
    parser.add_argument("--chunk-rows", type=int, default=CHUNK_ROWS)
    parser.add_argument("--contract", type=Path, default=Path("contract.yaml"))
    args = parser.parse_args(argv)
    out = args.out or OUT_DIR / f"{args.data.stem}.parquet"
    threshold = load_config().evaluate.threshold
    summary = score_file(args.data, out, load_contract(args.contract), Registry(), args.version,
                         args.chunk_rows, threshold)  # fmt: skip
    print(
        f"score: {summary.rows} rows of {args.data} with {summary.model_name} "
        f"v{summary.model_version} -> {out} ({summary.rows / summary.seconds:,.0f} rows/s)"
    )
    return 0
