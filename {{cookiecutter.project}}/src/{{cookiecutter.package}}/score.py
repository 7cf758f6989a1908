"""`score`: batch predictions for a file of any size, in chunks, with the champion or a version.

Every chunk is checked against the contract's row-level expectations (the validate stage's
suite without the label and the table-level checks) before it is scored: vectorised checks
decide a clean chunk, and Great Expectations (its suite built once) decides and explains any
other, so a refusal reads as the validate stage's would. Bad rows stop the run and are
reported with their ids; nothing is silently dropped and no partial output is left behind
(the output is written to a temporary file and moved into place at the end). Reading and
checking run in a thread of their own, one chunk ahead of the model, which scores in the
main thread.
The output's format is the one its suffix names (.parquet or .csv); it records the model
version and the input's sha256 in a `<out>.json` sidecar (and, for Parquet, its metadata).
"""

from __future__ import annotations

import argparse
import os
import queue
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Protocol, TypeVar

import numpy as np
import pandas as pd
from numpy.typing import NDArray

from .artifacts import atomic_path, write_json
from .config import Task, load_config
from .contract import Contract, load_contract
from .contract_checks import passes
from .data import (
    check_columns,
    conform,
    file_sha256,
    no_rows,
    readable_kind,
    unreadable,
)
from .errors import DataError, RefusedError
from .expectations import row_level_specs
from .registry import ModelRef, Registry
from .serve.predictor import Predictor
from .serve.schema import target_labels

CHUNK_ROWS = 20_000  # bounded memory: two or three chunks are in flight at once
OUT_DIR = Path("predictions")
MAX_REPORTED = 20  # failing checks listed in the error; the rest are counted
PREFETCH = 1  # checked chunks waiting for the model: more costs memory, not time


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
    """The table in chunks of at most `chunk_rows` rows, CSV or Parquet, refused as
    `load_table` refuses a file (the same checks, the same words)."""
    kind = readable_kind(path)
    count = 0
    reader: Any = None  # a CSV reader holds the file open: closed however the loop ends
    try:
        if kind == "parquet":
            import pyarrow.parquet as pq

            chunks: Iterator[pd.DataFrame] = (
                batch.to_pandas()
                for batch in pq.ParquetFile(path).iter_batches(batch_size=chunk_rows)
            )
        else:
            chunks = reader = pd.read_csv(path, chunksize=chunk_rows)
        for chunk in chunks:
            if count == 0:
                check_columns(path, kind, chunk)
            if chunk.empty:  # a header alone reads as one chunk of no rows
                continue
            count += len(chunk)
            yield chunk
    except (UnicodeDecodeError, pd.errors.ParserError, OSError, ValueError) as error:
        if isinstance(error, DataError):
            raise
        raise unreadable(path, kind, error) from None
    finally:
        if reader is not None:
            reader.close()
    if count == 0:
        raise no_rows(path)


@dataclass(frozen=True)
class CheckedChunk:
    """A chunk after its checks: the rows it held, the model's input if it passed, and why not."""

    rows: int
    inputs: pd.DataFrame | None
    problems: list[str]


class ChunkChecker:
    """The contract's row-level checks on each chunk, vectorised; GE only where they fail."""

    def __init__(self, contract: Contract) -> None:
        self.contract = contract
        self.specs = row_level_specs(contract)
        self.inputs = [contract.id, *contract.feature_columns]
        self._suite: Any = None  # the GE suite and validator, built on the first bad chunk

    def check(self, chunk: pd.DataFrame, first_row: int) -> CheckedChunk:
        """Check one chunk; when it passes, its rows conformed for the model."""
        from .suite import ContractSuite, explain_types, prepare, summarize

        frame, checks = prepare(chunk, self.contract)
        if all(c.success for c in checks) and passes(frame, self.specs):
            return CheckedChunk(len(chunk), conform(frame, self.contract, self.inputs), [])
        if self._suite is None:
            self._suite = ContractSuite(self.contract, [spec.build() for spec in self.specs])
        checks += self._suite.run(frame)
        explain_types(checks, chunk, self.contract)
        where = f"rows {first_row + 1}-{first_row + len(chunk)}"
        problems = [f"{where}: {line}" for line in summarize(checks)]
        inputs = None if problems else conform(frame, self.contract, self.inputs)
        return CheckedChunk(len(chunk), inputs, problems)

    def checked(self, chunks: Iterable[pd.DataFrame]) -> Iterator[CheckedChunk]:
        """Each chunk checked, in order."""
        first_row = 0
        for chunk in chunks:
            yield self.check(chunk, first_row)
            first_row += len(chunk)


