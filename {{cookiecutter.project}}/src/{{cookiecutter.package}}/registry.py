"""The model registry: MLflow with aliases, embedded (a SQLite file) or a shared server.

`MLFLOW_TRACKING_URI` picks the registry (unset: `registry/mlflow.db` on this machine; inside
a DVC stage, under the repository DVC runs for, so a queued experiment's temporary workspace
uses the project's registry, not an empty one of its own); MLflow reads `MLFLOW_TRACKING_USERNAME`/`PASSWORD` or `MLFLOW_TRACKING_TOKEN` itself. Model
files, reference profiles and the promotion log are kept IN the registry (run artifacts, a
`<model>.promotions` experiment), so any clone that reaches the registry can use them.

Aliases `champion`, `challenger` and `previous` move only by compare-and-set. MLflow has no
server-side compare-and-set, so each move first claims its sequence number by creating an
experiment named `<model>.cas.<alias>.<n>`: experiment names are unique in the tracking
database (deleted ones too), so of several movers only one creates it, on any number of
machines; the others are told they lost. The move is then read back. Registering claims
the model file's hash the same way, so racing promoters of one model register it once.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import re
import shutil
import socket
import tempfile
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlparse

from filelock import FileLock

from .data import file_sha256
from .errors import ServiceError
from .paths import MODEL, REFERENCE

REGISTRY_DIR = Path("registry")
# the files kept with every registered version
MODEL_FILE = MODEL.name
REFERENCE_FILE = REFERENCE.name
LOG_FILE = "event.json"  # each promotion-log entry: one run of `<model>.promotions`
LOCAL_SCHEMES = ("sqlite", "file", "")  # tracking stores that live on this machine
STALE_CLAIM_SECONDS = 600  # an alias move takes well under a second; a claim this old died
REGISTER_WAIT_SECONDS = 300  # how long a losing registrant waits for the winner's version
VERSION = re.compile(r"[1-9][0-9]{0,8}")  # what MLflow numbers versions with


def package_model_name() -> str:
    """The registered model's default name: this package's name."""
    return __name__.split(".")[0]


def default_tracking_uri(root: Path = REGISTRY_DIR) -> str:
    """`MLFLOW_TRACKING_URI` if set, else the embedded SQLite registry under `root`."""
    root = in_project(root)
    return os.environ.get("MLFLOW_TRACKING_URI") or f"sqlite:///{(root / 'mlflow.db').resolve()}"


def in_project(root: Path) -> Path:
    """A relative registry folder, under the repository a DVC stage runs for (`DVC_ROOT`).

    DVC runs a queued experiment in a temporary copy of the workspace and names the real
    repository in DVC_ROOT: its registry is the project's, never an empty one of its own.
    """
    project = os.environ.get("DVC_ROOT")
    return Path(project) / root if project and not root.is_absolute() else root


def check_version(text: str) -> str:
    """A model version number as MLflow writes it; RegistryError naming what was given."""
    if not VERSION.fullmatch(text):
        raise RegistryError(
            f"{text!r} is not a model version: give the number the registry assigned "
            "(e.g. VERSION=2; `make promotion-log` lists them)"
        )
    return text


def version_argument(text: str) -> str:
    """`check_version` as an argparse type: a bad version is a usage error that says why."""
    import argparse

    try:
        return check_version(text)
    except RegistryError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


def display_uri(uri: str) -> str:
    """Where the registry is, safe to write down: no credentials, no query, no machine path."""
    parsed = urlparse(uri)
    if parsed.scheme in LOCAL_SCHEMES:
        return f"embedded ({REGISTRY_DIR.as_posix()}/mlflow.db)"
    host = parsed.hostname or ""
    port = f":{parsed.port}" if parsed.port else ""
    return f"{parsed.scheme}://{host}{port}{parsed.path}".rstrip("/")


@dataclass(frozen=True)
class ModelRef:
    """One registered model version and what was recorded about it."""

    version: str
    sha256: str
    tags: dict[str, str] = field(default_factory=dict)
    source: str = ""
    run_id: str = ""


class RegistryError(ServiceError):
    """The registry cannot do what was asked (unknown version, lost compare-and-set...)."""


class Registry:
    """A thin, typed layer over MlflowClient with compare-and-set alias moves."""

    def __init__(
        self,
        model_name: str | None = None,
        tracking_uri: str | None = None,
        root: str | Path = REGISTRY_DIR,
    ) -> None:
        self.root = in_project(Path(root))
        self.model_name = model_name or package_model_name()
        self.tracking_uri = tracking_uri or default_tracking_uri(self.root)
        self.is_local = urlparse(self.tracking_uri).scheme in LOCAL_SCHEMES
        self.display_uri = display_uri(self.tracking_uri)
        self._client: Any = None

    @property
    def client(self) -> Any:
        """The MlflowClient, created on first use (MLflow is slow to import)."""
        if self._client is None:
            os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
            # a server's client prints a UI link per run; stage output stays one line
            os.environ.setdefault("MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT", "true")
            from mlflow import MlflowClient

            # MLflow logs schema migrations at INFO on first use; stage output stays readable.
            logging.getLogger("mlflow").setLevel(logging.WARNING)
            self.root.mkdir(parents=True, exist_ok=True)
            self._client = MlflowClient(
                tracking_uri=self.tracking_uri, registry_uri=self.tracking_uri
            )
        return self._client

    def _lock(self) -> FileLock:
        """Serialises this machine's writers (other machines: see `move_alias`)."""
        self.root.mkdir(parents=True, exist_ok=True)
        return FileLock(str(self.root / ".registry.lock"), timeout=60)

    def _experiment_id(self, name: str) -> str:
        """The experiment's id, created if missing (by one of several racing creators)."""
        from mlflow.exceptions import MlflowException

        experiment = self.client.get_experiment_by_name(name)
        if experiment is not None:
            return str(experiment.experiment_id)
        # a server stores artifacts where it was told (proxied: `mlflow-artifacts:`); the
        # embedded store keeps them beside its database
        location = None
        if self.is_local:
            artifacts = (self.root / "artifacts").resolve()
            artifacts.mkdir(parents=True, exist_ok=True)
            location = artifacts.as_uri()
        try:
            return str(self.client.create_experiment(name, artifact_location=location))
        except MlflowException:  # created by another writer meanwhile
            return str(self.client.get_experiment_by_name(name).experiment_id)

    def register(
        self, model_path: str | Path, tags: dict[str, Any], extra_files: tuple[Path, ...] = ()
    ) -> ModelRef:
        """Log the model (and files kept with it) as run artifacts; register a new version."""
        from mlflow.exceptions import MlflowException

        model_path = Path(model_path)
        sha = file_sha256(model_path)
        string_tags = {k: _tag(v) for k, v in tags.items()} | {"sha256": sha}
        with self._lock():
            run = self.client.create_run(
                self._experiment_id(self.model_name), tags={"stage": "promote"}
            )
            with tempfile.TemporaryDirectory() as staging:
                # the artifact keeps the file's name; readers look for MODEL_FILE
                staged = shutil.copyfile(model_path, Path(staging) / MODEL_FILE)
                self.client.log_artifact(run.info.run_id, str(staged), artifact_path="model")
            for extra in extra_files:
                self.client.log_artifact(run.info.run_id, str(extra), artifact_path="model")
            self.client.set_terminated(run.info.run_id)
            with contextlib.suppress(MlflowException):  # versions accumulate under one name
                self.client.create_registered_model(self.model_name)
            version = self.client.create_model_version(
                self.model_name,
                source=f"{run.info.artifact_uri}/model",
                run_id=run.info.run_id,
                tags=string_tags,
                await_creation_for=0,
            )
        return _ref(version)

    def register_once(
        self, model_path: str | Path, tags: dict[str, Any], extra_files: tuple[Path, ...] = ()
    ) -> ModelRef:
        """The version holding this model file: registered now unless it already is.

        Of several promoters racing with the same file (any machines), one claims its hash
        (an experiment `<model>.register.<sha256>`, unique like the alias claims) and
        registers; the others wait for that version and use it.
        """
        sha = file_sha256(Path(model_path))
        found = self.find_by_sha256(sha)
        if found is not None:
            return found
        if self._create_claim(f"{self.model_name}.register.{sha}", {"sha256": sha}):
            return self.register(model_path, tags, extra_files)
        deadline = time.monotonic() + REGISTER_WAIT_SECONDS
        while time.monotonic() < deadline:
            found = self.find_by_sha256(sha)
            if found is not None:
                return found
            time.sleep(0.5)
        raise RegistryError(
            f"another promoter claimed the registration of this model (sha256 {sha[:12]}...) "
            f"and no version appeared within {REGISTER_WAIT_SECONDS} s (did it die?); "
            f"the claim is the deleted experiment {self.model_name}.register.{sha}: remove it "
            "for good (`mlflow gc`) and run promote again"
        )

    def get_version(self, version: str) -> ModelRef:
        """Look up one version; RegistryError if it does not exist."""
        from mlflow.exceptions import MlflowException

        check_version(str(version))
        try:
            mv = self.client.get_model_version(self.model_name, str(version))
        except MlflowException as error:
            raise RegistryError(f"{self.model_name} version {version}: {error.message}") from None
        return _ref(mv)

    def find_by_sha256(self, sha256: str) -> ModelRef | None:
        """The newest version whose model file has this hash, so a model is registered once."""
        versions = self.client.search_model_versions(f"name = '{self.model_name}'")
        matches = [mv for mv in versions if mv.tags.get("sha256") == sha256]
        return _ref(max(matches, key=lambda v: int(v.version))) if matches else None

    def get_alias(self, alias: str) -> ModelRef | None:
        """The version an alias points at, or None."""
        from mlflow.exceptions import MlflowException

        try:
            return _ref(self.client.get_model_version_by_alias(self.model_name, alias))
        except MlflowException:
            return None

    def move_alias(self, alias: str, version: str | None, expected: str | None) -> bool:
        """Point `alias` at `version` (None deletes it) only if it still points at `expected`.

        False when the alias was not at `expected`, or another mover claimed this move first
        (on any machine), or the move did not read back. Writers that bypass this method
        (the MLflow UI, another tool) are detected only if they write before the read-back.
        """
        with self._lock():
            # the sequence number is read BEFORE the alias: whoever moved the alias since
            # had claimed a number at least this high, so a stale reader's claim collides
            number = self._move_count(alias) + 1
            current = self.get_alias(alias)
            if (current.version if current else None) != expected:
                return False
            if not self._claim(alias, number, version):
                return False
            if version is None:
                self.client.delete_registered_model_alias(self.model_name, alias)
            else:
                self.client.set_registered_model_alias(self.model_name, alias, str(version))
            self.client.set_registered_model_tag(self.model_name, _count_tag(alias), str(number))
            after = self.get_alias(alias)
            return (after.version if after else None) == (None if version is None else str(version))

    def _move_count(self, alias: str) -> int:
        from mlflow.exceptions import MlflowException

        try:
            model = self.client.get_registered_model(self.model_name)
        except MlflowException as error:
            raise RegistryError(f"{self.model_name}: {error.message}") from None
        return int(model.tags.get(_count_tag(alias), "0"))

    def _claim(self, alias: str, number: int, version: str | None) -> bool:
        """Create the experiment that stands for move `number` of `alias`; False if taken."""
        name = f"{self.model_name}.cas.{alias}.{number}"
        if self._create_claim(name, {"to": str(version)}):
            return True
        self._refuse_stale_claim(alias, name, number)
        return False

    def _create_claim(self, name: str, what: dict[str, str]) -> bool:
        """Create the experiment `name` (unique in the tracking store); False if it exists."""
        from mlflow.exceptions import MlflowException

        holder = what | {"by": f"{socket.gethostname()}:{os.getpid()}", "at": _now()}
        try:
            claim = self.client.create_experiment(name, tags={"claim": json.dumps(holder)})
        except MlflowException:
            return False
        # deleted experiments keep their name reserved and leave the UI's list
        self.client.delete_experiment(claim)
        return True

    def _refuse_stale_claim(self, alias: str, name: str, number: int) -> None:
        """A claim whose mover died before finishing would refuse every later move: say so."""
        taken = self.client.get_experiment_by_name(name)
        holder = json.loads(taken.tags.get("claim", "{}")) if taken else {}
        started = datetime.fromisoformat(holder.get("at", _now()).replace("Z", "+00:00"))
        if (datetime.now(UTC) - started).total_seconds() < STALE_CLAIM_SECONDS:
            return
        raise RegistryError(
            f"move {number} of alias {alias!r} was claimed by {holder.get('by')} at "
            f"{holder.get('at')} and never finished (that promoter died?). When no promoter is "
            f"running, set the registered model's tag {_count_tag(alias)!r} to {number} "
            "(MLflow UI, or MlflowClient().set_registered_model_tag) and run again."
        )

    def model_path(self, version: str) -> Path:
        """The version's model file (see `artifact_path`)."""
        return self.artifact_path(version, MODEL_FILE)

    def artifact_path(self, version: str, name: str) -> Path:
        """A file kept with a version: in place for the embedded store, else downloaded."""
        ref = self.get_version(version)
        cache = self.root / "cache" / self.model_name / str(version)
        return self._artifact(ref.source, ref.run_id, name, cache)

    def _artifact(self, source: str, run_id: str, name: str, cache: Path) -> Path:
        parsed = urlparse(source)
        if parsed.scheme == "file":
            recorded = Path(unquote(parsed.path))
            if recorded.exists():
                return recorded / name
            if not self.is_local:
                raise RegistryError(
                    f"{source} was stored on the machine that registered it: start the "
                    "registry server with proxied artifacts (`make registry-server`)"
                )
            # The store records absolute paths; after the repository moved (a clone, a
            # container image) the same run lives under this registry's own artifacts folder.
            inside = recorded.parts[recorded.parts.index(run_id) :]
            return self.root / "artifacts" / Path(*inside) / name
        import mlflow.artifacts

        os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
        local = mlflow.artifacts.download_artifacts(
            artifact_uri=f"{source}/{name}", dst_path=str(cache), tracking_uri=self.tracking_uri
        )
        return Path(local)

    def append_log(self, event: dict[str, Any]) -> None:
        """Record one decision in the registry: a run of `<model>.promotions` holding it."""
        record = {"time": _now(), **event}
        kind = str(event.get("decision") or event.get("event") or "event")
        tags = {"kind": kind} | {
            key: str(event[key]) for key in ("version", "challenger", "champion") if event.get(key)
        }
        run = self.client.create_run(
            self._experiment_id(f"{self.model_name}.promotions"), tags=tags, run_name=kind
        )
        self.client.log_text(run.info.run_id, json.dumps(record, default=str), LOG_FILE)
        self.client.set_terminated(run.info.run_id)

    def read_log(self) -> list[dict[str, Any]]:
        """Every decision recorded so far, oldest first."""
        experiment = self.client.get_experiment_by_name(f"{self.model_name}.promotions")
        if experiment is None:
            return []
        runs, token = [], None
        while True:
            page = self.client.search_runs([experiment.experiment_id], page_token=token)
            runs.extend(page)
            token = page.token
            if not token:
                break
        records = []
        for run in runs:
            cache = self.root / "cache" / "log" / run.info.run_id
            path = self._artifact(run.info.artifact_uri, run.info.run_id, LOG_FILE, cache)
            records.append(json.loads(path.read_text(encoding="utf-8")))
        return sorted(records, key=lambda record: record["time"])


def _ref(mv: Any) -> ModelRef:
    return ModelRef(
        str(mv.version), mv.tags.get("sha256", ""), dict(mv.tags), mv.source, mv.run_id or ""
    )


def _count_tag(alias: str) -> str:
    return f"cas.{alias}.moves"


def _now() -> str:
    """UTC with microseconds: log entries sort by it."""
    return datetime.now(UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")


def _tag(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value, default=str)


def main(argv: list[str] | None = None) -> int:
    """Print the promotion log (decisions and alias moves), one JSON object per line."""
    import argparse

    parser = argparse.ArgumentParser(prog="promotion-log", description=main.__doc__)
    parser.add_argument("--model-name", default=None)
    args = parser.parse_args(argv)
    for record in Registry(args.model_name).read_log():
        print(json.dumps(record, default=str))
    return 0
