"""Team mode: data and registry shared across machines, each machine a fresh `git clone`.

Real parts only: a loopback S3 endpoint (moto's server) as the DVC remote, a real
`mlflow server` with proxied artifacts as the registry, real processes racing on it.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import shutil
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from .conftest import bake, run, tool_env
from .servers import (
    SERVER_VENV,
    answers_http,
    free_port,
    list_keys,
    mlflow_server,
    moto_s3,
    postgres_server,
    s3_env,
    server_process,
)

pytestmark = pytest.mark.slow
VENV = f"VENV={Path(sys.prefix)}"
RAW = Path("data/raw/churn.csv")
UP_TO_DATE = "Data and pipelines are up to date."


def git(cwd: Path, *args: str) -> str:
    """Run git with a throw-away identity."""
    command = ["git", "-c", "user.name=t", "-c", "user.email=t@example.invalid", *args]
    return run(command, cwd).stdout


def commit_all(project: Path, message: str) -> None:
    git(project, "add", "-A")
    git(project, "commit", "--quiet", "-m", message)


def clone(source: Path, destination: Path) -> Path:
    """A fresh machine: a clone of what was committed, nothing else (no DVC cache, no registry)."""
    run(["git", "clone", "--quiet", str(source), str(destination)], source.parent)
    return destination


def make(project: Path, *args: str, env: dict[str, str] | None = None, check: bool = True):
    return run(
        ["make", "--no-print-directory", *args, VENV],
        project,
        check=check,
        env=env or tool_env(project),
    )


def team_env(project: Path, endpoint: str | None = None, tracking_uri: str | None = None):
    """What a CI job gets from its secrets: S3 credentials and the registry's URI."""
    env = tool_env(project)
    if endpoint:
        env |= s3_env(endpoint)
    if tracking_uri:
        env["MLFLOW_TRACKING_URI"] = tracking_uri
    return env


def promotion(project: Path) -> dict:
    return json.loads((project / "metrics" / "promotion.json").read_text())


def md5(path: Path) -> str:
    return hashlib.md5(path.read_bytes(), usedforsecurity=False).hexdigest()


@pytest.fixture
def committed_bake(tmp_path) -> Path:
    """The default bake (churn), committed as a user would after `make install`."""
    project = bake(tmp_path / "origin")
    commit_all(project, "baked")
    return project


def test_sample_data_regenerated_and_verified(committed_bake, tmp_path):
    """With no remote, a fresh clone regenerates the sample and checks it against the .dvc md5;
    a changed generator or changed params is a clear error, and no unverified file is left."""
    project = clone(committed_bake, tmp_path / "fresh")
    dvc_file = project / f"{RAW}.dvc"
    recorded = dvc_file.read_text()
    assert not (project / RAW).exists()  # git never held the data

    done = make(project, "data")
    assert "regenerated and verified" in done.stdout
    assert md5(project / RAW) in recorded and dvc_file.read_text() == recorded
    assert "not in cache" not in run(["dvc", "status", str(dvc_file)], project).stdout
    assert "matches" in make(project, "data").stdout  # present and verified: nothing to do

    tampered = {
        "params.yaml": ("seed: 20240601", "seed: 20240602"),
        "src/churn_model/sample_data.py": ("-0.9\n", "-0.8\n"),
    }
    for name, (old, new) in tampered.items():
        path = project / name
        original = path.read_text()
        assert old in original, f"{name} no longer has {old!r}: update this test"
        path.write_text(original.replace(old, new, 1))
        (project / RAW).unlink(missing_ok=True)
        failed = make(project, "validate", check=False)
        assert failed.returncode != 0, name
        message = failed.stderr
        assert f"but {RAW}.dvc records" in message and "sample_data.py" in message, message
        assert "make remote URL=" in message and "Traceback" not in message, message
        left = {p.name for p in (project / "data" / "raw").iterdir()}
        assert left == {"churn.csv.dvc", ".gitignore"}, left  # no unverified data left behind
        path.write_text(original)
    assert "regenerated and verified" in make(project, "data").stdout


