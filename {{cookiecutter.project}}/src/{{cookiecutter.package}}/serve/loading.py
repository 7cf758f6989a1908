"""Load a pinned registry version only if it is the file and environment that were recorded."""

from __future__ import annotations

import platform
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ..config import Task
from ..contract import Contract
from ..errors import DataError, RefusedError
from ..model_io import (
    RECORDED_TOO,
    ModelIntegrityError,
    checked_libraries,
    distribution,
    installed_version,
    load_model,
    version_tag,
)
from ..registry import MODEL_FILE, REFERENCE_FILE, ModelRef, Registry, RegistryError
from ..task_pipeline import RUNTIME
from .predictor import Predictor
from .task_predictor import TaskPredictor


class ServeStartError(RefusedError):
    """The server must not start: the model or its environment is not what was recorded."""


def _major_minor(text: str) -> str:
    return ".".join(text.split(".")[:2])


def resolve(registry: Registry, version_or_alias: str) -> ModelRef:
    """A version number as is, or the version an alias points at."""
    try:
        if version_or_alias.isdigit():
            return registry.get_version(version_or_alias)
    except RegistryError as error:
        raise ServeStartError(str(error)) from None
    ref = registry.get_alias(version_or_alias)
    if ref is None:
        raise ServeStartError(
            f"{registry.model_name}@{version_or_alias}: no such alias; train and promote a model "
            "first (`dvc repro`), or pass a version number"
        )
    return ref


def check_environment(ref: ModelRef, contract: Contract) -> list[str]:
    """Raise ServeStartError on a mismatch that changes predictions; return softer warnings."""
    problems, warnings = [], []
    # A model saved by another minor release of the libraries model.py declares (scikit-learn,
    # skops, your estimator's) may load and predict differently: these must match. numpy,
    # pandas and scipy only warn, since their minor releases keep results stable.
    for module in checked_libraries():
        tag, dist = version_tag(module), distribution(module)
        recorded, here = ref.tags.get(tag), installed_version(module) or "not installed"
        if recorded is None:
            problems.append(f"{tag} ({dist}) was not recorded at training time; retrain")
        elif _major_minor(recorded) != _major_minor(here):
            problems.append(f"{dist} {here} is installed but the model was trained with {recorded}")
    for module in RECORDED_TOO:
        soft, now = ref.tags.get(version_tag(module)), installed_version(module)
        if module in checked_libraries() or soft is None or now is None:
            continue
        if _major_minor(soft) != _major_minor(now):
            warnings.append(f"{distribution(module)} {now} here, {soft} at training time")
    recorded_python = ref.tags.get("python_version")
    if recorded_python and _major_minor(recorded_python) != _major_minor(platform.python_version()):
        warnings.append(f"python {platform.python_version()} here, {recorded_python} at training")
    fingerprint = ref.tags.get("contract_fingerprint")
    if fingerprint is not None and fingerprint != contract.fingerprint:
        problems.append(
            f"the model was trained for contract {fingerprint}, contract.yaml is now "
            f"{contract.fingerprint}: retrain, or serve with the contract it was trained on"
        )
    if problems:
        raise ServeStartError(
            f"refusing to serve version {ref.version}:\n  " + "\n  ".join(problems)
        )
    return warnings


# what answers each task's model: a binary score (with the one-row shortcut), or the task's answer
PREDICTORS: dict[Task, Callable[[Any, Contract, float], Predictor]] = {
    "binary": Predictor,
    "multiclass": lambda model, contract, threshold: TaskPredictor(
        model, contract, "multiclass", threshold
    ),
    "regression": lambda model, contract, threshold: TaskPredictor(
        model, contract, "regression", threshold
    ),
}


def task_of(ref: ModelRef) -> Task:
    """The task a version was trained for (promote tags a non-binary one), or ServeStartError."""
    task = ref.tags.get("task", "binary")
    if task not in PREDICTORS:
        raise ServeStartError(
            f"version {ref.version} is tagged task={task!r}; expected one of {sorted(PREDICTORS)}"
        )
    return task


def load_pinned(
    registry: Registry | None, ref: ModelRef, contract: Contract, path: Path | None = None
) -> tuple[Predictor, list[str]]:
    """Check the environment and the recorded sha256, then load with the trusted-type list."""
    task = task_of(ref)
    warnings = check_environment(ref, contract)
    if not ref.sha256:
        raise ServeStartError(f"version {ref.version} has no recorded sha256; re-register it")
    try:
        if path is None:
            if registry is None:
                raise ServeStartError("no registry and no model file to load")
            path = registry.model_path(ref.version)
        model = load_model(path, expected_sha256=ref.sha256, method=RUNTIME[task].method)
    except (ModelIntegrityError, RegistryError, OSError) as error:
        raise ServeStartError(f"refusing to serve version {ref.version}: {error}") from None
    threshold = float(ref.tags.get("threshold", 0.5))
    try:
        predictor = PREDICTORS[task](model, contract, threshold)
    except DataError as error:  # e.g. a multiclass contract that lists no classes
        raise ServeStartError(f"refusing to serve version {ref.version}: {error}") from None
    if predictor.fast_path_off:
        warnings.append(
            f"single rows are scored through the whole pipeline (slower): {predictor.fast_path_off}"
        )
    return predictor, warnings


