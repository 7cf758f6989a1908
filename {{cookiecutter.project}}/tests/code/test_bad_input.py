"""Malformed input gets a clear error that names the file, column and expectation, and no output.

Two matrices: data files given to the validate stage, and requests sent to a live model server
(each answered with a clean 4xx naming what is wrong, never a 5xx).
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pandas as pd
import pytest

from {{ cookiecutter.package }}.data import DataError, load_table
from {{ cookiecutter.package }}.errors import run_main
from {{ cookiecutter.package }}.pipeline.validate import main, validate_file
from {{ cookiecutter.package }}.serve.app import ServeSettings, create_app, server_config
from tests.live_server import (
    LiveServer,
    exchange,
    free_port,
    held_for,
    request_bytes,
    status_counts,
)
from tests.tiny_contract import TINY_ROW, tiny_contract, tiny_predictor, tiny_table, write_project

Writer = Callable[[Path], Path]


def _csv(df: pd.DataFrame, path: Path, **options: object) -> Path:
    df.to_csv(path, index=False, **options)
    return path


def wrong_delimiter(tmp: Path) -> Path:
    return _csv(tiny_table(50), tmp / "semicolons.csv", sep=";")


def header_only(tmp: Path) -> Path:
    return _csv(tiny_table(50).head(0), tmp / "header_only.csv")


def duplicate_ids(tmp: Path) -> Path:
    df = tiny_table(50)
    df.loc[7, "account"] = df.loc[3, "account"]
    return _csv(df, tmp / "duplicates.csv")


def mixed_types(tmp: Path) -> Path:
    df = tiny_table(50).astype({"spend": object})
    df.loc[[4, 9], "spend"] = ["twelve", "n/a"]
    return _csv(df, tmp / "mixed.csv")


def renamed_column(tmp: Path) -> Path:
    return _csv(tiny_table(50).rename(columns={"plan": "plan_name"}), tmp / "renamed.csv")


def numbers_as_strings(tmp: Path) -> Path:
    df = tiny_table(50)
    df["visits"] = df["visits"].astype(str)  # a Parquet writer kept the text: "6.0", "nan"
    path = tmp / "strings.parquet"
    df.to_parquet(path, index=False)
    return path


def not_a_table(tmp: Path) -> Path:
    path = tmp / "photo.csv"
    path.write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(range(256)))
    return path


def text_named_parquet(tmp: Path) -> Path:
    path = tmp / "notes.parquet"
    path.write_text("account,spend\nA1,3.5\n", encoding="utf-8")
    return path


def empty_file(tmp: Path) -> Path:
    path = tmp / "empty.csv"
    path.write_bytes(b"")
    return path


def missing_file(tmp: Path) -> Path:
    return tmp / "nowhere.csv"


def unknown_category(tmp: Path) -> Path:
    df = tiny_table(50)
    df.loc[11, "plan"] = "platinum"
    return _csv(df, tmp / "unknown_plan.csv")


def null_label(tmp: Path) -> Path:
    df = tiny_table(50).astype({"left": "float64"})
    df.loc[5, "left"] = None
    return _csv(df, tmp / "null_label.csv")


# case -> (file writer, words the error must contain besides the file name)
CASES: dict[str, tuple[Writer, tuple[str, ...]]] = {
    "wrong_delimiter": (wrong_delimiter, ("';'-delimited", "comma-separated")),
    "header_only": (header_only, ("header but no rows",)),
    "duplicate_ids": (
        duplicate_ids,
        ("'account'", "expect_column_values_to_be_unique", "A000003", "one row per id"),
    ),
    "mixed_types": (
        mixed_types,
        ("'spend'", "type", "twelve", "fix the data, or change contract.yaml: columns.spend.type"),
    ),
    # the new name alone, not every column of the file; and what to do about it
    "renamed_column": (
        renamed_column,
        ("'plan'", "missing", "does not list: ['plan_name']", "rename contract.yaml: columns.plan"),
    ),
    "numbers_as_strings": (
        numbers_as_strings,
        ("'visits'", "expect_column_values_to_be_in_type_list", "numbers stored as text"),
    ),
    "not_a_table": (not_a_table, ("binary content",)),
    "text_named_parquet": (text_named_parquet, ("cannot be read as PARQUET",)),
    "empty_file": (empty_file, ("empty",)),
    "missing_file": (missing_file, ("not found",)),
    "unknown_category": (
        unknown_category,
        (
            "'plan'",
            "expect_column_values_to_be_in_set",
            "platinum",
            "contract.yaml: columns.plan.values",
        ),
    ),
    "null_label": (
        null_label,
        ("'left'", "expect_column_values_to_not_be_null", "A000005", "fill the blanks"),
    ),
}


@pytest.mark.parametrize("case", list(CASES))
def test_bad_file_is_rejected_with_a_clear_error(case, tmp_path, capsys):
    """The stage exits with DataError's code, says what is wrong and where, and writes no validated table."""
    writer, words = CASES[case]
    contract_path, params_path = write_project(tmp_path)
    data = writer(tmp_path)
    out = tmp_path / "validated.parquet"
    report = tmp_path / "reports" / "validation.json"
    args = ["--data", str(data), "--contract", str(contract_path), "--params", str(params_path)]
    code = run_main("validate", main, [*args, "--report", str(report), "--out", str(out)])
    error = capsys.readouterr().err
    assert code == DataError.exit_code
    assert str(data) in error
    for word in words:
        assert word in error, f"{word!r} not in:\n{error}"
    assert not out.exists()
    assert report.is_file()
    assert report.with_suffix(".html").is_file()
    assert '"status": "skipped"' in (report.parent / "drift.json").read_text(encoding="utf-8")


