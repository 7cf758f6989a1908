"""A bundle names files inside itself only: no `..`, no absolute path, no symlink out."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from {{ cookiecutter.package }}.serve.loading import ServeStartError, read_bundle


def make_bundle(root: Path, model_file: str, version: str = "3") -> Path:
    folder = root / "bundles" / version
    folder.mkdir(parents=True)
    (folder / "model.skops").write_bytes(b"model")
    meta = {"model_name": "m", "version": version, "sha256": "0" * 64, "tags": {}}
    (folder / "model.json").write_text(json.dumps({**meta, "model_file": model_file}))
    (root / "bundles" / "aliases.json").write_text(json.dumps({"champion": version}))
    return root / "bundles"


def test_a_model_file_inside_the_bundle_is_served(tmp_path):
    bundles = make_bundle(tmp_path, "model.skops")
    ref, path = read_bundle(bundles, "champion")
    assert ref.version == "3"
    assert path == (bundles / "3" / "model.skops").resolve()


@pytest.mark.parametrize("model_file", ["../../outside.skops", "/etc/passwd", "sub/../../x"])
def test_a_model_file_outside_the_bundle_is_refused(tmp_path, model_file):
    (tmp_path / "outside.skops").write_bytes(b"not ours")
    bundles = make_bundle(tmp_path, model_file)
    with pytest.raises(ServeStartError, match=r"model_file .* points outside the bundle"):
        read_bundle(bundles, "champion")


def test_a_symlink_out_of_the_bundle_is_refused(tmp_path):
    (tmp_path / "outside.skops").write_bytes(b"not ours")
    bundles = make_bundle(tmp_path, "link.skops")
    (bundles / "3" / "link.skops").symlink_to(tmp_path / "outside.skops")
    with pytest.raises(ServeStartError, match="points outside the bundle"):
        read_bundle(bundles, "champion")


@pytest.mark.parametrize("alias_value", ["..", "../evil", "/tmp", "3/../.."])
def test_an_alias_that_leaves_the_bundle_is_refused(tmp_path, alias_value):
    bundles = make_bundle(tmp_path, "model.skops")
    (bundles / "aliases.json").write_text(json.dumps({"champion": alias_value}))
    with pytest.raises(ServeStartError, match=r"outside the bundle|not a version folder"):
        read_bundle(bundles, "champion")