def test_own_data_without_remote_says_what_to_configure(tmp_path):
    """An `own` data set cannot be regenerated: with no remote, every stage stops at once and
    says to configure one (never a FileNotFoundError from inside DVC)."""
    project = bake(tmp_path / "origin", dataset="own")
    before = make(project, "validate", check=False)
    assert before.returncode != 0 and "make contract DATA=" in before.stderr, before.stderr

    own = tmp_path / "customers.csv"
    run([sys.executable, "-m", "churn_model", "sample-data", "--out", str(own), "--rows", "500",
         "--contract", str(Path(__file__).parents[1] / "{{cookiecutter.project}}" / "_variants"
                           / "contract.churn.yaml")], project)  # fmt: skip
    make(project, "contract", f"DATA={own}")
    commit_all(project, "own data tracked")
    fresh = clone(project, tmp_path / "fresh")
    for target in ("data", "validate", "repro"):
        failed = make(fresh, target, check=False)
        assert failed.returncode != 0, target
        message = failed.stderr
        assert "no DVC remote is configured" in message, message
        assert "make remote URL=" in message and "make pull" in message, message
        assert "FileNotFoundError" not in message and "Traceback" not in message, message


def test_team_round_trip(tmp_path):
    """Machine A (where the project was baked) runs the pipeline against the shared remote
    and registry, pushes, and is deleted. Machine B (a fresh clone) pulls: `dvc status` is
    clean and a repro retrains nothing (only promote runs: it always asks the registry, and
    finds its model is the champion). Machine C changes a param: a pull request's
    `make compare` moves nothing (its drift report uses the champion's reference profile,
    from the server); `make promote` from that uncommitted change only compares too; once
    the change is committed and on the hub's main, `make promote` loads A's champion from
    the server (A's files are gone) and the paired test runs."""
    a = bake(tmp_path / "machine-a")
    commit_all(a, "baked")
    hub = tmp_path / "hub.git"  # the team's git server
    with moto_s3("team-data") as endpoint, mlflow_server(tmp_path / "server") as uri:
        env_a = team_env(a, endpoint, uri)
        make(a, "remote", "URL=s3://team-data/dvc", f"ENDPOINT={endpoint}", env=env_a)
        config = (a / ".dvc" / "config").read_text()
        assert "s3://team-data/dvc" in config and "testing" not in config  # no credentials
        commit_all(a, "DVC remote")  # as the README says: a release is a clean commit
        make(a, "repro", env=env_a)
        first = promotion(a)
        assert first["decision"] == "promoted" and first["version"] == "1", first["reason"]
        commit_all(a, "pipeline run with a remote")
        make(a, "push", env=env_a)
        assert any(key.startswith("dvc/files/md5/") for key in list_keys(endpoint, "team-data"))
        run(["git", "clone", "--quiet", "--bare", str(a), str(hub)], tmp_path)
        shutil.rmtree(a)  # its workspace, DVC cache and registry/ folder are gone

        b = clone(hub, tmp_path / "machine-b")
        env_b = team_env(b, endpoint, uri)
        make(b, "pull", env=env_b)
        status = run(["dvc", "status"], b, env=env_b).stdout
        assert status.split() == ["promote:", "always", "changed"], status
        again = make(b, "repro", env=env_b).stdout
        assert "Running stage 'train'" not in again and "Running stage 'promote'" in again
        assert promotion(b)["reason"] == "the challenger is the champion", promotion(b)
        assert not (b / "registry" / "mlflow.db").exists()  # the server was the registry

        c = clone(hub, tmp_path / "machine-c")
        env_c = team_env(c, endpoint, uri)
        assert "pulled from DVC remote 'storage'" in make(c, "data", env=env_c).stdout
        params = c / "params.yaml"
        params.write_text(params.read_text().replace("learning_rate: 0.05", "learning_rate: 0.1"))
        log_before = make(c, "promotion-log", env=env_c).stdout.splitlines()

        make(c, "compare", env=env_c)
        drift = json.loads((c / "reports" / "drift.json").read_text())
        assert drift["reference"] == "champion version 1 (reference_profile.json)", drift
        dry = promotion(c)
        assert dry["dry_run"] is True and dry["champion"] == "1", dry
        assert dry["decision"] in ("would_promote", "not_promoted"), dry["reason"]
        assert "comparison" in dry and dry["challenger"] is None, dry  # nothing registered
        assert make(c, "promotion-log", env=env_c).stdout.splitlines() == log_before

        make(c, "promote", env=env_c)  # uncommitted: compared only, and it says how to promote
        laptop = promotion(c)
        assert (
            laptop["dry_run"] is True
            and "uncommitted changes: params.yaml" in (laptop["compared_only"])
        ), laptop
        assert make(c, "promotion-log", env=env_c).stdout.splitlines() == log_before

        commit_all(c, "learning rate 0.1")
        git(c, "push", "--quiet", "origin", "HEAD")  # onto the hub's default branch
        make(c, "promote", env=env_c)
        real = promotion(c)
        assert real["dry_run"] is False and real["champion"] == "1", real
        assert real["challenger"] == "2" and "comparison" in real, real  # v1 from the server
        same = {"would_promote": "promoted", "not_promoted": "not_promoted"}[dry["decision"]]
        assert real["decision"] == same, (dry, real)
        log = [json.loads(line) for line in make(c, "promotion-log", env=env_c).stdout.splitlines()]
        assert [entry["decision"] for entry in log] == ["promoted", real["decision"]]


