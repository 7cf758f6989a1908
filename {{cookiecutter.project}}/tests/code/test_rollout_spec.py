"""The rollout spec: one default per knob (params.yaml says the same), typos named."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml
from pydantic import BaseModel

from {{ cookiecutter.package }}.rollout.spec import Rollout, Serve, SpecError, parse_rollout, parse_serve

PARAMS = Path(__file__).resolve().parents[2] / "params.yaml"


def defaults_and_values(
    model: type[BaseModel], values: dict[str, Any], path: str
) -> list[tuple[str, Any, Any]]:
    """(key, the model's default, the file's value) for every key the file sets."""
    found = []
    for name, value in values.items():
        info = model.model_fields[name]
        annotation = info.annotation
        if (
            isinstance(value, dict)
            and isinstance(annotation, type)
            and issubclass(annotation, BaseModel)
        ):
            found += defaults_and_values(annotation, value, f"{path}.{name}")
        elif not info.is_required():
            found.append((f"{path}.{name}", info.get_default(call_default_factory=True), value))
    return found


def test_params_yaml_and_the_spec_defaults_agree():
    params = yaml.safe_load(PARAMS.read_text(encoding="utf-8"))
    pairs = defaults_and_values(Rollout, params["rollout"], "rollout")
    pairs += defaults_and_values(Serve, params["serve"], "serve")
    assert len(pairs) > 20
    assert [(k, d, v) for k, d, v in pairs if d != v] == []
    parse_rollout(params["rollout"])
    parse_serve(params["serve"])


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
    with pytest.raises(SpecError, match=named.replace("(", r"\(").replace(")", r"\)")):
        parse_rollout({**params, **patch})