BUNDLE_META = "model.json"
BUNDLE_ALIASES = "aliases.json"


def write_bundle(registry: Registry, ref: ModelRef, directory: Path) -> Path:
    """Copy a version's model file (and its drift reference) beside a `model.json`."""
    import shutil

    from ..artifacts import write_json

    directory.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(registry.model_path(ref.version), directory / MODEL_FILE)
    reference = registry.artifact_path(ref.version, REFERENCE_FILE)
    if reference.is_file():
        shutil.copyfile(reference, directory / REFERENCE_FILE)
    meta = {
        "model_name": registry.model_name,
        "version": ref.version,
        "sha256": ref.sha256,
        "tags": ref.tags,
        "model_file": MODEL_FILE,
    }
    return write_json(directory / BUNDLE_META, meta)


def inside(directory: Path, name: str, source: Path, field: str) -> Path:
    """`directory / name`, refused unless it resolves inside `directory` (no `..`, no absolute)."""
    candidate = (directory / name).resolve()
    if Path(name).is_absolute() or not candidate.is_relative_to(directory.resolve()):
        raise ServeStartError(
            f"{source}: {field} {name!r} points outside the bundle {directory}; "
            "a bundle names files inside itself only"
        )
    return candidate


def read_bundle(directory: Path, version: str | None = None) -> tuple[ModelRef, Path]:
    """The version and model file of a bundle, or of `version` (number or alias) in a set of them."""
    import json

    _readable(directory)
    aliases_path = directory / BUNDLE_ALIASES
    if not (directory / BUNDLE_META).is_file() and aliases_path.is_file():
        aliases = json.loads(aliases_path.read_text(encoding="utf-8"))
        wanted = str(aliases.get(version or "champion", version or "champion"))
        versions = inside(directory, wanted, aliases_path, f"version {version or 'champion'!r}")
        if versions.parent != directory.resolve():
            raise ServeStartError(f"{aliases_path}: {wanted!r} is not a version folder name")
        if not (directory / wanted / BUNDLE_META).is_file():
            have = sorted(p.name for p in directory.iterdir() if (p / BUNDLE_META).is_file())
            raise ServeStartError(
                f"{directory}: version {version!r} is not bundled (have {have}, aliases {aliases})"
            )
        directory = directory / wanted
    meta_path = directory / BUNDLE_META
    try:
        meta = json.loads(meta_path.read_text(encoding="utf-8"))
        tags = {**meta["tags"], "model_name": meta["model_name"]}
        ref = ModelRef(str(meta["version"]), meta["sha256"], tags)
        model_file = str(meta["model_file"])
    except (OSError, ValueError, KeyError, TypeError) as error:
        raise ServeStartError(f"{meta_path}: not a model bundle: {error}") from None
    return ref, inside(directory, model_file, meta_path, "model_file")


def _readable(directory: Path) -> None:
    """ServeStartError naming the first bundle file this user cannot read (not a traceback)."""
    import os

    paths = [directory, *sorted(directory.rglob("*"))] if directory.is_dir() else [directory]
    for path in paths:
        if not os.access(path, os.R_OK | (os.X_OK if path.is_dir() else 0)):
            mode = oct(path.stat().st_mode & 0o777)
            raise ServeStartError(
                f"{path}: not readable by uid {os.getuid()} (mode {mode}, owner uid "
                f"{path.stat().st_uid}); copy bundles with the Dockerfile's --chown/--chmod "
                f"or run `chmod -R a+rX {directory}`"
            )


def served_drift_profile(
    registry: Registry | None, ref: ModelRef, model_path: Path | None, params: Path
) -> tuple[Any, dict[str, Any]] | None:
    """A running profile of served rows against the version's training reference, if recorded."""
    from ..config import load_config
    from ..drift import RunningProfile, load_reference

    if model_path is not None:
        reference_path = model_path.parent / REFERENCE_FILE
    elif registry is not None:
        try:
            reference_path = registry.artifact_path(ref.version, REFERENCE_FILE)
        except Exception:  # a remote store has its own error for a file it does not hold
            return None
    else:
        return None
    if not reference_path.is_file() or not params.is_file():
        return None
    settings = load_config(params).drift.limits()
    return RunningProfile(load_reference(reference_path)), settings