def test_failed_run_removes_a_stale_validated_table(tmp_path):
    """A table left by an earlier good run must not outlive a failed one (train would use it)."""
    contract_path, params_path = write_project(tmp_path)
    out = tmp_path / "validated.parquet"
    out.write_bytes(b"from an earlier run")
    data = unknown_category(tmp_path)
    args = ["--data", str(data), "--contract", str(contract_path), "--params", str(params_path)]
    args += ["--report", str(tmp_path / "v.json"), "--out", str(out)]
    assert run_main("validate", main, args) == DataError.exit_code
    assert not out.exists()


def test_good_file_passes(tmp_path, monkeypatch):
    """The same contract accepts well-formed data: the cases above fail for their defect alone."""
    monkeypatch.chdir(tmp_path)  # no registry here: drift reports "no reference yet"
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)  # not even a shared one
    contract_path, params_path = write_project(tmp_path)
    data = _csv(tiny_table(300), tmp_path / "good.csv")
    args = ["--data", str(data), "--contract", str(contract_path), "--params", str(params_path)]
    assert main([*args, "--report", "reports/validation.json", "--out", "validated.parquet"]) == 0
    assert len(pd.read_parquet(tmp_path / "validated.parquet")) == 300
    assert '"status": "no_reference"' in (tmp_path / "reports" / "drift.json").read_text()


def test_loader_errors_name_the_file(tmp_path):
    """load_table raises DataError (not a pandas traceback) for each unreadable file."""
    for writer in (wrong_delimiter, header_only, not_a_table, empty_file, missing_file):
        path = writer(tmp_path)
        with pytest.raises(DataError, match=path.name):
            load_table(path)


def test_an_out_of_range_value_says_which_key_would_accept_it(tmp_path):
    """A value outside min/max: fix the data, or widen that column's min/max in contract.yaml."""
    df = tiny_table(50)
    df.loc[3, "spend"] = 10**9
    report, _ = validate_file(_csv(df, tmp_path / "huge.csv"), tiny_contract())
    (line,) = [f for f in report["failures"] if "expect_column_values_to_be_between" in f]
    assert "'spend'" in line
    assert "To fix: fix the data, or widen contract.yaml: columns.spend.min/max" in line


def test_report_names_offending_rows(tmp_path):
    """A failed value check lists example values and the ids of the rows that hold them."""
    report, table = validate_file(unknown_category(tmp_path), tiny_contract())
    assert table is None
    failed = [c for c in report["checks"] if not c["success"]]
    assert [(c["column"], c["examples"], c["rows"]) for c in failed] == [
        ("plan", ["platinum"], ["A000011"])
    ]


# --- requests to a live model server --------------------------------------------------------

