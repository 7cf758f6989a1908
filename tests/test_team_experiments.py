"""Hyperparameter search the DVC way: experiments compare with the real champion, never promote.

A real DVC repository, the embedded MLflow registry with a champion, `dvc exp run -S` in the
workspace, `--queue` and `--run-all` (temporary workspaces), `dvc exp show`.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from .conftest import bake, run, tool_env
from .test_team import commit_all, git, make, promotion
from .workflow_runs import DEFAULT_MODEL, FEWER_RESAMPLES, FIRST_MODEL, set_params

pytestmark = pytest.mark.slow
PARAM = "model.hist_gradient_boosting.max_iter"


def registry_state(project: Path) -> tuple[list[str], str | None, int]:
    """Versions, the champion and the number of promotion-log entries of the embedded registry."""
    script = (
        "from churn_model.registry import Registry; r = Registry(); "
        "vs = sorted(str(v.version) for v in r.client.search_model_versions(f\"name = '{r.model_name}'\")); "
        "c = r.get_alias('champion'); import json; "
        "print(json.dumps([vs, c.version if c else None, len(r.read_log())]))"
    )
    versions, champion, entries = json.loads(run([sys.executable, "-c", script], project).stdout)
    return versions, champion, entries


def experiments(project: Path) -> dict[str, dict]:
    """`dvc exp show --json`: each experiment's name -> its metrics files' contents."""
    shown = json.loads(run(["dvc", "exp", "show", "--json"], project).stdout)
    found = {}
    for baseline in shown:
        for exp in baseline.get("experiments") or []:
            for revision in exp.get("revs") or []:
                data = revision.get("data") or {}
                metrics = {
                    path: m.get("data", {}) for path, m in (data.get("metrics") or {}).items()
                }
                found[revision.get("name") or revision["rev"]] = metrics
    return found


def test_experiments_compare_and_never_promote(tmp_path: Path) -> None:
    """With a champion in the registry: a workspace `dvc exp run -S`, two queued experiments
    and `--run-all` register no version, move no alias and log nothing; every experiment's
    promotion.json says it is an experiment, compared against the real champion (v1) with
    the paired test; `dvc exp show` lists ROC AUC with its interval."""
    project = bake(tmp_path / "origin")
    set_params(project, DEFAULT_MODEL, FIRST_MODEL)
    set_params(project, *FEWER_RESAMPLES)
    git(project, "symbolic-ref", "HEAD", "refs/heads/main")
    commit_all(project, "baked")
    make(project, "repro")
    assert promotion(project)["decision"] == "promoted"
    commit_all(project, "v1 champion")
    before = registry_state(project)
    assert before == (["1"], "1", 1), before

    run(["dvc", "exp", "run", "-S", f"{PARAM}=31", "--name", "one-more-tree"], project)
    record = promotion(project)
    assert record["experiment"] == "one-more-tree" and record["dry_run"] is True, record
    assert record["champion"] == "1" and record["comparison"] is not None, record
    assert record["compared_only"].startswith("experiment one-more-tree: compared, not promoted")
    assert registry_state(project) == before

    git(project, "checkout", "--quiet", "--", "params.yaml")  # the workspace run left its edit
    for value, name in (("20", "fewer-trees"), ("45", "more-trees")):
        run(["dvc", "exp", "run", "--queue", "-S", f"{PARAM}={value}", "--name", name], project)
    done = run(["dvc", "exp", "run", "--run-all"], project, env=tool_env(project))
    assert "Traceback" not in done.stderr
    assert registry_state(project) == before, "an experiment registered or promoted"

    shown = experiments(project)
    for name in ("one-more-tree", "fewer-trees", "more-trees"):
        assert name in shown, sorted(shown)
        decided = shown[name]["metrics/promotion.json"]
        assert decided["experiment"] == name and decided["dry_run"] is True, decided
        assert decided["champion"] == "1", decided  # the project's registry, not an empty one
        assert decided["decision"] in ("would_promote", "not_promoted"), decided
        assert decided["comparison"]["metric"] == "roc_auc", decided
        roc = shown[name]["metrics/metrics.json"]["metrics"]["roc_auc"]
        assert roc["low"] < roc["value"] < roc["high"], roc

    table = run(["dvc", "exp", "show", "--md", "--only-changed"], project).stdout
    for column in ("metrics.roc_auc.value", "metrics.roc_auc.low", "metrics.roc_auc.high"):
        assert column in table, table[:2000]