T = TypeVar("T")
_DONE = object()


def ahead(items: Iterable[T], depth: int = PREFETCH) -> Iterator[T]:
    """`items`, produced in a thread of their own up to `depth` ahead of the consumer.

    An exception in the producer is raised in the consumer; a consumer that stops early
    stops the producer.
    """
    slots: queue.Queue[Any] = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def put(item: Any) -> bool:
        while not stop.is_set():
            try:
                slots.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def produce() -> None:
        try:
            for item in items:
                if not put(item):
                    return
        except BaseException as error:  # handed to the consumer, which raises it
            put(_Raised(error))
            return
        put(_DONE)

    thread = threading.Thread(target=produce, name="score-ahead", daemon=True)
    thread.start()
    try:
        while (item := slots.get()) is not _DONE:
            if isinstance(item, _Raised):
                raise item.error
            yield item
    finally:
        stop.set()
        thread.join()


@dataclass(frozen=True)
class _Raised:
    error: BaseException


class OutputWriter(Protocol):
    """Writes scored chunks to one file in the format its suffix names."""

    def write(self, table: Any) -> None: ...

    def close(self) -> None: ...


class _ParquetOut:
    def __init__(self, path: Path, metadata: dict[str, str]) -> None:
        self.path, self.metadata = path, {f"ml.{k}": v for k, v in metadata.items()}
        self.writer: Any = None

    def write(self, table: Any) -> None:
        import pyarrow.parquet as pq

        if self.writer is None:
            self.writer = pq.ParquetWriter(self.path, table.schema.with_metadata(self.metadata))
        self.writer.write_table(table.replace_schema_metadata(self.writer.schema.metadata))

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()


class _CsvOut:
    def __init__(self, path: Path, metadata: dict[str, str]) -> None:
        self.path = path  # CSV has no metadata: the sidecar carries it
        self.writer: Any = None

    def write(self, table: Any) -> None:
        import pyarrow.csv as pcsv

        if self.writer is None:
            self.writer = pcsv.CSVWriter(str(self.path), table.schema)
        self.writer.write_table(table)

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()


OUTPUTS: dict[str, Callable[[Path, dict[str, str]], OutputWriter]] = {
    ".parquet": _ParquetOut,
    ".pq": _ParquetOut,
    ".csv": _CsvOut,
}


def output_writer(out: Path) -> Callable[[Path, dict[str, str]], OutputWriter]:
    """The writer for `out`'s suffix; refuse a suffix that names no format we write."""
    make = OUTPUTS.get(out.suffix.lower())
    if make is None:
        raise DataError(
            f"OUT={out}: cannot write {out.suffix or 'a file without a suffix'!r}; "
            f"name a {' or '.join(sorted(set(OUTPUTS)))} file"
        )
    return make


def scored_columns(
    contract: Contract,
    inputs: pd.DataFrame,
    scores: NDArray[np.float64],
    classes: Sequence[Any],
    threshold: float,
    ref: ModelRef,
    task: Task = "binary",
) -> dict[str, Any]:
    """One checked chunk's output: its ids, the task's columns and the model version. Both
    engines write these columns.

    `scores` is the task's prediction (`task_pipeline.predict`). Binary: score and label in
    the table's own values (`classes`: negative, positive); regression: value; multiclass:
    label and one probability_<class> column per class.
    """
    from .tasks.outputs import batch_columns
    from .tasks.table import TASKS

    return {
        contract.id: inputs[contract.id].to_numpy(),
        **batch_columns(TASKS[task].outputs, scores, classes, threshold),
        "model_version": [ref.version] * len(inputs),
    }


