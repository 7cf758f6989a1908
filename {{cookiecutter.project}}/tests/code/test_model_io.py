"""Model files: checked and loaded from one read, so a file swapped in between cannot load."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from {{ cookiecutter.package }}.model_io import ModelIntegrityError, load_model, save_model
from tests.tiny_contract import tiny_predictor

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
