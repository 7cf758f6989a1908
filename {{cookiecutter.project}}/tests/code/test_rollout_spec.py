"""The rollout spec (config.py): params.yaml parses, typos and impossible values are named."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from {{ cookiecutter.package }}.config import Serve, parse_rollout
from {{ cookiecutter.package }}.errors import ConfigError

PARAMS = Path(__file__).resolve().parents[2] / "params.yaml"


def test_the_project_params_yaml_is_a_valid_spec():
    """Whatever the user tuned, params.yaml's rollout and serve sections parse.

    That the shipped values equal the spec's defaults is the template's own test
    (tests/test_config_defaults.py): here a tuned value is the user's right.
    """
    params = yaml.safe_load(PARAMS.read_text(encoding="utf-8"))
    parse_rollout(params["rollout"])
    Serve.model_validate(params["serve"])


@pytest.mark.parametrize(
    ("patch", "named"),
    [
        ({"analysis": {"interval_s": 1, "min_request": 40}}, "rollout.analysis.min_request"),
        ({"inconclusive": {"policy": "extend"}}, "rollout.inconclusive.policy"),
        ({"analysis": {"client_errors": "errors"}}, "rollout.analysis.client_errors"),
        ({"shadow": {"timeout_ms": 100}}, "shadow.timeout_ms (100) must be at least"),
    ],
)
def test_a_typo_or_impossible_value_names_the_key(patch, named):
    params = yaml.safe_load(PARAMS.read_text(encoding="utf-8"))["rollout"]
    with pytest.raises(ConfigError, match=named.replace("(", r"\(").replace(")", r"\)")):
        parse_rollout({**params, **patch})
