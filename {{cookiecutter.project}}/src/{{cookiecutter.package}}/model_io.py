"""Saving and loading models with skops, trusting only what model.py declares.

A skops file names the types it rebuilds, and a type can run code when it is rebuilt, so a
model file is read like a program from elsewhere: every type in it must be declared in
`model.LIBRARIES`, be a class of this package, or be plain data (numbers, strings, arrays,
lists, dicts). skops's own default list (every scikit-learn estimator, numpy functions) is
not used: what loads is what this project declared, nothing wider.

The sha256 recorded at registration detects a file changed after it was registered (a bad
copy, a swapped file in an artifact store that the registry's database does not share). It
comes from the same registry as the file, so it is no defence against someone who can write
both: the trusted-type check is what keeps such a file from running code.
"""

from __future__ import annotations

import hashlib
import io
import json
import platform
import zipfile
from functools import cache
from importlib.metadata import PackageNotFoundError, packages_distributions, version
from pathlib import Path
from typing import Any

import skops.io as sio

from . import model as user_model
from .artifacts import atomic_path
from .errors import ConfigError, DataError

PACKAGE = __name__.rsplit(".", 1)[0]
# Types pipelines hold that are neither a library's estimators nor plain data (a numpy
# Generator is rebuilt from a bit generator's state by skops, nothing else).
BASE_TYPES = frozenset(
    {
        "collections.OrderedDict",
        "numpy.dtype",
        "builtins.slice",
        "numpy.random._generator.Generator",
    }
)
# skops nodes that rebuild plain data: no class of the file's choosing is instantiated.
DATA_NODES = frozenset(
    {
        "JsonNode", "DictNode", "ListNode", "TupleNode", "SetNode", "NdArrayNode",
        "BytesNode", "BytearrayNode", "DefaultDictNode", "SparseMatrixNode",
    }
)  # fmt: skip
# A TypeNode names a type without building an instance of it: builtins and numpy scalars are
# the dtypes of arrays.
DATA_TYPE_MODULES = frozenset({"builtins", "numpy"})
# Environment libraries beyond model.LIBRARIES: recorded; a different major.minor only warns,
# since their minor releases keep results stable.
RECORDED_TOO = ("numpy", "pandas", "scipy")


class ModelIntegrityError(DataError):
    """A model file is not the one recorded, is not a model, or holds an untrusted type."""


def distribution(module: str) -> str:
    """The installed distribution that provides an import name (`sklearn` -> scikit-learn)."""
    return _distributions().get(module, [module])[0]


@cache
def _distributions() -> dict[str, list[str]]:
    return dict(packages_distributions())


def installed_version(module: str) -> str | None:
    """The version of the distribution that provides `module`, or None if not installed."""
    try:
        return version(distribution(module))
    except PackageNotFoundError:
        return None


def version_tag(module: str) -> str:
    """The training-metadata key (and registry tag) of a library's version: `sklearn_version`."""
    return f"{module}_version"


def checked_libraries() -> tuple[str, ...]:
    """Libraries whose major.minor must match the training environment's to load a model."""
    return tuple(user_model.LIBRARIES)


def recorded_versions() -> tuple[str, ...]:
    """Every key `environment()` writes (what promote copies onto the registered version)."""
    libraries = (*checked_libraries(), *(m for m in RECORDED_TOO if m not in user_model.LIBRARIES))
    return ("python_version", *(version_tag(m) for m in libraries))


def environment() -> dict[str, str]:
    """The versions a model is trained with; loading refuses other major.minor versions."""
    found = {"python_version": platform.python_version()}
    for key in recorded_versions()[1:]:
        module = key.removesuffix("_version")
        found[key] = installed_version(module) or "not installed"
    return found


