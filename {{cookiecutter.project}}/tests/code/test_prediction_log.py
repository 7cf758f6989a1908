"""The prediction log: request ids, JSON lines, rotation, a bounded queue, loss stated."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import pytest
from prometheus_client import CollectorRegistry

from {{ cookiecutter.package }}.data import read_log_lines
from {{ cookiecutter.package }}.errors import DataError
from {{ cookiecutter.package }}.serve.prediction_log import PredictionLog, request_id

ROW = {"plan": "basic", "tenure": 3}
ANSWER = {"id": "c-1", "score": 0.25, "label": 0}


def lines(directory):
    return [
        record
        for path in sorted(directory.glob("predictions.jsonl*"))
        for record in read_log_lines(path)[0]
    ]


def test_request_id_echoes_a_plain_caller_id_and_replaces_anything_else():
    """A caller's id is kept if it is a short plain token; a forged or huge one is replaced."""
    assert request_id("abc-123_DEF.4") == "abc-123_DEF.4"
    for bad in (None, "", "x" * 129, "a\nforged log line", 'a"b'):
        generated = request_id(bad)
        assert generated != bad
        assert len(generated) == 32


def test_every_row_is_one_json_line_and_files_rotate(tmp_path):
    """Rows become JSON lines with id, version, variant, score and features; files rotate."""
    log = PredictionLog(
        str(tmp_path / "predictions.jsonl"), CollectorRegistry(), max_bytes=2_000, backups=50
    )
    log.start()
    for i in range(100):
        log.write(f"r{i}", "7", "canary", [ROW], [{**ANSWER, "id": f"c-{i}"}])
    log.stop()
    records = lines(tmp_path)
    assert len(records) == 100
    assert len(list(tmp_path.glob("predictions.jsonl.*"))) >= 2
    first = next(r for r in records if r["request_id"] == "r0")
    assert first["model_version"] == "7"
    assert first["variant"] == "canary"
    assert first["id"] == "c-0"
    assert first["features"] == ROW


def test_a_full_queue_drops_and_counts_never_blocks(tmp_path):
    """With the writer stalled, writes past the queue's capacity are dropped and counted."""
    registry = CollectorRegistry()
    log = PredictionLog(str(tmp_path / "predictions.jsonl"), registry, capacity=5)
    for i in range(12):  # the writer thread is not running yet: nothing drains the queue
        log.write(f"r{i}", "1", "stable", [ROW], [ANSWER])
    assert registry.get_sample_value("model_prediction_log_dropped_total") == 7
    log.start()
    log.stop()
    assert len(lines(tmp_path)) == 5


def test_loss_on_a_crash_is_at_most_what_was_queued(tmp_path):
    """A killed server loses at most the queued records; a clean stop loses none."""
    script = textwrap.dedent(
        """
        import os, sys
        from prometheus_client import CollectorRegistry
        from {{ cookiecutter.package }}.serve.prediction_log import PredictionLog
        log = PredictionLog(sys.argv[1], CollectorRegistry(), capacity=100_000)
        log.start()
        for i in range(2000):
            log.write(str(i), "1", "stable", [{"x": i}], [{"id": str(i), "score": 0.5, "label": 1}])
        if sys.argv[2] == "crash":
            os._exit(9)
        log.stop()
        """
    )
    for mode in ("clean", "crash"):
        folder = tmp_path / mode
        folder.mkdir()
        done = subprocess.run(
            [sys.executable, "-c", script, str(folder / "predictions.jsonl"), mode],
            capture_output=True,
            text=True,
            check=False,
        )
        written = lines(folder) if (folder / "predictions.jsonl").exists() else []
        if mode == "clean":
            assert done.returncode == 0, done.stderr
            assert len(written) == 2000
        else:
            assert done.returncode == 9
            # the rest were still queued: lost, as documented; a torn last line is skipped
            assert len(written) <= 2000
            assert all(r["model_version"] == "1" for r in written)


def test_stdout_target_for_containers(capfd):
    """`-` writes the lines to stdout, where a cluster's log collector picks them up."""
    log = PredictionLog("-", CollectorRegistry())
    log.start()
    log.write("r1", "3", "stable", [ROW], [ANSWER])
    log.stop()
    out = capfd.readouterr().out.strip().splitlines()
    assert json.loads(out[-1])["request_id"] == "r1"


def test_a_torn_last_line_is_skipped_a_torn_middle_line_is_an_error(tmp_path):
    """A crash can cut the last line short; any other broken line names its file and line."""
    path = tmp_path / "predictions.jsonl"
    path.write_text('{"id": "a", "score": 0.1}\n{"id": "b", "sco', encoding="utf-8")
    records, torn = read_log_lines(path)
    assert [r["id"] for r in records] == ["a"]
    assert torn == 1
    path.write_text('{"id": "a"\n{"id": "b", "score": 0.2}\n', encoding="utf-8")
    with pytest.raises(DataError, match=r"predictions\.jsonl:1"):
        read_log_lines(path)


def test_an_unwritable_log_is_a_clear_start_up_error(tmp_path):
    """The server refuses to start and says what to set, instead of a traceback later."""
    from {{ cookiecutter.package }}.serve.app import writable_log
    from {{ cookiecutter.package }}.serve.loading import ServeStartError

    blocker = tmp_path / "logs"
    blocker.write_text("a file where the log's folder should be", encoding="utf-8")
    with pytest.raises(ServeStartError, match=r"serve\.prediction_log"):
        writable_log(str(blocker / "predictions.jsonl"))
    writable_log("-")  # stdout and `off` (None) need nothing
    writable_log(None)
