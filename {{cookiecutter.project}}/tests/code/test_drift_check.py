"""drift-check: a report for any batch, and a repository_dispatch to GitHub with a cool-down."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from {{ cookiecutter.package }}.artifacts import write_json
from {{ cookiecutter.package }}.drift import build_reference
from {{ cookiecutter.package }}.errors import RefusedError, ServiceError, run_main
from {{ cookiecutter.package }}.monitoring.drift_check import main
from tests.tiny_contract import tiny_contract, tiny_table, write_project


class FakeGitHub(ThreadingHTTPServer):
    """Stands in for api.github.com on loopback: records each request, answers `status`."""

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.requests: list[dict[str, Any]] = []
        self.status = 204
        self.redirect_to: str | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"


class _Handler(BaseHTTPRequestHandler):
    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length", 0))
        self.server.requests.append(
            {
                "method": self.command,
                "path": self.path,
                "headers": dict(self.headers),
                "body": json.loads(self.rfile.read(length)),
            }
        )
        if self.server.redirect_to is not None:
            self.send_response(302)
            self.send_header("Location", self.server.redirect_to + self.path)
            self.end_headers()
            return
        self.send_response(self.server.status)
        self.end_headers()
        if self.server.status != 204:
            self.wfile.write(b'{"message": "Bad credentials"}')

    def do_GET(self) -> None:
        # where a followed 302 lands (urllib turns the POST into a GET, token included)
        self.server.requests.append(
            {"method": "GET", "path": self.path, "headers": dict(self.headers)}
        )
        self.send_response(204)
        self.end_headers()

    def log_message(self, *args: Any) -> None:
        pass  # keep test output clean


def _serving() -> Iterator[FakeGitHub]:
    server = FakeGitHub()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()
    thread.join()


@pytest.fixture
def github() -> Iterator[FakeGitHub]:
    yield from _serving()


@pytest.fixture
def elsewhere() -> Iterator[FakeGitHub]:
    """A second origin, where a redirect would carry the token."""
    yield from _serving()


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A working directory with contract, params, a reference profile and a drifted batch."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)  # this directory's registry only
    write_project(tmp_path)
    write_json("reference_profile.json", build_reference(tiny_table(3000), tiny_contract(), 10))
    tiny_table(1000, seed=9, spend_shift=40.0).to_csv("batch.csv", index=False)
    tiny_table(1000, seed=9).to_csv("same.csv", index=False)
    for name in ("GITHUB_TOKEN", "GITHUB_REPOSITORY", "GITHUB_API_URL"):
        monkeypatch.delenv(name, raising=False)
    return tmp_path


def _run(*extra: str, data: str = "batch.csv") -> int:
    return run_main(
        "drift-check", main, ["--data", data, "--reference", "reference_profile.json", *extra]
    )


def _use(github: FakeGitHub, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GITHUB_API_URL", github.url)
    monkeypatch.setenv("GITHUB_REPOSITORY", "acme/churn-model")
    monkeypatch.setenv("GITHUB_TOKEN", "test-token")


def test_report_is_written_for_any_batch(project, capsys):
    """The JSON and HTML reports land under reports/drift-check/, named after the batch."""
    assert _run() == 0  # on_drift is warn
    report = json.loads((project / "reports/drift-check/batch.json").read_text())
    assert report["status"] == "drift"
    assert report["drifted"] == ["spend"]
    html = (project / "reports/drift-check/batch.html").read_text()
    assert html.count("<svg") == len(tiny_contract().feature_columns)
    assert "drift in 1 feature(s)" in capsys.readouterr().out


def test_on_drift_fail_is_a_refusal(project):
    """With drift.on_drift: fail the command fails, so a scheduled job shows red."""
    write_project(project, {"on_drift": "fail"})
    assert _run() == RefusedError.exit_code
    assert _run(data="same.csv") == 0


def test_notify_sends_repository_dispatch(project, github, monkeypatch):
    """One POST to /repos/OWNER/REPO/dispatches with GitHub's headers and a drift summary."""
    _use(github, monkeypatch)
    assert _run("--notify") == 0
    [request] = github.requests
    assert request["method"] == "POST"
    assert request["path"] == "/repos/acme/churn-model/dispatches"
    headers = {k.lower(): v for k, v in request["headers"].items()}
    assert headers["authorization"] == "Bearer test-token"
    assert headers["accept"] == "application/vnd.github+json"
    assert headers["x-github-api-version"] == "2022-11-28"
    assert headers["content-type"] == "application/json"
    body = request["body"]
    assert body["event_type"] == "drift-detected"
    payload = body["client_payload"]
    assert payload["status"] == "drift"
    assert payload["drifted"] == ["spend"]
    assert payload["max_psi"] > 0.2
    assert payload["rows"] == 1000
    assert payload["report"] == "reports/drift-check/batch.json"
    assert len(payload) <= 10  # GitHub's limit on client_payload keys
    state = json.loads((project / ".drift/last_notify.json").read_text())
    assert state["payload"] == payload


