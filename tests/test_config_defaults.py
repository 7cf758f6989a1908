"""The shipped params.yaml and the typed defaults in config.py cannot disagree."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from .conftest import CHOICES, bake

# Keys the answers decide (the data file, its size, the model, the sample's threshold):
# the bake writes them, so they are the only ones allowed to differ from config.py.
ANSWERED = {"data.raw", "data.sample_rows", "model.kind", "evaluate.threshold"}


def leaves(tree: Any, prefix: str = "") -> dict[str, Any]:
    """Flatten nested mappings to dotted keys; lists stay whole values."""
    if not isinstance(tree, dict):
        return {prefix: tree}
    flat: dict[str, Any] = {}
    for key, value in tree.items():
        flat |= leaves(value, f"{prefix}.{key}" if prefix else str(key))
    return flat


def dump_config(project: Path, raw: dict[str, Any] | None = None) -> dict[str, Any]:
    """config.py's view of params.yaml (or of `raw`), computed by the project's own code."""
    source = (
        "load_config('params.yaml')" if raw is None else "parse_config(json.loads(sys.argv[1]))"
    )
    script = (
        f"import json, sys; from {project.name.replace('-', '_')}.config import load_config, "
        f"parse_config; print(json.dumps({source}.model_dump(mode='json')))"
    )
    done = subprocess.run(
        [sys.executable, "-c", script, json.dumps(raw)],
        cwd=project,
        env={"PYTHONPATH": str(project / "src")},
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(done.stdout)


def pure_defaults(project: Path, answered: dict[str, Any]) -> dict[str, Any]:
    """config.py's defaults alone: only the answered keys (and the required steps) given."""
    nested: dict[str, Any] = {"rollout": {"steps": [{"weight": 100, "pause_s": 0}]}}
    for dotted, value in answered.items():
        section, key = dotted.split(".")
        nested.setdefault(section, {})[key] = value
    return dump_config(project, nested)


@pytest.mark.parametrize("dataset", CHOICES["dataset"])
def test_params_file_equals_config_defaults(tmp_path: Path, dataset: str) -> None:
    """Every key of the shipped params.yaml holds config.py's default, but the answered ones."""
    project = bake(tmp_path, dataset=dataset)
    shipped = leaves(yaml.safe_load((project / "params.yaml").read_text(encoding="utf-8")))
    answered = {key: shipped[key] for key in ANSWERED}
    defaults = leaves(pure_defaults(project, answered))
    rollout_steps = "rollout.steps"
    differing = {
        key: (value, defaults.get(key))
        for key, value in shipped.items()
        if key != rollout_steps and defaults.get(key) != value
    }
    assert not differing, f"params.yaml vs config.py defaults: {differing}"
    assert leaves(dump_config(project)).keys() >= shipped.keys()