def _trusted(module: str, name: str, node: str) -> bool:
    full = f"{module}.{name}"
    if node in DATA_NODES or full in BASE_TYPES:
        return True
    if node == "TypeNode" and module in DATA_TYPE_MODULES:
        return True
    if full in {t for types in user_model.LIBRARIES.values() for t in types}:
        return True
    # a package trusted by name ("*", or this package) trusts its classes, not its functions:
    # a FunctionNode or ReduceNode would call or hand out code, so those must be listed exactly
    packages = [PACKAGE, *(lib for lib, types in user_model.LIBRARIES.items() if "*" in types)]
    in_package = any(module == p or module.startswith(p + ".") for p in packages)
    return in_package and node in ("ObjectNode", "TypeNode")


def file_types(data: bytes, source: Path | str) -> set[tuple[str, str, str]]:
    """(module, name, skops node) of every object a skops file would rebuild."""
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            schema = json.loads(archive.read("schema.json"))
    except (zipfile.BadZipFile, KeyError, ValueError) as error:
        raise ModelIntegrityError(f"{source}: not a skops model file ({error})") from None
    found: set[tuple[str, str, str]] = set()
    stack: list[Any] = [schema]
    while stack:
        node = stack.pop()
        if isinstance(node, dict):
            if isinstance(node.get("__module__"), str) and isinstance(node.get("__class__"), str):
                found.add((node["__module__"], node["__class__"], str(node.get("__loader__"))))
            stack.extend(node.values())
        elif isinstance(node, list):
            stack.extend(node)
    return found


def untrusted_types(data: bytes, source: Path | str) -> list[str]:
    """The types in a skops file that nothing declares trusted, by full name."""
    return sorted(
        {f"{m}.{n}" for m, n, node in file_types(data, source) if not _trusted(m, n, node)}
    )


def save_model(model: Any, path: str | Path) -> str:
    """Write `model` with skops atomically; return the file's sha256.

    A model that could not be loaded back (a type model.py does not trust) is refused here,
    at training, with what to declare, instead of at the first load after it was registered.
    """
    data = sio.dumps(model)
    untrusted = untrusted_types(data, path)
    if untrusted:
        raise ConfigError(
            f"{path}: the trained model contains types model.py does not trust: "
            f"{', '.join(untrusted)}. If you trust them, add them to model.py's LIBRARIES "
            '(a library\'s exact "module.Class" names, or "*" for all its classes)'
        )
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)
    return hashlib.sha256(data).hexdigest()


def load_model(
    path: str | Path, expected_sha256: str | None = None, method: str = "predict_proba"
) -> Any:
    """Load a skops model, refusing a changed file, an untrusted type or a non-model.

    The file is read once: the bytes that are hashed and checked are the bytes that load, so
    the file cannot change between the check and the use. `method` is what the model must
    answer with: predict_proba (classifiers) or predict (a regression).
    """
    path = Path(path)
    if not path.is_file():
        raise ModelIntegrityError(f"{path}: model file not found")
    data = path.read_bytes()
    if expected_sha256 is not None:
        actual = hashlib.sha256(data).hexdigest()
        if actual != expected_sha256:
            raise ModelIntegrityError(
                f"{path}: sha256 {actual[:12]}... does not match the recorded "
                f"{expected_sha256[:12]}...; the file was changed after it was registered"
            )
    untrusted = untrusted_types(data, path)
    if untrusted:
        raise ModelIntegrityError(
            f"{path}: contains types outside the trusted list: {', '.join(untrusted)} "
            "(model.py's LIBRARIES declares what a model may contain)"
        )
    trusted = sorted({f"{m}.{n}" for m, n, _ in file_types(data, path)})
    try:
        model = sio.loads(data, trusted=trusted)
    except Exception as error:  # a damaged file fails inside skops, numpy or the zip reader
        raise ModelIntegrityError(
            f"{path}: the model file is damaged and cannot be loaded "
            f"({type(error).__name__}: {error})"
        ) from None
    if not callable(getattr(model, method, None)):
        raise ModelIntegrityError(
            f"{path}: holds a {type(model).__module__}.{type(model).__qualname__}, not a "
            f"model: expected a fitted pipeline with {method}"
        )
    return model
