"""The promote stage: register the challenger; make it champion only if it truly wins.

"Not promoted" is a decision, not an error: this stage exits 0 unless it could not decide.
`--dry-run` (pull requests) compares the same way but registers nothing and moves no alias;
so does every run that may not move a shared alias (`provenance.py`: a dirty tree, a commit
not on the default branch, a DVC experiment), and it says how to promote instead.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from .. import provenance, stats
from ..artifacts import jsonable, read_json
from ..config import PromotionConfig, Task, load_config
from ..contract import Contract, load_contract
from ..errors import RefusedError
from ..model_io import ModelIntegrityError, load_model, recorded_versions
from ..paths import CARD, GATE, HOLDOUT, META, METRICS, MODEL, PROMOTION, REFERENCE
from ..records import (
    GateReport,
    Metrics,
    Promotion,
    TaskMetrics,
    read_record,
    write_record,
)
from ..registry import ModelRef, Registry
from ..task_pipeline import RUNTIME, classes_of, task_data
from ..tasks.table import TASKS

MDE_POWER = 0.8  # promotion.json's minimum_detectable_delta is detected with this chance
# the versions are model.py's LIBRARIES and numpy/pandas/scipy (model_io.recorded_versions)
TAGGED_META = (
    "data_sha256",
    "git_commit",
    "contract_fingerprint",
    "model_kind",
    *recorded_versions(),
)


def refusal(
    champion: ModelRef,
    contract: Contract,
    y: np.ndarray,
    settings: PromotionConfig,
    accept_schema_change: bool = False,
    task: Task = "binary",
) -> str | None:
    """Why the challenger cannot be compared with the champion, or None if it can."""
    trained_on = champion.tags.get("contract_fingerprint")
    if trained_on and trained_on != contract.fingerprint and not accept_schema_change:
        return (
            f"champion v{champion.version} was trained on a different contract "
            f"({trained_on} != {contract.fingerprint}): the schema changed, so today's holdout "
            "is no fair comparison. Review, then run "
            "`python -m <package> promote --accept-schema-change`."
        )
    # binary: positives and negatives; multiclass: rows of each class; regression: rows
    return TASKS[task].too_small(y, settings.min_class_count, classes_of(contract, task))


def compare_on_holdout(
    challenger_model: Any,
    champion_model: Any,
    X: pd.DataFrame,
    y: np.ndarray,
    settings: PromotionConfig,
    task: Task = "binary",
    classes: Sequence[Any] = (),
) -> stats.PairedComparison:
    """Score both models on the same rows; the paired test of `promotion.metric`.

    Binary: DeLong on ROC AUC, or a paired bootstrap of another metric. Multiclass and
    regression: the paired t-test on per-row log loss or squared error (`TASKS[task]`).
    """
    challenger = RUNTIME[task].predict(challenger_model, X, classes)
    champion = RUNTIME[task].predict(champion_model, X, classes)
    if task != "binary":
        return TASKS[task].paired_test(
            y,
            challenger,
            champion,
            min_delta=settings.min_delta,
            alpha=settings.alpha,
            resamples=settings.bootstrap_resamples,
            seed=settings.seed,
        )
    return stats.compare(
        y,
        challenger,
        champion,
        metric=settings.metric,
        min_delta=settings.min_delta,
        alpha=settings.alpha,
        resamples=settings.bootstrap_resamples,
        seed=settings.seed,
    )


def decide(
    registry: Registry,
    challenger: ModelRef,
    challenger_model: Any,
    contract: Contract,
    holdout: pd.DataFrame,
    settings: PromotionConfig,
    accept_schema_change: bool = False,
    dry_run: bool = False,
    task: Task = "binary",
) -> dict[str, Any]:
    """Compare with the champion on the same rows; move the aliases if the challenger wins.

    With `dry_run` the winner's decision is `would_promote` and no alias moves.
    """
    X, y, classes = task_data(holdout, contract, task)
    champion = registry.get_alias("champion")
    decision: dict[str, Any] = {
        "challenger": challenger.version or None,
        "champion": champion.version if champion else None,
        "dry_run": dry_run,
    }
    if champion is None:
        reason = "no champion yet: the first model that passes the gate becomes champion"
        return decision | _promote(registry, challenger, None, reason, dry_run)
    if champion.sha256 == challenger.sha256:
        return decision | {"decision": "not_promoted", "reason": "the challenger is the champion"}
    why_not = refusal(champion, contract, y, settings, accept_schema_change, task)
    if why_not:
        return decision | {"decision": "refused", "reason": why_not}
    try:
        path = registry.model_path(champion.version)
        champion_model = load_model(
            path, expected_sha256=champion.sha256, method=RUNTIME[task].method
        )
    except ModelIntegrityError as error:
        return decision | {"decision": "refused", "reason": f"champion cannot be loaded: {error}"}
    comparison = compare_on_holdout(challenger_model, champion_model, X, y, settings, task, classes)
    # the true improvement promoted with chance MDE_POWER: min_delta plus the test's margin
    mde = stats.minimum_detectable_delta(
        comparison.se, comparison.alpha, MDE_POWER, comparison.min_delta
    )
    decision |= {
        "comparison": comparison.to_dict(),
        "minimum_detectable_delta": mde,
        "minimum_detectable_delta_power": MDE_POWER,
    }
    max_mde = settings.max_detectable_delta
    if mde > max_mde:
        reason = (
            f"holdout too small for the requested delta: it detects (with power {MDE_POWER:g}) "
            f"only improvements above {mde:.4f} (promotion.max_detectable_delta is {max_mde})"
        )
        return decision | {"decision": "refused", "reason": reason}
    summary = (
        f"{comparison.metric} {comparison.challenger:.4f} vs champion {comparison.champion:.4f}: "
        f"difference {comparison.diff:+.4f} [{comparison.low:+.4f}, {comparison.high:+.4f}], "
        f"p = {comparison.p_value:.4g} for > {comparison.min_delta} at alpha {comparison.alpha}"
    )
    if not comparison.significant:
        return decision | {"decision": "not_promoted", "reason": summary}
    return decision | _promote(registry, challenger, champion, summary, dry_run)


def _promote(
    registry: Registry,
    challenger: ModelRef,
    champion: ModelRef | None,
    reason: str,
    dry_run: bool = False,
) -> dict[str, Any]:
    """Move `champion` by compare-and-set; the old champion becomes `previous` (N-1)."""
    if dry_run:
        return {"decision": "would_promote", "reason": reason}
    expected = champion.version if champion else None
    if not registry.move_alias("champion", challenger.version, expected=expected):
        reason = "champion moved while we compared (compare-and-set lost); run promote again"
        return {"decision": "refused", "reason": reason}
    if champion is not None:
        registry.move_alias(
            "previous", champion.version, expected=_alias_version(registry, "previous")
        )
    return {"decision": "promoted", "reason": reason, "version": challenger.version}


def _alias_version(registry: Registry, alias: str) -> str | None:
    ref = registry.get_alias(alias)
    return ref.version if ref else None


def read_metrics(task: Task) -> tuple[Metrics | TaskMetrics, str]:
    """metrics.json as the task's record, and the metric a registered version is tagged with."""
    if task == "binary":
        return read_record(METRICS, Metrics), "roc_auc"
    metrics = read_record(METRICS, TaskMetrics)
    return metrics, metrics.headline