MAX_BATCH = 50
MAX_BODY = 1_048_576
READ_TIMEOUT = 1.0  # seconds a client has to send a whole request (short, to keep tests fast)


def _row(**changes: object) -> bytes:
    return json.dumps({**TINY_ROW, **changes}).encode()


def _without(name: str) -> bytes:
    return json.dumps({k: v for k, v in TINY_ROW.items() if k != name}).encode()


def _nested(depth: int, inner: bytes = b"") -> bytes:
    return b"[" * depth + inner + b"]" * depth


def _in_field(name: str, raw: bytes) -> bytes:
    row = json.dumps({**TINY_ROW, name: "@"}).encode()
    return row.replace(b'"@"', raw)


# case -> (raw HTTP request, expected status, words the answer must contain)
REQUEST_CASES: dict[str, tuple[bytes, int, tuple[str, ...]]] = {
    "nested_arrays_3k": (request_bytes(_nested(3_000)), 422, ("nested",)),
    "nested_arrays_100k": (request_bytes(_nested(100_000)), 422, ("nested",)),
    "nested_objects_3k": (request_bytes(b'{"a":' * 3_000 + b"1" + b"}" * 3_000), 422, ("nested",)),
    "nested_objects_100k": (
        request_bytes(b'{"a":' * 100_000 + b"1" + b"}" * 100_000),
        422,
        ("nested",),
    ),
    "nested_in_a_field": (request_bytes(_in_field("spend", _nested(5_000))), 422, ("nested",)),
    "nested_in_rows": (request_bytes(b'{"rows": ' + _nested(5_000) + b"}"), 422, ("nested",)),
    "unclosed_nesting": (request_bytes(b"[" * 200_000), 422, ("nested",)),
    "header_8mb": (request_bytes(_row(), extra=[("X-Big", "a" * 8_000_000)]), 431, ()),
    "many_headers": (
        request_bytes(_row(), extra=[(f"X-H{i}", "v" * 16) for i in range(2_000)]),
        431,
        (),
    ),
    "url_100kb": (request_bytes(_row(), path="/predict?" + "q" * 100_000), 431, ()),
    "id_900kb": (request_bytes(_row(account="A" * 900_000)), 422, ("account", "at most")),
    "id_missing": (request_bytes(_without("account")), 422, ("account", "required")),
    "id_null": (request_bytes(_row(account=None)), 422, ("account",)),
    "id_object": (request_bytes(_row(account={"a": 1})), 422, ("account",)),
    "text_plain": (request_bytes(_row(), "text/plain"), 415, ("application/json",)),
    "form_urlencoded": (
        request_bytes(_row(), "application/x-www-form-urlencoded"),
        415,
        ("application/json",),
    ),
    "charset_latin1": (
        request_bytes(_row(), "application/json; charset=iso-8859-1"),
        415,
        ("utf-8",),
    ),
    "utf16_with_bom": (request_bytes(_row().decode().encode("utf-16")), 400, ("UTF-8",)),
    "utf16le_no_bom": (request_bytes(_row().decode().encode("utf-16-le")), 400, ("UTF-8",)),
    "utf32": (request_bytes(_row().decode().encode("utf-32")), 400, ("UTF-8",)),
    "invalid_utf8": (request_bytes(_row(plan="@").replace(b"@", b"\xff\xfe")), 400, ("UTF-8",)),
    "not_json": (request_bytes(b"{broken"), 422, ("not valid JSON",)),
    "empty_body": (request_bytes(b""), 422, ("not valid JSON",)),
    "top_level_array": (request_bytes(b"[1, 2]"), 422, ("JSON object",)),
    "infinite_number": (request_bytes(_in_field("spend", b"1e400")), 422, ("spend",)),
    "nan_literal": (request_bytes(_in_field("spend", b"NaN")), 422, ("spend",)),
    "huge_integer": (request_bytes(_in_field("visits", b"9" * 5_000)), 422, ("not valid JSON",)),
    "empty_rows": (request_bytes(b'{"rows": []}'), 422, ("rows",)),
    "too_many_rows": (
        request_bytes(json.dumps({"rows": [TINY_ROW] * (MAX_BATCH + 1)}).encode()),
        422,
        ("rows",),
    ),
    "extra_field": (request_bytes(_row(surprise=1)), 422, ("surprise", "not a contract column")),
    "wrong_type": (request_bytes(_row(spend="12")), 422, ("spend",)),
    "oversized_body": (request_bytes(b" " * (2 * MAX_BODY)), 413, ("bytes",)),
}