def refused_rows(data: str, problems: list[str], count: int) -> DataError:
    """The one error for rows that break the contract: the first MAX_REPORTED, and how many more."""
    shown = "\n  ".join(problems[:MAX_REPORTED])
    more = count - min(len(problems), MAX_REPORTED)
    return DataError(
        f"{data}: rows that do not meet contract.yaml; nothing was scored:\n  {shown}"
        + (f"\n  ... and {more} more" if more > 0 else "")
    )


def load_champion(
    registry: Registry, version: str | None, contract: Contract
) -> tuple[ModelRef, Predictor]:
    """The pinned model (champion by default) after the server's environment and hash checks,
    with its task and classes."""
    from .serve.loading import ServeStartError, load_pinned, resolve

    try:
        ref = resolve(registry, version or "champion")
        predictor, _ = load_pinned(registry, ref, contract)
    except ServeStartError as error:
        raise RefusedError(f"cannot score: {error}") from None
    return ref, predictor


def model_threads() -> int:
    """Threads for the model: every core this process may use but one, at least one."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return max(1, (cores or 1) - 1)


def score_file(
    data: Path,
    out: Path,
    contract: Contract,
    registry: Registry,
    version: str | None = None,
    chunk_rows: int = CHUNK_ROWS,
    threshold: float = 0.5,
) -> ScoreSummary:
    """Check and score `data` chunk by chunk; write `out` (.parquet or .csv) and `<out>.json`."""
    import pyarrow as pa
    from threadpoolctl import threadpool_limits
    from tqdm import tqdm

    from .task_pipeline import predict

    started = time.perf_counter()
    make_output = output_writer(out)  # before any work: a wrong OUT is a one-line error
    readable_kind(data)  # and so is a DATA that cannot be read
    ref, predictor = load_champion(registry, version, contract)
    task, model = predictor.task, predictor.model
    # a binary model's labels in the table's own values; else the task's classes
    classes = target_labels(contract) if task == "binary" else predictor.classes
    data_sha256 = file_sha256(data)
    metadata = {"model_version": ref.version, "model_sha256": ref.sha256,
                "data": str(data), "data_sha256": data_sha256}  # fmt: skip
    checker = ChunkChecker(contract)
    failures: list[str] = []
    rows = 0
    # the model's own threads leave a core to reading and checking, which run beside it;
    # OpenMP threads that outnumber free cores spin-wait, and on a busy machine that made
    # predict_proba six times slower (bench/bench_score.py)
    with atomic_path(out) as temporary, threadpool_limits(limits=model_threads()):
        output = make_output(temporary, metadata)
        progress = tqdm(unit="rows", desc=f"score {data.name}", disable=None)
        for checked in ahead(checker.checked(iter_chunks(data, chunk_rows))):
            rows += checked.rows
            progress.update(checked.rows)
            failures += checked.problems
            if failures or checked.inputs is None:
                continue  # keep checking, so one run reports every bad chunk; score nothing
            X = checked.inputs
            scores = predict(model, X[contract.feature_columns], task, classes)
            columns = scored_columns(contract, X, scores, classes, threshold, ref, task)
            output.write(pa.table(columns))
        progress.close()
        output.close()
        if failures:
            raise refused_rows(str(data), failures, len(failures))
    summary = ScoreSummary(str(data), data_sha256, str(out), rows, registry.model_name,
                           ref.version, ref.sha256, time.perf_counter() - started)  # fmt: skip
    write_json(out.with_suffix(".json"), asdict(summary))
    return summary


def main(argv: list[str] | None = None) -> int:
    """Score a CSV or Parquet file with the champion (or --version) in bounded memory."""
    parser = argparse.ArgumentParser(prog="score", description=main.__doc__)
    parser.add_argument("--data", type=Path, required=True, help="CSV or Parquet file to score")
    parser.add_argument(
        "--out",
        type=Path,
        help="output file, .parquet or .csv (default predictions/<name>.parquet)",
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
