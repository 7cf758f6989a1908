"""The embedded registry: real MLflow on a SQLite file, aliases by compare-and-set."""

import shutil

from {{ cookiecutter.package }}.registry import Registry


def test_register_alias_and_relocate(tmp_path, monkeypatch):
    """Versions, aliases and the promotion log survive moving the registry folder (a clone, an image)."""
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)  # the embedded store, not a server
    model = tmp_path / "any-name.skops"
    model.write_bytes(b"model bytes")
    registry = Registry("relocatable", root=tmp_path / "registry")
    ref = registry.register(model, {"contract_fingerprint": "abc"})
    assert registry.find_by_sha256(ref.sha256).version == ref.version
    assert registry.move_alias("champion", ref.version, expected=None)
    registry.append_log({"decision": "promoted", "version": ref.version})

    shutil.move(tmp_path / "registry", tmp_path / "moved")
    moved = Registry("relocatable", root=tmp_path / "moved")
    assert moved.get_alias("champion").tags["contract_fingerprint"] == "abc"
    assert moved.model_path(ref.version).read_bytes() == b"model bytes"
    assert moved.read_log()[-1]["version"] == ref.version
