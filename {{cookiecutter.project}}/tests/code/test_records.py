"""metrics.json, gate.json and promotion.json: written and read by one typed model each."""

import json

import pytest

from {{ cookiecutter.package }}.errors import DataError, ExpectedError
from {{ cookiecutter.package }}.pipeline.gate import run_checks
from {{ cookiecutter.package }}.records import (
    GateReport,
    Metrics,
    Promotion,
    read_record,
    write_record,
)

from .test_gate import GATES, metrics


@pytest.mark.parametrize(
    ("record", "kind", "break_it", "field"),
    [
        (
            "metrics.json",
            Metrics,
            lambda m: m["metrics"]["roc_auc"].pop("value"),
            "metrics.roc_auc.value",
        ),
        ("metrics.json", Metrics, lambda m: m["slices"]["big"].update(n="many"), "slices.big.n"),
        ("gate.json", GateReport, lambda g: g.update(judge_on="mostly"), "judge_on"),
        ("gate.json", GateReport, lambda g: g["checks"][0].pop("passed"), "checks.0.passed"),
        ("promotion.json", Promotion, lambda p: p.update(decision="maybe"), "decision"),
        ("promotion.json", Promotion, lambda p: p["evidence"].pop("metrics"), "evidence.metrics"),
    ],
)
def test_a_malformed_record_names_file_and_field(tmp_path, record, kind, break_it, field):
    """A missing or wrong field in metrics/gate/promotion.json is a DataError naming both."""
    good = {
        "metrics.json": metrics(),
        "gate.json": GateReport(passed=True, judge_on="point", checks=run_checks(metrics(), GATES)),
        "promotion.json": Promotion.model_validate(
            {"challenger": "2", "champion": "1", "dry_run": False, "decision": "promoted",
             "reason": "wins", "version": "2", "model": "m",
             "evidence": {"data_sha256": None, "git_commit": None, "metrics": metrics().metrics}}
        ),
    }[record]  # fmt: skip
    path = tmp_path / record
    write_record(path, good)
    assert read_record(path, type(good)) == good  # written and read by the same model
    content = json.loads(path.read_text(encoding="utf-8"))
    break_it(content)
    path.write_text(json.dumps(content), encoding="utf-8")
    with pytest.raises(DataError) as raised:
        read_record(path, kind)
    assert isinstance(raised.value, ExpectedError)
    assert str(path) in str(raised.value)
    assert field in str(raised.value)
    missing = tmp_path / "absent" / record
    with pytest.raises(DataError, match="not found"):
        read_record(missing, type(good))


def test_a_stage_reading_a_malformed_record_fails_in_one_line(tmp_path, monkeypatch, capsys):
    """Through the command line: exit code 4 (DataError), file and field named, no traceback."""
    from {{ cookiecutter.package }}.cli import main as cli_main

    monkeypatch.chdir(tmp_path)
    (tmp_path / "metrics").mkdir()
    (tmp_path / "metrics" / "gate.json").write_text('{"passed": true, "checks": []}')
    assert cli_main(["gate", "--markdown"]) == DataError.exit_code == 4
    err = capsys.readouterr().err
    assert "metrics/gate.json" in err
    assert "judge_on: missing" in err
    assert "Traceback" not in err
