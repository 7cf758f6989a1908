"""Atomic writes: whole files only, with the mode the umask gives, like any other new file."""

from __future__ import annotations

import os
import stat

import pandas as pd
import pytest

from {{ cookiecutter.package }}.artifacts import _write, write_json, write_parquet, write_text


@pytest.mark.parametrize(("umask", "mode"), [(0o022, 0o644), (0o002, 0o664), (0o077, 0o600)])
def test_written_files_get_the_umask_mode(tmp_path, umask, mode):
    """metrics, reports and bundles stay readable to the group/others the umask allows."""
    old = os.umask(umask)
    try:
        paths = [
            write_json(tmp_path / "m.json", {"a": 1}),
            write_text(tmp_path / "r.html", "<p>ok</p>"),
            write_parquet(tmp_path / "t.parquet", pd.DataFrame({"x": [1]})),
        ]
    finally:
        os.umask(old)
    assert {oct(stat.S_IMODE(p.stat().st_mode)) for p in paths} == {oct(mode)}


def test_a_failed_write_leaves_the_old_file_and_no_temporary(tmp_path):
    """The previous output survives a writer that fails, and no half-written file is left."""
    target = write_text(tmp_path / "out.txt", "old")

    def explode(_):
        raise RuntimeError("writer failed")

    with pytest.raises(RuntimeError):
        _write(target, explode)
    assert target.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["out.txt"]
