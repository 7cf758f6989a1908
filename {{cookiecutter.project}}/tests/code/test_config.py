"""params.yaml is read one way: typed sections that refuse typos and name what is allowed."""

from __future__ import annotations

import copy

import pytest
import yaml

from {{ cookiecutter.package }}.cli import main as cli_main
from {{ cookiecutter.package }}.config import load_config, parse_config
from {{ cookiecutter.package }}.errors import ConfigError, ExpectedError
from tests.conftest import ROOT


@pytest.fixture(scope="module")
def raw() -> dict:
    return yaml.safe_load((ROOT / "params.yaml").read_text(encoding="utf-8"))


def test_shipped_params_load(raw):
    """The params.yaml the project ships is valid as it stands."""
    config = load_config(ROOT / "params.yaml")
    assert config.data.raw == raw["data"]["raw"]
    assert config.promotion.min_delta == raw["promotion"]["min_delta"]


@pytest.mark.parametrize(
    ("path", "value", "named"),
    [
        (("gates", "judge_onn"), "point", "gates.judge_onn: unknown key"),
        (("drift", "on_drift"), "fial", "drift.on_drift: 'fial' is not allowed"),
        (("promotion", "metric"), "roc", "promotion.metric: 'roc' is not allowed"),
        (("split", "test_size"), 1.5, "split.test_size: 1.5 is not allowed"),
        (("model", "kind"), "xgboost", "model.kind: 'xgboost' is not allowed"),
        (("rollout", "inconclusive", "policy"), "extend", "rollout.inconclusive.policy"),
        (("evaluate", "extra_metrics"), ["brierr"], "evaluate.extra_metrics"),
    ],
)
def test_a_typo_names_the_key_the_value_and_what_is_allowed(raw, path, value, named):
    """A wrong key or value never falls back to a default silently."""
    broken = copy.deepcopy(raw)
    section = broken
    for part in path[:-1]:
        section = section[part]
    section[path[-1]] = value
    with pytest.raises(ConfigError) as caught:
        parse_config(broken, "params.yaml")
    assert named in str(caught.value)


def test_expected_errors_are_one_line_with_their_exit_code(tmp_path, monkeypatch, capsys):
    """cli.py reports an ExpectedError in one line with its documented code, no traceback."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "contract.yaml").write_bytes((ROOT / "contract.yaml").read_bytes())
    (tmp_path / "params.yaml").write_text("drift: {on_drift: sometimes}\n", encoding="utf-8")
    code = cli_main(["train"])
    err = capsys.readouterr().err
    assert code == ConfigError.exit_code == 3
    assert err.startswith("train: ")
    assert "Traceback" not in err
    assert "drift.on_drift" in err


def test_a_bug_keeps_its_traceback(monkeypatch):
    """Anything that is not an ExpectedError propagates: bugs are not dressed up as messages."""
    from {{ cookiecutter.package }}.pipeline import train

    def broken(argv):
        raise KeyError("a programming error")

    monkeypatch.setattr(train, "main", broken)
    with pytest.raises(KeyError):
        cli_main(["train"])
    assert not issubclass(KeyError, ExpectedError)