RACER = textwrap.dedent(
    """
    import json, sys, time
    from pathlib import Path
    from churn_model.registry import Registry

    uri, root, version, expected, signals = sys.argv[1:6]
    registry = Registry("raced", tracking_uri=uri, root=root)
    registry.get_alias("champion")  # MLflow imported and connected before the start signal
    Path(signals, f"ready-{version}").touch()
    while not Path(signals, "go").exists():
        time.sleep(0.001)
    began = time.time()
    won = registry.move_alias("champion", version, None if expected == "-" else expected)
    print(json.dumps({"version": version, "won": won, "began": began, "ended": time.time()}))
    """
)
REGISTER = (
    "import sys; from churn_model.registry import Registry; "
    "r = Registry('raced', tracking_uri=sys.argv[1], root=sys.argv[2]); "
    "[r.register(sys.argv[3], {'n': str(i)}) for i in range(int(sys.argv[4]))]"
)
CHAMPION = (
    "import sys; from churn_model.registry import Registry; "
    "print(Registry('raced', tracking_uri=sys.argv[1], root=sys.argv[2]).get_alias('champion').version)"
)


def race(project: Path, uri: str, versions: list[str], expected: str, signals: Path) -> list[dict]:
    """Start one process per version, release them together, return what each was told."""
    signals.mkdir()
    processes = [
        subprocess.Popen(
            [
                sys.executable,
                "-c",
                RACER,
                uri,
                str(signals.parent / f"runner-{version}"),
                version,
                expected,
                str(signals),
            ],
            cwd=project,
            env=tool_env(project),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for version in versions
    ]
    deadline = time.monotonic() + 120
    while len(list(signals.glob("ready-*"))) < len(versions) and time.monotonic() < deadline:
        time.sleep(0.05)
    (signals / "go").touch()
    results = []
    for process in processes:
        out, err = process.communicate(timeout=120)
        assert process.returncode == 0, err[-3000:]
        results.append(json.loads(out.strip().splitlines()[-1]))
    return results


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_alias_race_on_a_shared_server(tmp_path, backend):
    """Processes with separate workspaces (no shared file lock, as on different runners) race
    to move `champion` from the same state on one real `mlflow server` (SQLite or PostgreSQL
    behind it). Proven in every round: exactly one mover is told it won, every other one is
    told it lost, the alias points at the winner's version, and losers' moves overlapped
    the winner's in time."""
    project = bake(tmp_path / "origin")
    racers, rounds = 5, 2
    with contextlib.ExitStack() as servers:
        database = servers.enter_context(postgres_server()) if backend == "postgresql" else None
        uri = servers.enter_context(mlflow_server(tmp_path / "server", database))
        model = tmp_path / "m.skops"
        model.write_bytes(b"any model bytes")
        total = str(racers * rounds)
        run([sys.executable, "-c", REGISTER, uri, str(tmp_path / "setup"), str(model), total],
            project)  # fmt: skip
        expected = "-"
        for round_number in range(rounds):
            versions = [str(round_number * racers + i + 1) for i in range(racers)]
            results = race(project, uri, versions, expected, tmp_path / f"round-{round_number}")
            winners = [r for r in results if r["won"]]
            assert len(winners) == 1, results
            won = winners[0]
            overlapping = [
                r for r in results
                if r is not won and r["began"] < won["ended"] and won["began"] < r["ended"]
            ]  # fmt: skip
            assert overlapping, results  # a real race, not movers one after another
            current = run([sys.executable, "-c", CHAMPION, uri, str(tmp_path / "check")], project)
            assert current.stdout.strip() == won["version"], (current.stdout, results)
            expected = won["version"]


def test_make_registry_server(committed_bake, tmp_path):
    """`make registry-server` runs a real MLflow server from its own environment, with
    proxied artifacts: a client stores the model on the server (`mlflow-artifacts:`), and
    another workspace downloads it over HTTP."""
    (SERVER_VENV / ".installed").touch()  # the template's server venv: newer than server.txt
    port = free_port()
    command = [
        "make", "--no-print-directory", "registry-server", VENV,
        f"SERVER_VENV={SERVER_VENV}", f"REGISTRY_PORT={port}", "WORKERS=1",
    ]  # fmt: skip
    uri = f"http://127.0.0.1:{port}"
    env = tool_env(committed_bake)
    with server_process(command, answers_http(f"{uri}/health"), env=env, cwd=committed_bake):
        model = tmp_path / "model.skops"
        model.write_bytes(b"served bytes")
        register = (
            "import sys; from churn_model.registry import Registry; "
            "ref = Registry(root=sys.argv[2]).register(sys.argv[1], {}); print(ref.source)"
        )
        served = team_env(committed_bake, tracking_uri=uri)
        writer = run([sys.executable, "-c", register, str(model), str(tmp_path / "a")],
                     committed_bake, env=served)  # fmt: skip
        assert writer.stdout.strip().startswith("mlflow-artifacts:/"), writer.stdout
        stored = list((committed_bake / "registry-server" / "artifacts").rglob("model.skops"))
        assert [p.read_bytes() for p in stored] == [b"served bytes"]
        read = (
            "import sys; from churn_model.registry import Registry; "
            "print(Registry(root=sys.argv[1]).model_path('1').read_bytes().decode())"
        )
        reader = run([sys.executable, "-c", read, str(tmp_path / "b")], committed_bake, env=served)
        assert reader.stdout.strip() == "served bytes"
    assert "registry-server/" in (committed_bake / ".gitignore").read_text()


def test_make_remote_takes_values_as_text(committed_bake, tmp_path):
    """`make remote` hands URL/ENDPOINT/REGION to dvc as they are: quotes, `;` and `$(...)`
    are neither run by the shell nor expanded by make; credentials are not asked for."""
    marker = tmp_path / "ran"
    url = f's3://bucket/x$(shell touch {marker})"; touch {marker}'
    make(committed_bake, "remote", f"URL={url}", "ENDPOINT=http://127.0.0.1:9", "REGION=eu-west-1")
    assert not marker.exists()
    config = (committed_bake / ".dvc" / "config").read_text()
    assert f"url = {url}" in config and "endpointurl = http://127.0.0.1:9" in config
    assert "region = eu-west-1" in config and "remote = storage" in config
    usage = make(committed_bake, "remote", check=False)
    assert usage.returncode != 0 and "usage: make remote URL=" in usage.stdout
