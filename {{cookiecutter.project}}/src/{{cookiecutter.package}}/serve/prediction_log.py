"""The prediction log: every answered row, off the request path, bounded and rotated.

Each line is one JSON object: request_id, time, model_version, variant, id (the contract's
id of the row), the answer as /predict gave it and the row's features. The answer is binary's
score and label (the target's own value, e.g. `yes`), a regression's value, or a multiclass
label with its probabilities.
`make performance` joins these lines with labels that arrive later (by id).

Records go through a bounded in-memory queue to one writer thread (stdlib logging's
QueueHandler/QueueListener) and a RotatingFileHandler, or stdout for a container whose
platform collects logs. What this guarantees: a request never waits for the disk. What it
does not: on a crash (SIGKILL, OOM) the records still queued, at most `queue` of them, are
lost; a full queue drops new records and counts them in
`model_prediction_log_dropped_total`. A clean shutdown writes everything queued.
"""

from __future__ import annotations

import json
import logging
import logging.handlers
import queue
import re
import sys
import time
import uuid
from pathlib import Path
from typing import Any

from prometheus_client import CollectorRegistry, Counter

REQUEST_ID_HEADER = "x-request-id"
# a caller's id is echoed back and logged: bounded and plain, so it cannot forge log lines
_CALLER_ID = re.compile(r"[A-Za-z0-9._:/+=@-]{1,128}")


def request_id(header: str | None) -> str:
    """The caller's X-Request-ID if it is a plain token of at most 128 characters, else a new one."""
    if header is not None and _CALLER_ID.fullmatch(header):
        return header
    return uuid.uuid4().hex


class _BoundedQueueHandler(logging.handlers.QueueHandler):
    """Never blocks the caller: a full queue drops the record and counts it."""

    def __init__(self, records: queue.Queue[Any], dropped: Any) -> None:
        super().__init__(records)
        self.dropped = dropped

    def enqueue(self, record: logging.LogRecord) -> None:
        try:
            self.queue.put_nowait(record)
        except queue.Full:
            self.dropped.inc()

    def prepare(self, record: logging.LogRecord) -> logging.LogRecord:
        return record  # the message is already a JSON line: no formatting on the request path


class PredictionLog:
    """Appends prediction records through a bounded queue to a rotating file (or stdout)."""

    def __init__(
        self,
        target: str,
        registry: CollectorRegistry,
        max_bytes: int = 10_000_000,
        backups: int = 5,
        capacity: int = 10_000,
    ) -> None:
        if target == "-":
            handler: logging.Handler = logging.StreamHandler(sys.stdout)
        else:
            path = Path(target)
            path.parent.mkdir(parents=True, exist_ok=True)
            handler = logging.handlers.RotatingFileHandler(
                path, maxBytes=max_bytes, backupCount=backups, encoding="utf-8"
            )
        handler.setFormatter(logging.Formatter("%(message)s"))
        self.dropped = Counter(
            "model_prediction_log_dropped",
            "Prediction records dropped because the log's queue was full",
            registry=registry,
        )
        records: queue.Queue[Any] = queue.Queue(maxsize=capacity)
        self._logger = logging.Logger(f"prediction_log.{id(self)}")  # not in the global tree
        self._logger.addHandler(_BoundedQueueHandler(records, self.dropped))
        self._listener = logging.handlers.QueueListener(records, handler)
        self._handler = handler

    def start(self) -> None:
        """Start the writer thread."""
        self._listener.start()

    def stop(self) -> None:
        """Write what is queued, then stop the writer and close the file."""
        self._listener.stop()
        self._handler.close()

    def write(
        self,
        rid: str,
        model_version: str,
        variant: str,
        rows: list[dict[str, Any]],
        answers: list[dict[str, Any]],
    ) -> None:
        """Queue one record per answered row (cheap: one json.dumps per row)."""
        now = time.time()
        stamp = (
            time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(now)) + f".{int(now * 1000) % 1000:03d}Z"
        )
        for row, answer in zip(rows, answers, strict=True):
            record = {
                "request_id": rid,
                "time": stamp,
                "model_version": model_version,
                "variant": variant,
                **answer,  # id first, then what /predict answered for this row
                "features": row,
            }
            self._logger.info(json.dumps(record, default=str))
