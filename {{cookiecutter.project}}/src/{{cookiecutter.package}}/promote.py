"""The promote stage: register the challenger; make it champion only if it truly wins.

"Not promoted" is a decision, not an error: this stage exits 0 unless it could not decide.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from . import stats
from .artifacts import read_json, write_json
from .contract import Contract, load_contract
from .data import features_and_target
from .model_io import ModelIntegrityError, load_model
from .params import load_params, require
from .registry import ModelRef, Registry

MODEL = Path("models/model.skops")
META = Path("models/train_meta.json")
REFERENCE = Path("models/reference_profile.json")
HOLDOUT = Path("data/holdout.parquet")
GATE = Path("metrics/gate.json")
METRICS = Path("metrics/metrics.json")
PROMOTION = Path("metrics/promotion.json")
TAGGED_META = (
    "data_sha256", "git_commit", "contract_fingerprint", "model_kind",
    "python_version", "sklearn_version", "skops_version", "numpy_version", "pandas_version", "scipy_version",
)  # fmt: skip


def refusal(
    champion: ModelRef, contract: Contract, y: np.ndarray, settings: dict[str, Any]
) -> str | None:
    """Why the challenger cannot be compared with the champion, or None if it can."""
    trained_on = champion.tags.get("contract_fingerprint")
    if trained_on and trained_on != contract.fingerprint:
        return (
            f"champion v{champion.version} was trained on a different contract "
            f"({trained_on} != {contract.fingerprint}); the schema changed, so a comparison on "
            "today's holdout is not fair. Promote by hand: `make promote-force`."
        )
    minimum = int(settings.get("min_class_count", 30))
    positives = int(y.sum())
    if min(positives, len(y) - positives) < minimum:
        return f"holdout too small: {positives} positives, {len(y) - positives} negatives (need {minimum} of each)"
    return None


def decide(
    registry: Registry,
    challenger: ModelRef,
    contract: Contract,
    holdout: pd.DataFrame,
    settings: dict[str, Any],
) -> dict[str, Any]:
    """Compare with the champion on the same rows and move the aliases if the challenger wins."""
    X, y = features_and_target(holdout, contract)
    champion = registry.get_alias("champion")
    decision: dict[str, Any] = {"challenger": challenger.version, "champion": champion.version if champion else None}
    if champion is None:
        moved = registry.move_alias("champion", challenger.version, expected=None)
        reason = "no champion yet: the first model that passes the gate becomes champion"
        return decision | _moved(moved, reason, challenger)
    why_not = refusal(champion, contract, y, settings)
    if why_not:
        return decision | {"decision": "refused", "reason": why_not}
    try:
        incumbent = load_model(registry.model_path(champion.version), expected_sha256=champion.sha256)
    except ModelIntegrityError as error:
        return decision | {"decision": "refused", "reason": f"champion cannot be loaded: {error}"}
    comparison = stats.compare(
        y,
        load_model(MODEL).predict_proba(X)[:, 1],
        incumbent.predict_proba(X)[:, 1],
        metric=str(settings.get("metric", "roc_auc")),
        min_delta=float(settings.get("min_delta", 0.0)),
        alpha=float(settings.get("alpha", 0.05)),
        resamples=int(settings.get("bootstrap_resamples", 2000)),
        seed=int(settings.get("seed", 0)),
    )
    se = (comparison.high - comparison.low) / (2 * 1.959964)
    mde = stats.minimum_detectable_delta(se, comparison.alpha) if se > 0 else 0.0
    decision |= {"comparison": comparison.to_dict(), "minimum_detectable_delta": mde}
    max_mde = float(settings.get("max_detectable_delta", 0.05))
    if mde > max_mde:
        reason = f"holdout too small for the requested delta: it can only detect differences above {mde:.4f} (limit {max_mde})"
        return decision | {"decision": "refused", "reason": reason}
    if not comparison.significant:
        reason = (
            f"{comparison.metric}: challenger {comparison.challenger:.4f} vs champion {comparison.champion:.4f}; "
            f"difference {comparison.diff:+.4f} is not above {comparison.min_delta} at alpha {comparison.alpha} "
            f"(p = {comparison.p_value:.4f})"
        )
        return decision | {"decision": "not_promoted", "reason": reason}
    moved = registry.move_alias("champion", challenger.version, expected=champion.version)
    if moved:
        registry.move_alias("previous", champion.version, expected=_alias_version(registry, "previous"))
    reason = f"{comparison.metric} improved by {comparison.diff:+.4f} (p = {comparison.p_value:.4f})"
    return decision | _moved(moved, reason, challenger)


def _alias_version(registry: Registry, alias: str) -> str | None:
    ref = registry.get_alias(alias)
    return ref.version if ref else None


def _moved(moved: bool, reason: str, challenger: ModelRef) -> dict[str, Any]:
    if moved:
        return {"decision": "promoted", "reason": reason, "version": challenger.version}
    return {"decision": "refused", "reason": "champion moved while we compared (compare-and-set lost); run again"}


def main(argv: list[str] | None = None) -> int:
    """Register the gated model and decide whether it becomes champion."""
    parser = argparse.ArgumentParser(prog="promote", description=main.__doc__)
    parser.add_argument("--contract", type=Path, default=Path("contract.yaml"))
    args = parser.parse_args(argv)
    gate = read_json(GATE)
    if not gate["passed"]:
        print(f"promote: {GATE} says the gate failed; nothing to promote", file=sys.stderr)
        return 1
    settings = require(load_params(), "promotion", dict)
    contract, meta, metrics = load_contract(args.contract), read_json(META), read_json(METRICS)
    registry = Registry()
    tags = {key: meta.get(key) for key in TAGGED_META} | {
        "roc_auc": metrics["metrics"]["roc_auc"],
        "contract": contract.name,
    }
    challenger = registry.register(MODEL, tags, extra_files=(META, REFERENCE))
    registry.move_alias("challenger", challenger.version, expected=_alias_version(registry, "challenger"))
    decision = decide(registry, challenger, contract, pd.read_parquet(HOLDOUT), settings)
    evidence = {
        "data_sha256": meta.get("data_sha256"),
        "git_commit": meta.get("git_commit"),
        "metrics": {k: v for k, v in metrics["metrics"].items()},
    }
    record = decision | {"model": registry.model_name, "evidence": evidence}
    registry.append_log(record)
    write_json(PROMOTION, record)
    print(f"promote: v{challenger.version}: {decision['decision']}: {decision['reason']}")
    return 0
