"""Real servers for the team-mode tests: an S3 endpoint (moto) and an `mlflow server`.

Each runs as a subprocess on a free loopback port and is ended by its pid (its process
group: `mlflow server` starts workers) when the context exits, whatever happened inside.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import IO, Any

import pytest

TEMPLATE = Path(__file__).resolve().parents[1]
# Full mlflow (the server) has its own environment: `make venv` builds it from server.txt.
SERVER_VENV = TEMPLATE / ".venv-server"
# moto accepts any key; these only have to be present for the S3 clients (DVC, boto3)
S3_CREDENTIALS = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
}


def free_port() -> int:
    """A TCP port nobody listens on right now (loopback)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def answers_http(url: str) -> Callable[[], bool]:
    """A readiness probe: `url` answers 200."""

    def probe() -> bool:
        with contextlib.suppress(OSError), urllib.request.urlopen(url, timeout=2) as response:
            return response.status == 200
        return False

    return probe


def wait_ready(
    ready: Callable[[], bool],
    process: subprocess.Popen[bytes],
    output: IO[bytes],
    timeout: float = 90.0,
) -> None:
    """Wait until `ready()`; fail with the server's output if it dies or never gets there."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            output.seek(0)
            printed = output.read().decode(errors="replace")[-4000:]
            pytest.fail(f"server {process.args} exited {process.returncode}:\n{printed}")
        if ready():
            return
        time.sleep(0.3)
    pytest.fail(f"server {process.args} not ready within {timeout:.0f} s")


@contextlib.contextmanager
def server_process(
    command: Sequence[str], ready: Callable[[], bool], **popen: Any
) -> Iterator[subprocess.Popen[bytes]]:
    """Start `command` in its own process group; end the whole group by pid at exit."""
    # output to a file, not a pipe: a chatty server must never block on a full pipe
    with tempfile.TemporaryFile() as output:
        process = subprocess.Popen(
            list(command),
            stdout=output,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            **popen,
        )
        try:
            wait_ready(ready, process, output)
            yield process
        finally:
            stop_group(process)


def stop_group(process: subprocess.Popen[bytes]) -> None:
    """SIGTERM the process group led by `process`, SIGKILL it if it lingers; reap it."""
    for sig, grace in ((signal.SIGTERM, 10.0), (signal.SIGKILL, 10.0)):
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, sig)
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(timeout=grace)
            break
    with contextlib.suppress(ProcessLookupError):  # workers that outlived their parent
        os.killpg(process.pid, signal.SIGKILL)


def s3_env(endpoint: str) -> dict[str, str]:
    """Environment for S3 clients talking to the loopback endpoint."""
    return {**S3_CREDENTIALS, "AWS_ENDPOINT_URL": endpoint}


def create_bucket(endpoint: str, bucket: str) -> None:
    """Create a bucket on the moto endpoint (boto3, as any S3 client would)."""
    import boto3

    client = boto3.client("s3", endpoint_url=endpoint, **_boto_credentials())
    client.create_bucket(Bucket=bucket)


def list_keys(endpoint: str, bucket: str) -> list[str]:
    """Every object key in the bucket."""
    import boto3

    client = boto3.client("s3", endpoint_url=endpoint, **_boto_credentials())
    pages = client.get_paginator("list_objects_v2").paginate(Bucket=bucket)
    return [item["Key"] for page in pages for item in page.get("Contents", [])]


def _boto_credentials() -> dict[str, str]:
    return {
        "aws_access_key_id": S3_CREDENTIALS["AWS_ACCESS_KEY_ID"],
        "aws_secret_access_key": S3_CREDENTIALS["AWS_SECRET_ACCESS_KEY"],
        "region_name": S3_CREDENTIALS["AWS_DEFAULT_REGION"],
    }


@contextlib.contextmanager
def moto_s3(bucket: str | None = "team-data") -> Iterator[str]:
    """An S3 endpoint on loopback (moto's server, the one DVC's own tests use); its URL.

    With `bucket`, that bucket exists when the block starts.
    """
    port = free_port()
    command = [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)]
    endpoint = f"http://127.0.0.1:{port}"
    with server_process(command, answers_http(f"{endpoint}/moto-api/")):
        if bucket:
            create_bucket(endpoint, bucket)
        yield endpoint


@contextlib.contextmanager
def mlflow_server(directory: Path, backend_uri: str | None = None) -> Iterator[str]:
    """A real `mlflow server` with proxied artifacts under `directory`; its tracking URI.

    SQLite in `directory` unless `backend_uri` (e.g. postgresql://...) is given. Clients
    need no access to `directory`: artifacts travel over HTTP (`mlflow-artifacts:` URIs).
    """
    mlflow = SERVER_VENV / "bin" / "mlflow"
    if not mlflow.exists():
        pytest.fail(f"{mlflow} is missing: run `make venv` (it builds the server environment)")
    directory.mkdir(parents=True, exist_ok=True)
    port = free_port()
    command = [
        str(mlflow), "server", "--host", "127.0.0.1", "--port", str(port), "--workers", "1",
        "--backend-store-uri", backend_uri or f"sqlite:///{directory / 'mlflow.db'}",
        "--artifacts-destination", str(directory / "artifacts"),
    ]  # fmt: skip
    uri = f"http://127.0.0.1:{port}"
    with server_process(command, answers_http(f"{uri}/health")):
        yield uri


POSTGRES_BIN = Path("/usr/lib/postgresql/15/bin")


@contextlib.contextmanager
def postgres_server() -> Iterator[str]:
    """A throw-away PostgreSQL cluster on a free loopback port (run as user `postgres`); its URI.

    Skips when this machine has no PostgreSQL 15 binaries or no `postgres` user.
    """
    import pwd
    import shutil

    if not (POSTGRES_BIN / "initdb").exists():
        pytest.skip(f"no PostgreSQL binaries in {POSTGRES_BIN}")
    try:
        user = pwd.getpwnam("postgres")
    except KeyError:
        pytest.skip("no `postgres` user to run the cluster as")
    as_postgres = ["setpriv", "--reuid", "postgres", "--regid", str(user.pw_gid), "--clear-groups"]
    data = Path(tempfile.mkdtemp(prefix="team-pg-"))  # not under pytest's root-only tmp dirs
    try:
        os.chown(data, user.pw_uid, user.pw_gid)
        subprocess.run(
            [*as_postgres, str(POSTGRES_BIN / "initdb"), "-D", str(data), "-U", "postgres",
             "--auth=trust", "-E", "UTF8"],
            check=True, capture_output=True,
        )  # fmt: skip
        port = free_port()
        command = [*as_postgres, str(POSTGRES_BIN / "postgres"), "-D", str(data), "-p", str(port),
                   "-k", str(data), "-h", "127.0.0.1"]  # fmt: skip
        ready = [str(POSTGRES_BIN / "pg_isready"), "-q", "-h", "127.0.0.1", "-p", str(port)]
        with server_process(command, lambda: subprocess.run(ready).returncode == 0):
            yield f"postgresql://postgres@127.0.0.1:{port}/postgres"
    finally:
        shutil.rmtree(data, ignore_errors=True)
