"""Saving and loading models with skops, trusting an explicit list of types only."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import skops.io as sio

from . import features
from .artifacts import atomic_path
from .data import file_sha256
from .errors import DataError

# Every type a trained pipeline may contain. Anything else in a model file is refused:
# a skops file can name arbitrary callables, and we load models that CI produced.
TRUSTED_TYPES: tuple[str, ...] = (
    f"{features.__name__}.DateFeatures",
    f"{features.__name__}.FrequencyEncoder",
    "sklearn.compose._column_transformer.ColumnTransformer",
    "sklearn.pipeline.Pipeline",
    "sklearn.impute._base.SimpleImputer",
    "sklearn.preprocessing._data.StandardScaler",
    "sklearn.preprocessing._encoders.OneHotEncoder",
    "sklearn.ensemble._hist_gradient_boosting.gradient_boosting.HistGradientBoostingClassifier",
    "sklearn.ensemble._hist_gradient_boosting.binning._BinMapper",
    "sklearn.ensemble._hist_gradient_boosting.predictor.TreePredictor",
    "sklearn._loss.loss.HalfBinomialLoss",
    "sklearn._loss.link.LogitLink",
    "sklearn._loss.link.Interval",
    "sklearn._loss._loss.CyHalfBinomialLoss",
    "sklearn.ensemble._forest.RandomForestClassifier",
    "sklearn.tree._classes.DecisionTreeClassifier",
    "sklearn.tree._tree.Tree",
    "sklearn.linear_model._logistic.LogisticRegression",
    "sklearn.dummy.DummyClassifier",
    "collections.OrderedDict",
    "numpy.dtype",
    "builtins.slice",
)


class ModelIntegrityError(DataError):
    """A model file is not the one that was recorded, or contains untrusted types."""


def save_model(model: Any, path: str | Path) -> str:
    """Write `model` with skops atomically; return the file's sha256."""
    with atomic_path(path) as tmp:
        sio.dump(model, tmp)
    return file_sha256(path)


def load_model(path: str | Path, expected_sha256: str | None = None) -> Any:
    """Load a skops model, refusing a changed file or a type outside TRUSTED_TYPES.

    The file is read once: the bytes that are hashed and checked are the bytes that load, so
    the file cannot change between the check and the use.
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
    untrusted = [t for t in sio.get_untrusted_types(data=data) if t not in TRUSTED_TYPES]
    if untrusted:
        raise ModelIntegrityError(
            f"{path}: contains types outside the trusted list: {', '.join(sorted(untrusted))}"
        )
    return sio.loads(data, trusted=list(TRUSTED_TYPES))