def main(argv: list[str] | None = None) -> int:
    """Register the gated model and decide whether it becomes champion."""
    parser = argparse.ArgumentParser(prog="promote", description=main.__doc__)
    parser.add_argument("--contract", type=Path, default=Path("contract.yaml"))
    parser.add_argument(
        "--accept-schema-change",
        action="store_true",
        help="compare even though the champion was trained on another contract",
    )
    parser.add_argument(
        "--dry-run",
        action="store_true",
        help="compare and report only: register nothing, move no alias (pull requests)",
    )
    args = parser.parse_args(argv)
    if not read_record(GATE, GateReport).passed:
        raise RefusedError(f"{GATE} says the gate failed; nothing to promote")
    config = load_config()
    settings = config.promotion
    contract, meta = load_contract(args.contract), read_json(META)
    metrics, headline = read_metrics(config.task)
    registry = Registry()
    authority = provenance.authority(shared=not registry.is_local, raw=Path(config.data.raw))
    dry_run = args.dry_run or not authority.may_move
    tags = {key: meta.get(key) for key in TAGGED_META} | {
        headline: json.dumps(jsonable(metrics.metrics[headline].model_dump())),
        "contract": contract.name,
        **({} if config.task == "binary" else {"task": config.task}),
    }
    if dry_run:
        challenger = registry.find_by_sha256(meta["model_sha256"])
        challenger = challenger or ModelRef("", meta["model_sha256"])
    else:
        challenger = registry.register_once(MODEL, tags, extra_files=(META, REFERENCE, CARD))
        registry.move_alias(
            "challenger", challenger.version, expected=_alias_version(registry, "challenger")
        )
    decision = decide(
        registry,
        challenger,
        load_model(MODEL, expected_sha256=challenger.sha256, method=RUNTIME[config.task].method),
        contract,
        pd.read_parquet(HOLDOUT),
        settings,
        accept_schema_change=args.accept_schema_change,
        dry_run=dry_run,
        task=config.task,
    )
    evidence = {
        "data_sha256": meta.get("data_sha256"),
        "git_commit": meta.get("git_commit"),
        "metrics": metrics.metrics,
    }
    fields = decision | {
        "model": registry.model_name,
        "evidence": evidence,
        "registry": registry.display_uri,  # the record comes from this registry, every run
        "compared_only": None if args.dry_run else authority.compared_only(),
        "experiment": provenance.experiment(),
        "override": authority.override,
    }
    if challenger.version:  # the card registered with this version (no machine paths here)
        fields["model_card"] = {"version": challenger.version, "artifact": CARD.name}
    record = Promotion.model_validate(fields)
    if not dry_run:
        entry = record.model_dump(mode="json") | {"by": provenance.who()}
        if authority.override:
            entry |= {"commit": provenance.head_commit(), "override_bypassed": authority.bypassed}
        registry.append_log(entry)
    write_record(PROMOTION, record)
    name = f"v{challenger.version}" if challenger.version else "unregistered model (compared only)"
    print(f"promote: {name}: {decision['decision']}: {decision['reason']}")
    if authority.override:
        print(f"promote: OVERRIDE ({authority.override}) moved past: {authority.bypassed}")
    if record.compared_only:
        print(f"promote: {record.compared_only}")
    return 0
