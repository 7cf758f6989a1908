"""The Kubernetes side of delivery, typed: `deploy/k8s/profile.yaml` as `Profile`, and
`load_settings`, which reads it with the rollout spec, the base Deployment and each overlay's
namespace into the one `Settings` that rendering (`argo.py`) and kubectl (`deploy/kubernetes.py`)
share."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import Field, StrictInt, field_validator, model_validator

from ..config import Rollout, load_config
from ..errors import ConfigError
from ..typed import Frozen, parse

K8S_DIR = Path("deploy") / "k8s"
PARAMS_FILE = Path("params.yaml")
VERSION_ANNOTATION = "ml-cicd/model-version"  # on the pod template: the version it serves
LOG_VOLUME = "prediction-log"
LOG_FLAG = "--prediction-log"
VARIANT_PLACEHOLDER = "{variant}"  # the server fills in its variant (serve/app.py: log_target)
ENVIRONMENTS = ("staging", "production")


class LogFile(Frozen):
    """A rotated prediction-log file per pod on an emptyDir volume."""

    directory: str
    max_mb: StrictInt = Field(ge=1)
    backups: StrictInt = Field(ge=0)
    volume_size_mb: StrictInt = Field(ge=1)

    @field_validator("directory")
    @classmethod
    def _absolute(cls, directory: str) -> str:
        if not directory.startswith("/") or directory.rstrip("/") == "":
            raise ValueError("expected an absolute path, not /")
        return directory

    @model_validator(mode="after")
    def _rotations_fit(self) -> LogFile:
        needed = self.max_mb * (self.backups + 1)
        if self.volume_size_mb < needed:
            raise ValueError(
                f"volume_size_mb is {self.volume_size_mb}; expected at least "
                f"max_mb x (backups + 1) = {needed}: the file and its rotated copies must fit"
            )
        return self


class LogSettings(Frozen):
    """Where each pod's prediction log goes (profile.yaml: prediction_log)."""

    target: Literal["stdout", "file", "off"] = "stdout"
    file: LogFile | None = None

    @model_validator(mode="after")
    def _file_given(self) -> LogSettings:
        if self.target == "file" and self.file is None:
            raise ValueError(
                "target file needs `file` (directory, max_mb, backups, volume_size_mb)"
            )
        return self

    @property
    def server_args(self) -> list[str]:
        """The server's flags: a file per pod (the variant in its name), rotated."""
        if self.file is None or self.target != "file":
            return [LOG_FLAG, "-" if self.target == "stdout" else "off"]
        return [
            LOG_FLAG, self.file.directory.rstrip("/") + "/predictions-" + VARIANT_PLACEHOLDER + ".jsonl",
            "--prediction-log-max-bytes", str(self.file.max_mb * 1_000_000),
            "--prediction-log-backups", str(self.file.backups),
        ]  # fmt: skip


class Nginx(Frozen):
    stable_ingress: str  # an Ingress the user owns that routes to the stable Service


class Smi(Frozen):
    root_service: str


class Prometheus(Frozen):
    address: str


class Timing(Frozen):
    """The cluster's time scale: Prometheus scrapes every 15-30 s."""

    min_pause_s: float = Field(gt=0)
    min_interval_s: float = Field(gt=0)


class Profile(Frozen):
    """deploy/k8s/profile.yaml: the cluster settings (the rollout itself is params.yaml's)."""

    app: str
    image: str
    replicas: int = Field(ge=1)
    traffic_router: Literal["none", "nginx", "smi"] = "none"
    nginx: Nginx | None = None
    smi: Smi | None = None
    prometheus: Prometheus
    timing: Timing
    status_timeout_s: int = Field(1800, ge=1)
    prediction_log: LogSettings = LogSettings()

    @model_validator(mode="after")
    def _router_configured(self) -> Profile:
        if getattr(self, self.traffic_router, True) is None:
            raise ValueError(
                f"traffic_router {self.traffic_router} needs its `{self.traffic_router}:` section"
            )
        return self


@dataclass(frozen=True)
class Settings:
    """Everything `render` needs, read from the project's files."""

    rollout: Rollout
    profile: Profile
    deployment: dict[str, Any]
    namespaces: dict[str, str]
    root: Path

    @property
    def app(self) -> str:
        return self.profile.app

    @property
    def log(self) -> LogSettings:
        return self.profile.prediction_log


def load_settings(root: Path = Path(".")) -> Settings:
    """Read params.yaml, profile.yaml, the base Deployment and each overlay's namespace."""
    rollout = load_config(root / PARAMS_FILE).rollout  # the same typed spec local delivery reads
    profile_path = root / K8S_DIR / "profile.yaml"
    profile = parse(Profile, _read_yaml(profile_path), str(profile_path))
    deployment = _read_yaml(root / K8S_DIR / "base" / "deployment.yaml")
    namespaces = {}
    for env in ENVIRONMENTS:
        kustomization = _read_yaml(root / K8S_DIR / "overlays" / env / "kustomization.yaml")
        namespaces[env] = str(kustomization.get("namespace") or "default")
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    mounts = [str(m["mountPath"]).rstrip("/") for m in container.get("volumeMounts", [])]
    log = profile.prediction_log
    if log.target == "file" and log.file and log.file.directory.rstrip("/") in mounts:
        raise ConfigError(
            f"{profile_path}: prediction_log.file.directory {log.file.directory!r} is "
            "already mounted in base/deployment.yaml"
        )
    return Settings(rollout, profile, deployment, namespaces, root)


def _read_yaml(path: Path) -> dict[str, Any]:
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"{path}: missing") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a mapping")
    return data
