"""`make bundle`: the versions a container serves, without a registry in the image."""

import json

import pytest

from {{ cookiecutter.package }}.config import load_config
from {{ cookiecutter.package }}.model_io import load_model
from {{ cookiecutter.package }}.registry import Registry, RegistryError
from {{ cookiecutter.package }}.serve.bundle import export
from {{ cookiecutter.package }}.serve.loading import ServeStartError, read_bundle
from {{ cookiecutter.package }}.task_pipeline import RUNTIME

from ..conftest import ROOT, require_output


@pytest.fixture
def registry(tmp_path, monkeypatch):
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    return Registry("bundle_test", root=tmp_path / "registry")


def test_export_champion_and_previous(registry, tmp_path):
    """Each aliased version is copied with its recorded hash; aliases resolve inside the bundle."""
    model = require_output("models/model.skops")
    first = registry.register(model, {"contract_fingerprint": "x"})
    registry.move_alias("champion", first.version, expected=None)
    registry.move_alias("previous", first.version, expected=None)
    mapping = export(registry, tmp_path / "bundles")
    assert mapping == {"champion": first.version, "previous": first.version}
    ref, path = read_bundle(tmp_path / "bundles", "champion")
    assert ref.version == first.version
    method = RUNTIME[load_config(ROOT / "params.yaml").task].method  # a regression: predict
    assert load_model(path, expected_sha256=ref.sha256, method=method) is not None
    assert read_bundle(tmp_path / "bundles", first.version)[0].sha256 == first.sha256
    aliases = json.loads((tmp_path / "bundles" / "aliases.json").read_text())
    assert aliases["champion"] == first.version


def test_unbundled_version_is_refused(registry, tmp_path):
    """Asking a bundle for a version it does not hold names what it does hold."""
    model = require_output("models/model.skops")
    ref = registry.register(model, {})
    registry.move_alias("champion", ref.version, expected=None)
    export(registry, tmp_path / "bundles")
    with pytest.raises(ServeStartError, match="not bundled"):
        read_bundle(tmp_path / "bundles", "999")


def test_no_champion_no_bundle(registry, tmp_path):
    """Exporting before any promotion says what to run first and writes nothing."""
    with pytest.raises(RegistryError, match="no champion"):
        export(registry, tmp_path / "bundles")
    assert not (tmp_path / "bundles").exists()


def test_synthetic_load_fits_the_request_schema(contract):
    """Traffic generated from the contract (for containers with no data) is valid requests."""
    from {{ cookiecutter.package }}.rollout.loadgen import synthetic_rows
    from {{ cookiecutter.package }}.serve.schema import build_models

    models = build_models(contract)
    rows = synthetic_rows(ROOT / "contract.yaml", contract, count=200)
    assert len(rows) == 200
    for row in rows:
        models.row.model_validate(row)


def test_bundle_files_are_readable_by_the_image_user(registry, tmp_path):
    """With umask 022 every exported file is 0644 and every folder 0755, so a container's
    non-root user can read a bundle that was built by another user."""
    import os
    import stat

    model = require_output("models/model.skops")
    ref = registry.register(model, {})
    registry.move_alias("champion", ref.version, expected=None)
    old = os.umask(0o022)
    try:
        export(registry, tmp_path / "bundles")
    finally:
        os.umask(old)
    modes = {
        path.relative_to(tmp_path).as_posix(): oct(stat.S_IMODE(path.stat().st_mode))
        for path in (tmp_path / "bundles").rglob("*")
    }
    assert {m for p, m in modes.items() if (tmp_path / p).is_file()} == {"0o644"}, modes
    assert {m for p, m in modes.items() if (tmp_path / p).is_dir()} <= {"0o755"}, modes
