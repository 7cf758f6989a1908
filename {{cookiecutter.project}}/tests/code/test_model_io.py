"""Model files: checked and loaded from one read; only what model.py declares loads; damage and
non-models are clear errors."""

from __future__ import annotations

import re
import sys
import zipfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import skops.io as sio
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.linear_model import LinearRegression, LogisticRegression
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import FunctionTransformer, MinMaxScaler, StandardScaler
from sklearn.svm import SVC

from {{ cookiecutter.package }}.errors import ConfigError
from {{ cookiecutter.package }}.model_io import ModelIntegrityError, load_model, save_model
from tests.tiny_contract import tiny_contract, tiny_predictor

_OPENED: list[str] = []
_WATCH: set[str] = set()


def _audit(event: str, args: tuple) -> None:
    if event == "open" and args and str(args[0]) in _WATCH:
        _OPENED.append(str(args[0]))


sys.addaudithook(_audit)  # hooks cannot be removed: this one only records watched paths


@pytest.fixture(scope="module")
def saved(tmp_path_factory) -> tuple[Path, str]:
    path = tmp_path_factory.mktemp("model") / "model.skops"
    return path, save_model(tiny_predictor().model, path)


def test_the_model_file_is_opened_once(saved):
    """Hash, trusted-type check and load all use the same bytes (no check-then-use window)."""
    path, sha256 = saved
    _WATCH.add(str(path))
    _OPENED.clear()
    try:
        model = load_model(path, expected_sha256=sha256)
    finally:
        _WATCH.discard(str(path))
    assert hasattr(model, "predict_proba")
    assert [str(path)] == _OPENED


def test_a_changed_file_is_refused(saved, tmp_path):
    """One changed byte and the recorded sha256 no longer matches: nothing is loaded."""
    path, sha256 = saved
    changed = tmp_path / "changed.skops"
    data = bytearray(path.read_bytes())
    data[-30] ^= 0xFF
    changed.write_bytes(bytes(data))
    with pytest.raises(ModelIntegrityError, match="does not match the recorded"):
        load_model(changed, expected_sha256=sha256)


def _pipeline_with(step: object) -> Pipeline:
    x = np.array([[0.0, 1.0], [1.0, 0.0], [0.5, 0.5], [0.2, 0.9]])
    return Pipeline([("step", step), ("model", LogisticRegression())]).fit(x, [0, 1, 1, 0])


@pytest.mark.parametrize(
    ("step", "named"),
    [
        (
            FunctionTransformer(np.exp),
            "sklearn.preprocessing._function_transformer.FunctionTransformer",
        ),
        (FunctionTransformer(np.exp), "numpy.exp"),
        (MinMaxScaler(), "sklearn.preprocessing._data.MinMaxScaler"),
    ],
)
def test_a_type_outside_model_py_is_refused_by_name(step, named, tmp_path):
    """skops trusts every scikit-learn estimator and numpy function by default; we trust only
    what model.py's LIBRARIES declares, and name what else a file holds."""
    path = tmp_path / "model.skops"
    path.write_bytes(sio.dumps(_pipeline_with(step)))
    with pytest.raises(ModelIntegrityError, match=re.escape(named)):
        load_model(path)
    with pytest.raises(ConfigError, match=re.escape(named)):
        save_model(_pipeline_with(step), tmp_path / "refused.skops")
    assert not (tmp_path / "refused.skops").exists(), "a refused model leaves no file"


@pytest.mark.parametrize("estimator", [LinearRegression(), SVC()])
def test_undeclared_estimators_are_refused(estimator, tmp_path):
    """A file holding an estimator model.py does not declare does not load, whoever made it."""
    path = tmp_path / "model.skops"
    path.write_bytes(sio.dumps(estimator.fit([[0.0], [1.0], [2.0]], [0, 1, 0])))
    name = f"{type(estimator).__module__}.{type(estimator).__qualname__}"
    with pytest.raises(ModelIntegrityError, match=re.escape(name)):
        load_model(path)


class DoubleIt(TransformerMixin, BaseEstimator):  # type: ignore[misc]  # sklearn is untyped
    """A transformer defined in this package's tests: not trusted (tests are not the package)."""

    def fit(self, x: object, y: object = None) -> DoubleIt:
        return self

    def transform(self, x: np.ndarray) -> np.ndarray:
        return np.asarray(x) * 2