def test_cooldown_holds_back_a_storm(project, github, monkeypatch, capsys):
    """A second drift within the cool-down sends nothing; after it, the next one is sent."""
    _use(github, monkeypatch)
    assert _run("--notify") == 0
    assert _run("--notify") == 0
    assert len(github.requests) == 1
    assert "cool-down of 24 h" in capsys.readouterr().out
    state_path = project / ".drift/last_notify.json"
    state = json.loads(state_path.read_text())
    state["epoch"] -= 25 * 3600
    state_path.write_text(json.dumps(state))
    assert _run("--notify") == 0
    assert len(github.requests) == 2


def test_no_drift_sends_nothing(project, github, monkeypatch, capsys):
    """Only drift is news."""
    _use(github, monkeypatch)
    assert _run("--notify", data="same.csv") == 0
    assert github.requests == []
    assert "nothing to notify" in capsys.readouterr().out


def test_without_token_it_says_what_it_would_send(project, github, monkeypatch, capsys):
    """A dry run prints the request and neither sends nor starts a cool-down."""
    monkeypatch.setenv("GITHUB_API_URL", github.url)
    monkeypatch.setenv("GITHUB_REPOSITORY", "acme/churn-model")
    assert _run("--notify") == 0
    out = capsys.readouterr().out
    assert "GITHUB_TOKEN is not set" in out
    assert f"POST {github.url}/repos/acme/churn-model/dispatches" in out
    assert '"event_type": "drift-detected"' in out
    assert github.requests == []
    assert not (project / ".drift/last_notify.json").exists()


def test_rejected_dispatch_is_an_error_and_no_cooldown(project, github, monkeypatch, capsys):
    """A 401 from GitHub fails the command with GitHub's answer and records nothing."""
    _use(github, monkeypatch)
    github.status = 401
    assert _run("--notify") == ServiceError.exit_code
    assert "answered 401" in capsys.readouterr().err
    assert not (project / ".drift/last_notify.json").exists()


def test_missing_champion_is_not_an_error(project, capsys):
    """With no registry yet there is nothing to compare with: say so, exit 0."""
    assert main(["--data", "batch.csv"]) == 0
    assert "no reference yet" in capsys.readouterr().out
    report = json.loads((project / "reports/drift-check/batch.json").read_text())
    assert report["status"] == "no_reference"


def test_a_redirect_is_a_failure_and_the_token_stays_home(
    project, github, elsewhere, monkeypatch, capsys
):
    """A 302 to another origin is not followed: nothing reaches it, no cool-down starts."""
    _use(github, monkeypatch)
    github.redirect_to = elsewhere.url
    assert _run("--notify") == ServiceError.exit_code
    assert "redirect" in capsys.readouterr().err
    assert len(github.requests) == 1
    assert elsewhere.requests == []
    assert not (project / ".drift/last_notify.json").exists()


@pytest.mark.parametrize(
    "api", ["http://api.github.example", "http://10.0.0.1:8080", "ftp://127.0.0.1", "file:///x"]
)
def test_plain_http_is_refused_except_on_loopback(project, monkeypatch, capsys, api):
    """The token travels only over HTTPS; plain http is for loopback test servers."""
    monkeypatch.setenv("GITHUB_API_URL", api)
    monkeypatch.setenv("GITHUB_REPOSITORY", "acme/churn-model")
    monkeypatch.setenv("GITHUB_TOKEN", "test-token")
    assert _run("--notify") == ServiceError.exit_code
    assert "expected an https:// URL" in capsys.readouterr().err
