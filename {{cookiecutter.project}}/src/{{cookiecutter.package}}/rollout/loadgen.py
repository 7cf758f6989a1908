"""A bounded load generator that replays holdout rows against a server or the router."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import math
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp

from ..contract import Contract
from ..paths import HOLDOUT

HEADERS = {"content-type": "application/json"}


def _jsonable(value: Any) -> Any:
    if value is None:
        return None
    if hasattr(value, "isoformat"):
        return value.isoformat(sep=" ")
    if hasattr(value, "item"):
        value = value.item()
    if isinstance(value, float) and math.isnan(value):
        return None
    return value


def holdout_rows(path: str | Path, contract: Contract, limit: int = 2000) -> list[dict[str, Any]]:
    """The first `limit` holdout rows as request rows: features and id, JSON types."""
    from ..data import load_table

    frame = load_table(path).head(limit)
    columns = [contract.id, *contract.feature_columns]
    # a nullable integer column is float in the table; the request model wants integers
    integer = {c for c in columns if contract.columns[c].type == "integer"}
    rows = []
    for values in frame[columns].itertuples(index=False, name=None):
        row = {c: _jsonable(v) for c, v in zip(columns, values, strict=True)}
        rows.append({c: int(v) if c in integer and v is not None else v for c, v in row.items()})
    return rows


def synthetic_rows(
    contract_path: Path, contract: Contract, count: int = 2000
) -> list[dict[str, Any]]:
    """Request rows from the sample-data generator: traffic with no data at hand (a container)."""
    import random

    import yaml

    from ..sample_data import row_factory

    make = row_factory(yaml.safe_load(contract_path.read_text(encoding="utf-8")))
    rng = random.Random(0)  # noqa: S311 - test traffic, not secrets
    columns = [contract.id, *contract.feature_columns]
    rows = []
    for i in range(count):
        row = make(rng, i)
        rows.append({c: None if row[c] == "" else row[c] for c in columns})
    return rows


def traffic_rows(
    contract_path: Path, contract: Contract, holdout: Path = HOLDOUT, limit: int = 2000
) -> tuple[list[dict[str, Any]], str]:
    """Rows to replay, and where they came from: the holdout rows when they are here, else
    rows generated from the contract (a CI delivery job with no DVC remote to pull them from:
    row-level data never travels as a workflow artifact)."""
    if holdout.is_file():
        return holdout_rows(holdout, contract, limit), str(holdout)
    return synthetic_rows(contract_path, contract, limit), f"rows generated from {contract_path}"


@dataclass
class LoadReport:
    """What the clients saw: counts, and when each error happened."""

    sent: int = 0
    ok: int = 0
    errors: int = 0
    rejected: int = 0
    late: int = 0  # requests sent late because every connection was busy (a slow machine)
    by_version: dict[str, int] = field(default_factory=dict)
    error_times: list[float] = field(default_factory=list)  # wall clock, at send time

    def as_dict(self) -> dict[str, Any]:
        """JSON-able summary (first 100 error times)."""
        return {
            "sent": self.sent,
            "ok": self.ok,
            "errors": self.errors,
            "rejected": self.rejected,
            "late": self.late,
            "by_version": self.by_version,
            "error_times": self.error_times[:100],
        }


class LoadGenerator:
    """Requests at `rps`, at most `concurrency` in flight, rows replayed in order.

    When every connection is busy (a slow or loaded machine) the next request waits for one
    and the schedule catches up later, instead of being dropped: a canary step needs a
    number of requests, and a slow machine should make it take longer, not starve it.
    """

    def __init__(self, url: str, rows: list[dict[str, Any]], rps: float, concurrency: int) -> None:
        if not rows:
            raise ValueError("no rows to replay")
        self.url = url.rstrip("/") + "/predict"
        self.bodies = [json.dumps(r).encode() for r in rows]
        self.rps = rps
        self.concurrency = concurrency
        self.report = LoadReport()

    async def run(self, stop: asyncio.Event, duration_s: float | None = None) -> LoadReport:
        """Send until `stop` is set or `duration_s` passes; wait for requests in flight."""
        slots = asyncio.Semaphore(self.concurrency)
        tasks: set[asyncio.Task[None]] = set()
        period = 1.0 / self.rps
        start = time.monotonic()
        connector = aiohttp.TCPConnector(limit=self.concurrency)
        async with aiohttp.ClientSession(connector=connector) as session:
            tick = 0
            while not stop.is_set():
                if duration_s is not None and time.monotonic() - start >= duration_s:
                    break
                if slots.locked():
                    self.report.late += 1
                await slots.acquire()
                if stop.is_set():
                    slots.release()
                    break
                body = self.bodies[tick % len(self.bodies)]
                task = asyncio.create_task(self._one(session, body, slots))
                tasks.add(task)
                task.add_done_callback(tasks.discard)
                tick += 1
                delay = start + tick * period - time.monotonic()
                if delay < -1.0:  # catch up at most a second's requests: no long bursts
                    start -= delay + 1.0
                    delay = -1.0
                if delay > 0:
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(stop.wait(), delay)
            await asyncio.gather(*tasks, return_exceptions=True)
        return self.report

    async def _one(
        self, session: aiohttp.ClientSession, body: bytes, slots: asyncio.Semaphore
    ) -> None:
        sent_at = time.time()
        self.report.sent += 1
        try:
            async with session.post(
                self.url, data=body, headers=HEADERS, timeout=aiohttp.ClientTimeout(total=10)
            ) as response:
                data = await response.read()
                status = response.status
        except (aiohttp.ClientError, TimeoutError):
            status, data = 0, b""
        finally:
            slots.release()
        if status == 200:
            self.report.ok += 1
            version = str(json.loads(data).get("model_version", "?"))
            self.report.by_version[version] = self.report.by_version.get(version, 0) + 1
        elif 400 <= status < 500:
            self.report.rejected += 1
        else:
            self.report.errors += 1
            self.report.error_times.append(sent_at)


def main(argv: list[str] | None = None) -> int:
    """Replay holdout rows against `--url` for `--duration` seconds; print a JSON summary."""
    parser = argparse.ArgumentParser(prog="loadgen", description=__doc__)
    parser.add_argument("--url", default=None, help="default: the local router from .deploy/")
    parser.add_argument("--holdout", type=Path, default=HOLDOUT)
    parser.add_argument(
        "--synthetic", action="store_true", help="rows generated from the contract, no holdout"
    )
    parser.add_argument("--contract", type=Path, default=Path("contract.yaml"))
    parser.add_argument("--rps", type=float, default=100.0)
    parser.add_argument("--concurrency", type=int, default=4)
    parser.add_argument("--duration", type=float, default=10.0)
    parser.add_argument("--out", type=Path, default=None, help="also write the summary here")
    args = parser.parse_args(argv)
    from ..artifacts import write_json
    from ..contract import load_contract

    url = args.url
    if url is None:
        state = Path(".deploy/state.json")
        if not state.is_file():
            print("loadgen: no --url and no local deployment (.deploy/state.json)", file=sys.stderr)
            return 2
        url = json.loads(state.read_text(encoding="utf-8"))["router"]["url"]
    contract = load_contract(args.contract)  # a ConfigError or DataError is its exit code
    if args.synthetic:
        rows = synthetic_rows(args.contract, contract)
    else:
        rows = holdout_rows(args.holdout, contract)
    generator = LoadGenerator(url, rows, args.rps, args.concurrency)
    report = asyncio.run(generator.run(asyncio.Event(), args.duration))
    summary = report.as_dict()
    if args.out is not None:
        write_json(args.out, summary)
    print(json.dumps({k: v for k, v in summary.items() if k != "error_times"}))
    return 0 if report.errors == 0 else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
