"""Tell GitHub about drift: a `repository_dispatch` event, at most once per cool-down.

HTTP clients, one per role: aiohttp for the concurrent data path (router, shadow, load
generator); http.client for blocking calls to our own loopback servers (rollout/admin.py: it
never consults HTTP(S)_PROXY, so a CI proxy cannot intercept loopback traffic); and
urllib.request here, for the one call that leaves the machine, because it honours the proxy
settings and verifies TLS by default. httpx is used only by tests (Starlette's TestClient).
"""

from __future__ import annotations

import ipaddress
import json
import os
import textwrap
import time
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NoReturn

from ..artifacts import write_json
from ..errors import ServiceError

EVENT_TYPE = "drift-detected"
STATE = Path(".drift/last_notify.json")
DEFAULT_API = "https://api.github.com"


class NotifyError(ServiceError):
    """The dispatch could not be sent (bad settings, network, or GitHub said no)."""


@dataclass(frozen=True)
class Outcome:
    """What happened to one notification: sent, dry run, or held back by the cool-down."""

    action: str  # "sent" | "dry_run" | "cooldown"
    message: str
    request: dict[str, Any]


def build_payload(report: dict[str, Any], report_path: str) -> dict[str, Any]:
    """The `client_payload`: a summary a workflow can read."""
    # GitHub rejects a client_payload with more than ten top-level keys
    return {
        "status": report["status"],
        "drifted": report.get("drifted", [])[:20],
        "max_psi": report.get("max_psi"),
        "rows": (report.get("rows") or {}).get("current"),
        "data": report.get("data"),
        "reference": report.get("reference"),
        "report": report_path,
    }


def _loopback(host: str | None) -> bool:
    if host == "localhost":
        return True
    try:
        return host is not None and ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def check_api_url(api: str) -> None:
    """HTTPS only: the token travels with the request. Plain http for a loopback test server."""
    parsed = urllib.parse.urlsplit(api)
    if parsed.scheme == "https" and parsed.hostname:
        return
    if parsed.scheme == "http" and _loopback(parsed.hostname):
        return
    raise NotifyError(
        f"GITHUB_API_URL {api!r}: expected an https:// URL (http:// only for a loopback test server)"
    )


def dispatch_request(payload: dict[str, Any], repository: str, api: str) -> dict[str, Any]:
    """Method, URL and JSON body of the dispatch (no credentials: they are added when sending)."""
    check_api_url(api)
    if repository.count("/") != 1 or not all(repository.split("/")):
        raise NotifyError(f"repository {repository!r}: expected OWNER/NAME (set GITHUB_REPOSITORY)")
    return {
        "method": "POST",
        "url": f"{api.rstrip('/')}/repos/{repository}/dispatches",
        "body": {"event_type": EVENT_TYPE, "client_payload": payload},
    }


def _cooldown_left(state: Path, hours: float, now: float) -> tuple[float, str]:
    if not state.is_file():
        return 0.0, ""
    try:
        last = json.loads(state.read_text(encoding="utf-8"))
        sent_at = float(last["epoch"])
    except (OSError, ValueError, KeyError, TypeError):
        return 0.0, ""  # an unreadable state file must not silence alerts for good
    return max(0.0, sent_at + hours * 3600.0 - now), str(last.get("time", ""))


def notify(
    payload: dict[str, Any],
    cooldown_hours: float,
    state: Path = STATE,
    env: dict[str, str] | None = None,
    timeout: float = 10.0,
    now: float | None = None,
) -> Outcome:
    """Send the dispatch unless one was sent within the cool-down; with no token, a dry run."""
    env = dict(os.environ) if env is None else env
    now = time.time() if now is None else now
    api = env.get("GITHUB_API_URL") or DEFAULT_API
    repository = env.get("GITHUB_REPOSITORY", "")
    token = env.get("GITHUB_TOKEN", "")
    left, last = _cooldown_left(state, cooldown_hours, now)
    if left > 0:
        request = {
            "method": "POST",
            "url": "",
            "body": {"event_type": EVENT_TYPE, "client_payload": payload},
        }
        return Outcome(
            "cooldown",
            f"not sent: cool-down of {cooldown_hours:g} h since the last dispatch at {last} "
            f"({left / 3600:.1f} h left; state in {state})",
            request,
        )
    if not token:
        request = dispatch_request(payload, repository or "OWNER/REPO", api)
        return Outcome(
            "dry_run",
            "not sent: GITHUB_TOKEN is not set. Would have sent:\n"
            f"  {request['method']} {request['url']}\n"
            + textwrap.indent(json.dumps(request["body"], indent=2), "  "),
            request,
        )
    request = dispatch_request(payload, repository, api)
    _send(request, token, timeout)
    stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(now))
    write_json(state, {"epoch": now, "time": stamp, "url": request["url"], "payload": payload})
    return Outcome("sent", f"sent {EVENT_TYPE} to {request['url']}", request)


class _RefuseRedirects(urllib.request.HTTPRedirectHandler):
    """A redirect is a failure: following it would carry the bearer token to another URL."""

    def redirect_request(
        self, req: Any, fp: Any, code: int, msg: str, headers: Any, newurl: str
    ) -> NoReturn:
        raise NotifyError(
            f"{req.full_url}: answered {code} redirecting to {newurl}; not followed, since the "
            "token would go with it (set GITHUB_API_URL to the final API address)"
        )


_OPENER = urllib.request.build_opener(_RefuseRedirects)


def _send(request: dict[str, Any], token: str, timeout: float) -> None:
    data = json.dumps(request["body"]).encode("utf-8")
    # dispatch_request only builds https (or loopback http) URLs: no file: or custom scheme
    http = urllib.request.Request(request["url"], data=data, method=request["method"])  # noqa: S310
    http.add_header("Accept", "application/vnd.github+json")
    http.add_header("Authorization", f"Bearer {token}")
    http.add_header("X-GitHub-Api-Version", "2022-11-28")
    http.add_header("Content-Type", "application/json")
    http.add_header("User-Agent", "drift-check")
    try:
        with _OPENER.open(http, timeout=timeout) as response:
            status = response.status
    except urllib.error.HTTPError as error:
        detail = error.read(500).decode("utf-8", "replace")
        raise NotifyError(f"{request['url']}: GitHub answered {error.code}: {detail}") from None
    except (urllib.error.URLError, TimeoutError, OSError) as error:
        raise NotifyError(f"{request['url']}: cannot connect: {error}") from None
    if status != 204:
        raise NotifyError(f"{request['url']}: expected 204 No Content, got {status}")