def test_the_packages_own_classes_load_and_others_do_not(tmp_path):
    """A transformer of the package (FrequencyEncoder) loads; the same code outside it is refused."""
    from {{ cookiecutter.package }}.features import FrequencyEncoder

    x = pd.DataFrame({"plan": ["a", "b", "a", "c"]})
    own = Pipeline([("freq", FrequencyEncoder()), ("model", LogisticRegression())])
    own.fit(x, [0, 1, 1, 0])
    sha = save_model(own, tmp_path / "own.skops")
    loaded = load_model(tmp_path / "own.skops", expected_sha256=sha)
    np.testing.assert_allclose(loaded.predict_proba(x), own.predict_proba(x))
    foreign = tmp_path / "foreign.skops"
    foreign.write_bytes(sio.dumps(_pipeline_with(DoubleIt())))
    with pytest.raises(ModelIntegrityError, match=r"tests\.code\.test_model_io\.DoubleIt"):
        load_model(foreign)


@pytest.mark.parametrize(
    ("damage", "message"),
    [
        (lambda data: data[: len(data) // 2], "not a skops model file"),
        (lambda data: b"not a zip file at all", "not a skops model file"),
    ],
)
def test_a_corrupt_file_is_a_clear_error(saved, tmp_path, damage, message):
    """A truncated or foreign file is a ModelIntegrityError naming the file, not a traceback."""
    path, _ = saved
    broken = tmp_path / "broken.skops"
    broken.write_bytes(damage(path.read_bytes()))
    with pytest.raises(ModelIntegrityError, match=message) as caught:
        load_model(broken)
    assert str(broken) in str(caught.value)


def test_damaged_content_inside_a_valid_archive_is_a_clear_error(saved, tmp_path):
    """A well-formed archive whose arrays are damaged fails with the file named."""
    path, _ = saved
    broken = tmp_path / "broken.skops"
    with zipfile.ZipFile(path) as source, zipfile.ZipFile(broken, "w") as target:
        for item in source.infolist():
            data = source.read(item)
            target.writestr(item, data if item.filename == "schema.json" else b"garbage")
    with pytest.raises(ModelIntegrityError, match="damaged and cannot be loaded"):
        load_model(broken)


def test_a_trusted_object_that_is_not_a_model_is_refused(tmp_path):
    """A file holding a fitted scaler (trusted, but no predict_proba) is not served."""
    path = tmp_path / "scaler.skops"
    save_model(StandardScaler().fit([[0.0], [1.0]]), path)
    with pytest.raises(ModelIntegrityError, match="not a model"):
        load_model(path)


def test_every_declared_library_is_recorded_and_checked():
    """model.py's LIBRARIES are recorded at training, tagged by promote and must match to load."""
    from {{ cookiecutter.package }} import model as user_model
    from {{ cookiecutter.package }}.model_io import (
        checked_libraries,
        environment,
        recorded_versions,
        version_tag,
    )

    recorded = environment()
    for library in user_model.LIBRARIES:
        assert library in checked_libraries()
        assert version_tag(library) in recorded_versions()
        assert recorded[version_tag(library)] != "not installed", library


def test_another_version_of_a_declared_library_is_refused():
    """A model trained with another major.minor of a declared library does not serve."""
    from {{ cookiecutter.package }} import model as user_model
    from {{ cookiecutter.package }}.model_io import environment, version_tag
    from {{ cookiecutter.package }}.registry import ModelRef
    from {{ cookiecutter.package }}.serve.loading import ServeStartError, check_environment

    contract = tiny_contract()
    tags = {**environment(), "contract_fingerprint": contract.fingerprint}
    assert check_environment(ModelRef("1", "0" * 64, tags), contract) == []
    for library in user_model.LIBRARIES:
        older = {**tags, version_tag(library): "0.0.1"}
        with pytest.raises(
            ServeStartError, match=r"installed but the model was trained with 0\.0\.1"
        ):
            check_environment(ModelRef("1", "0" * 64, older), contract)
        missing = {k: v for k, v in tags.items() if k != version_tag(library)}
        with pytest.raises(ServeStartError, match="was not recorded at training time"):
            check_environment(ModelRef("1", "0" * 64, missing), contract)
