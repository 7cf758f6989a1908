"""Every expected failure exits with the code errors.py documents, through the one CLI."""

from __future__ import annotations

import importlib
import json
import pkgutil
import re
from pathlib import Path

import pytest

import {{ cookiecutter.package }} as package
from {{ cookiecutter.package }} import errors
from {{ cookiecutter.package }}.cli import main as cli_main
from {{ cookiecutter.package }}.errors import (
    ConfigError,
    DataError,
    ExpectedError,
    RefusedError,
    ServiceError,
)
from tests.conftest import ROOT

# Exceptions that never reach a user: each is turned into an HTTP answer where it is raised.
INTERNAL = {
    "RequestError": "serve/schema.py: a 422 naming the field",
    "UpstreamError": "rollout/upstream.py: the router's 502 and a counted failure",
    "_TooLarge": "asgi/limits.py: a 413",
    "NoFastPath": "serve/fastpath.py: the reason the one-row shortcut is off, said at start-up",
}


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty directory with the project's params.yaml and contract.yaml (and its own
    embedded registry: never the shared one a CI job names in MLFLOW_TRACKING_URI)."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    for name in ("params.yaml", "contract.yaml"):
        (tmp_path / name).write_bytes((ROOT / name).read_bytes())
    return tmp_path


def documented() -> dict[int, str]:
    """The table in errors.py's docstring: exit code -> what it means."""
    rows = re.findall(r"^\| (\d+) \| (.+) \|$", errors.__doc__ or "", re.MULTILINE)
    return {int(code): meaning for code, meaning in rows}


def modules() -> list[str]:
    """Every module of the package but `__main__` (which runs the CLI when imported)."""
    found = pkgutil.walk_packages(package.__path__, f"{package.__name__}.")
    return [m.name for m in found if not m.name.endswith(".__main__")]


def test_every_error_class_is_expected_and_has_a_documented_code():
    """An exception class the package defines is an ExpectedError with a code in the table."""
    for name in modules():
        importlib.import_module(name)
    table = documented()
    seen = set()
    for module in map(importlib.import_module, modules()):
        for value in vars(module).values():
            if not (isinstance(value, type) and issubclass(value, BaseException)):
                continue
            if value.__module__ != module.__name__ or value is ExpectedError:
                continue
            seen.add(value.__name__)
            if value.__name__ in INTERNAL:
                continue
            assert issubclass(value, ExpectedError), f"{module.__name__}.{value.__name__}"
            assert value.exit_code in table, value
            assert value.exit_code > 2, value  # 0-2 are done, a bug and argparse
    assert set(INTERNAL) <= seen, "an internal exception was renamed: update INTERNAL"


def test_the_table_documents_each_family():
    table = documented()
    for family in (ConfigError, DataError, RefusedError, ServiceError):
        assert family.__name__ in table[family.exit_code]
    assert set(table) == {0, 1, 2, 3, 4, 5, 6}


def test_exit_0_when_done(capsys):
    assert cli_main(["--help"]) == 0
    assert "commands:" in capsys.readouterr().out


def test_exit_2_for_a_wrong_command_line(capsys):
    assert cli_main(["no-such-command"]) == 2
    assert "unknown command" in capsys.readouterr().err


def test_exit_3_for_a_configuration_error(project, capsys):
    (project / "params.yaml").write_text("gates: {auc_roc: 2}\n", encoding="utf-8")
    assert cli_main(["gate"]) == ConfigError.exit_code == 3
    assert "gates.auc_roc" in capsys.readouterr().err


def test_exit_4_for_a_data_error(project, capsys):
    """gate without metrics.json: the file is named with the stage that writes it."""
    assert cli_main(["gate"]) == DataError.exit_code == 4
    assert "metrics/metrics.json: not found" in capsys.readouterr().err


def test_exit_5_when_a_check_says_no(project, capsys):
    """promote after a failed gate is refused, not a bug (it used to `return 1`)."""
    (project / "metrics").mkdir()
    gate = {"passed": False, "judge_on": "point", "checks": []}
    (project / "metrics" / "gate.json").write_text(json.dumps(gate), encoding="utf-8")
    assert cli_main(["promote"]) == RefusedError.exit_code == 5
    assert "the gate failed" in capsys.readouterr().err


def test_exit_6_when_a_service_cannot_do_it(project, capsys):
    """bundle from a registry that holds no champion: the registry could not give one."""
    args = ["--registry", str(project / "registry"), "--out", str(project / "bundles")]
    assert cli_main(["bundle", *args]) == ServiceError.exit_code == 6
    err = capsys.readouterr().err
    assert err.startswith("bundle: ")
    assert "no champion" in err
    assert not (project / "bundles").exists()
