"""The model registry: MLflow (a SQLite file in the repository by default) with aliases.

Aliases `champion`, `challenger` and `previous` move only by compare-and-set, and every
decision is appended to `registry/promotions.jsonl`.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import shutil
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlparse

from filelock import FileLock

from .data import file_sha256

REGISTRY_DIR = Path("registry")
MODEL_FILE = "model.skops"


def package_model_name() -> str:
    """The registered model's default name: this package's name."""
    return __name__.split(".")[0]


def default_tracking_uri(root: Path = REGISTRY_DIR) -> str:
    """`MLFLOW_TRACKING_URI` if set, else the embedded SQLite registry under `root`."""
    return os.environ.get("MLFLOW_TRACKING_URI") or f"sqlite:///{(root / 'mlflow.db').resolve()}"


@dataclass(frozen=True)
class ModelRef:
    """One registered model version and what was recorded about it."""

    version: str
    sha256: str
    tags: dict[str, str] = field(default_factory=dict)
    source: str = ""


class RegistryError(RuntimeError):
    """The registry cannot do what was asked (unknown version, lost compare-and-set...)."""


class Registry:
    """A thin, typed layer over MlflowClient with compare-and-set alias moves."""

    def __init__(
        self,
        model_name: str | None = None,
        tracking_uri: str | None = None,
        root: str | Path = REGISTRY_DIR,
    ) -> None:
        self.root = Path(root)
        self.model_name = model_name or package_model_name()
        self.tracking_uri = tracking_uri or default_tracking_uri(self.root)
        self._client: Any = None

    @property
    def client(self) -> Any:
        """The MlflowClient, created on first use (MLflow is slow to import)."""
        if self._client is None:
            os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
            from mlflow import MlflowClient

            # MLflow logs schema migrations at INFO on first use; stage output stays readable.
            logging.getLogger("mlflow").setLevel(logging.WARNING)
            self.root.mkdir(parents=True, exist_ok=True)
            self._client = MlflowClient(
                tracking_uri=self.tracking_uri, registry_uri=self.tracking_uri
            )
        return self._client

    def _lock(self) -> FileLock:
        self.root.mkdir(parents=True, exist_ok=True)
        return FileLock(str(self.root / ".registry.lock"), timeout=60)

    def _experiment_id(self) -> str:
        experiment = self.client.get_experiment_by_name(self.model_name)
        if experiment is not None:
            return experiment.experiment_id
        artifacts = (self.root / "artifacts").resolve()
        artifacts.mkdir(parents=True, exist_ok=True)
        return self.client.create_experiment(self.model_name, artifact_location=artifacts.as_uri())

    def register(
        self, model_path: str | Path, tags: dict[str, Any], extra_files: tuple[Path, ...] = ()
    ) -> ModelRef:
        """Log the model (and files kept with it) as run artifacts; register a new version."""
        from mlflow.exceptions import MlflowException

        model_path = Path(model_path)
        sha = file_sha256(model_path)
        string_tags = {k: _tag(v) for k, v in tags.items()} | {"sha256": sha}
        with self._lock():
            run = self.client.create_run(self._experiment_id(), tags={"stage": "promote"})
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
        return ModelRef(str(version.version), sha, string_tags, version.source)

    def get_version(self, version: str) -> ModelRef:
        """Look up one version; RegistryError if it does not exist."""
        from mlflow.exceptions import MlflowException

        try:
            mv = self.client.get_model_version(self.model_name, str(version))
        except MlflowException as error:
            raise RegistryError(f"{self.model_name} version {version}: {error.message}") from None
        return ModelRef(str(mv.version), mv.tags.get("sha256", ""), dict(mv.tags), mv.source)

    def find_by_sha256(self, sha256: str) -> ModelRef | None:
        """The newest version whose model file has this hash, so a model is registered once."""
        versions = self.client.search_model_versions(f"name = '{self.model_name}'")
        matches = [mv for mv in versions if mv.tags.get("sha256") == sha256]
        if not matches:
            return None
        mv = max(matches, key=lambda v: int(v.version))
        return ModelRef(str(mv.version), sha256, dict(mv.tags), mv.source)

    def get_alias(self, alias: str) -> ModelRef | None:
        """The version an alias points at, or None."""
        from mlflow.exceptions import MlflowException

        try:
            mv = self.client.get_model_version_by_alias(self.model_name, alias)
        except MlflowException:
            return None
        return ModelRef(str(mv.version), mv.tags.get("sha256", ""), dict(mv.tags), mv.source)

    def move_alias(self, alias: str, version: str | None, expected: str | None) -> bool:
        """Point `alias` at `version` (None deletes it) only if it still points at `expected`."""
        with self._lock():
            current = self.get_alias(alias)
            if (current.version if current else None) != expected:
                return False
            if version is None:
                self.client.delete_registered_model_alias(self.model_name, alias)
            else:
                self.client.set_registered_model_alias(self.model_name, alias, str(version))
            return True

    def model_path(self, version: str) -> Path:
        """The version's model file (see `artifact_path`)."""
        return self.artifact_path(version, MODEL_FILE)

    def artifact_path(self, version: str, name: str) -> Path:
        """A file kept with a version: in place for a local store, else downloaded to a cache."""
        import mlflow.artifacts

        ref = self.get_version(version)
        parsed = urlparse(ref.source)
        if parsed.scheme == "file":
            recorded = Path(unquote(parsed.path))
            if recorded.exists():
                return recorded / name
            # The store records absolute paths; after the repository moved (a clone, a
            # container image) the same run lives under this registry's own artifacts folder.
            return self.root / "artifacts" / Path(*recorded.parts[-3:]) / name
        os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
        local = mlflow.artifacts.download_artifacts(
            artifact_uri=f"{ref.source}/{name}",
            dst_path=str(self.root / "cache" / str(version)),
            tracking_uri=self.tracking_uri,
        )
        return Path(local)

    def append_log(self, event: dict[str, Any]) -> None:
        """Append one decision to the promotion log (one JSON object per line, fsynced)."""
        self.root.mkdir(parents=True, exist_ok=True)
        line = json.dumps({"time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), **event})
        with self._lock(), (self.root / "promotions.jsonl").open("a", encoding="utf-8") as log:
            log.write(line + "\n")
            log.flush()
            os.fsync(log.fileno())

    def read_log(self) -> list[dict[str, Any]]:
        """Every decision recorded so far, oldest first."""
        path = self.root / "promotions.jsonl"
        if not path.is_file():
            return []
        return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line]


def _tag(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value, default=str)