@pytest.fixture(scope="module")
def live() -> Iterator[LiveServer]:
    """The model server on a free port, with the default limits and a short read timeout."""
    settings = ServeSettings("7", max_batch=MAX_BATCH, max_body_bytes=MAX_BODY)
    app = create_app(tiny_predictor(), settings)
    refused = app.state.metrics.rejected.inc  # heads the protocol refuses are counted too
    config = server_config(
        app, "127.0.0.1", free_port(), refused, read_timeout=READ_TIMEOUT, log_config=None
    )
    with LiveServer(config) as server:
        yield server


@pytest.mark.parametrize("case", list(REQUEST_CASES))
def test_bad_request_gets_a_clean_4xx(live, case):
    """Each hostile request is refused with its own 4xx and a reason, never a 5xx or a traceback."""
    raw, expected, words = REQUEST_CASES[case]
    status, body = exchange(live.port, raw)
    assert status == expected, body[:300]
    for word in words:
        assert word in body.decode("utf-8", "replace"), body[:300]
    assert b"Traceback" not in body


def test_bad_request_matrix_has_no_5xx_and_every_answer_is_counted(live):
    """The whole matrix: no 5xx, and the server counts every answer it gave."""
    before = _counted(live)
    statuses = [exchange(live.port, raw)[0] for raw, _, _ in REQUEST_CASES.values()]
    counts = status_counts(statuses)
    print(f"bad-input matrix: {len(statuses)} requests, {counts}")
    assert counts["5xx"] == 0
    assert counts["4xx"] == len(statuses)
    # every answer is counted, a head refused by the protocol (431) too
    assert _counted(live) - before == len(statuses)
    assert exchange(live.port, request_bytes(_row()))[0] == 200  # and it keeps serving


def test_brackets_inside_strings_are_not_nesting(live):
    """The depth check reads JSON structure, not characters inside string values."""
    status, body = exchange(live.port, request_bytes(_row(account="[" * 200 + "{" * 50)))
    assert status == 200, body[:300]
    assert json.loads(body)["predictions"][0]["id"] == "[" * 200 + "{" * 50


def test_idle_and_slow_connections_are_dropped(live):
    """A connection that sends nothing, trickles its head or its body is closed at the deadline."""
    assert held_for(live.port, b"") < READ_TIMEOUT + 2
    head = b"POST /predict HTTP/1.1\r\nHost: x\r\n"
    assert held_for(live.port, head, trickle=b"X-Slow: 1234567890\r\n") < READ_TIMEOUT + 3
    body_head = request_bytes(_row())[: -len(_row())]
    assert held_for(live.port, body_head, trickle=_row()) < READ_TIMEOUT + 3
    assert exchange(live.port, request_bytes(_row()))[0] == 200


def test_a_client_that_hangs_up_mid_body_costs_one_log_line(live, caplog):
    """A disconnect is logged once, without a traceback, and counted."""
    before = _counted(live)
    caplog.set_level(logging.INFO)
    raw = request_bytes(_row())
    held_for(live.port, raw[:-10], limit=0.3)  # sends all but the last bytes, then closes
    deadline = time.monotonic() + 5
    while _counted(live) == before and time.monotonic() < deadline:
        time.sleep(0.05)
    lines = [r for r in caplog.records if "disconnect" in r.getMessage().lower()]
    assert len(lines) == 1, [r.getMessage() for r in caplog.records]
    assert lines[0].exc_info is None
    assert not any(r.exc_info for r in caplog.records)
    assert _counted(live) == before + 1


def _counted(live: LiveServer) -> float:
    """The sum of model_requests_total over every outcome."""
    status, body = exchange(
        live.port, b"GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    )
    assert status == 200
    return sum(
        float(line.rsplit(" ", 1)[1])
        for line in body.decode().splitlines()
        if line.startswith("model_requests_total{")
    )
