"""Gates drafted from your data: relative to what needs no model, judged on intervals."""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from scipy.special import ndtri

from . import stats
from .config import load_config
from .contract import Contract
from .data import conform, features_and_target
from .evaluation import single_feature_scores

TOP = 0.05  # the top share of scores the lift gate looks at (evaluate's precision_at_5pct)
POWER = 0.8  # the chance a gain of the detectable size shows in the interval
# A gain is demanded (superiority) only when the holdout detects one of at most this share of
# the room the best feature leaves (1 - its AUC); otherwise no model could show one.
SHARE_OF_HEADROOM = 1 / 3
MARGIN_STEP = 0.005  # a non-inferiority margin is rounded up to this

SUPERIORITY = """\
  # The model must show a gain: the pessimistic end of the interval above 0.
  beat_baseline: true
  baseline_margin: 0.0"""
NON_INFERIORITY = """\
  # That is more than {share:.0%} of the room left, so no model could show a gain here: the
  # model must instead not be worse than {single} by more than the margin (non-inferiority).
  # Set baseline_margin: 0.0 to demand a gain once the holdout can show one (more rows).
  beat_baseline: true
  baseline_margin: {margin}"""

TEMPLATE = """\
gates:
  # Drafted by `make contract` from {rows} rows with {positives} positives (prevalence {prevalence:.2%}).
  # Each gate compares the model with what needs no model, on the holdout ({test_size:.0%} of rows,
  # about {holdout_positives:.0f} positives), at the pessimistic end of its {level:.0%} interval, so a
  # lucky holdout cannot pass a weak model.{few}
  judge_on: lower_bound
  # The model's ROC AUC minus the best single feature's, paired on the same holdout rows
  # (DeLong). On all rows the best single feature now is {single} (ROC AUC {auc:.3f}); this
  # holdout detects a gain over it of about {detectable:.3f} (80% power){headroom}.
{baseline}
  # Precision among the top 5% of scores divided by the prevalence. A random order scores 1.0
  # (the trivial baseline); {single} alone scores {lift:.2f}. Raise the bound toward that to ask
  # the model to beat it at the top too.
  min_lift_at_5pct: 1.0
  # A random order must flag 80% of the negatives to reach 80% recall: stay below that.
  max_fpr_at_recall_80: 0.80
  # Absolute bounds, off (null). Set a number to require a level as well, e.g. auc_roc: 0.80.
  auc_roc: null
  precision_at_5pct: null
  # No slices are drafted; once you add some to contract.yaml, each must rank better than chance.
  min_slice_auc: 0.50
  fairness:                  # judged per `protected` attribute of contract.yaml (none drafted)
    min_disparate_impact: 0.80   # the four-fifths rule
    max_equalized_odds_gap: 0.15

"""


@dataclass(frozen=True)
class DraftedGates:
    """The `gates:` section of params.yaml (comments included) and a line for the terminal."""

    text: str
    summary: str


def draft_gates(df: pd.DataFrame, contract: Contract, params_path: Path) -> DraftedGates:
    """Gates for this data: the model must beat the best single feature and a random order."""
    config = load_config(params_path)
    test_size, level = config.split.test_size, config.evaluate.level
    frame = conform(df, contract)
    _, y = features_and_target(frame, contract)
    name, scores = single_feature_scores(frame, y, contract)
    prevalence = float(y.mean())
    holdout_positives = len(y) * test_size * prevalence
    few = ""
    if holdout_positives < 30:
        few = (
            "\n  # With so few positives the intervals are wide: a red gate can mean too little"
            "\n  # data rather than a weak model (more rows, or a larger split.test_size, narrow them)."
        )
    detectable, margin = (
        baseline_rule(y, scores, test_size, level) if name != "prior" else (0.0, 0.0)
    )
    auc = stats.roc_auc(y, scores) if name != "prior" else 0.5
    single = f"`{name}`" if name != "prior" else "none (no feature ranks at all)"
    rule = (
        SUPERIORITY
        if margin == 0
        else NON_INFERIORITY.format(share=SHARE_OF_HEADROOM, single=single, margin=margin)
    )
    text = TEMPLATE.format(
        detectable=detectable,
        headroom=f", out of {1 - auc:.3f} left below 1" if name != "prior" else "",
        baseline=rule,
        rows=len(y),
        positives=int(y.sum()),
        prevalence=prevalence,
        test_size=test_size,
        holdout_positives=holdout_positives,
        level=level,
        few=few,
        single=single,
        auc=auc,
        lift=stats.precision_at_top(y, scores, TOP) / prevalence,
    )
    kind = "must beat it" if margin == 0 else f"may trail it by at most {margin}"
    summary = (
        f"prevalence {prevalence:.2%}; baseline: {name} (the model {kind}); "
        f"judged on {level:.0%} intervals"
    )
    return DraftedGates(text, summary)


def baseline_rule(
    y: np.ndarray, scores: np.ndarray, test_size: float, level: float
) -> tuple[float, float]:
    """(the gain over the best feature the holdout detects, the non-inferiority margin or 0).

    The SE of the paired difference is taken as the SE of the feature's own ROC AUC on a
    holdout of test_size of the rows (DeLong on all rows, scaled by 1/sqrt(test_size)): the
    two AUCs are correlated, so this errs on the wide side. The gain is detected when the
    interval's pessimistic end clears 0 with POWER.
    """
    z = float(ndtri(0.5 + level / 2))
    interval = stats.delong_interval(y, scores, level)
    se = max(interval.value - interval.low, interval.high - interval.value) / z
    detectable = stats.minimum_detectable_delta(se / math.sqrt(test_size), (1 - level) / 2, POWER)
    headroom = 1 - interval.value
    if headroom > 0 and detectable <= SHARE_OF_HEADROOM * headroom:
        return detectable, 0.0
    # a feature that separates perfectly leaves no gain to show: the smallest margin
    steps = max(math.ceil(detectable / MARGIN_STEP), 1)
    return detectable, round(steps * MARGIN_STEP, 3)


def with_gates(params_text: str, gates: str) -> str:
    """params.yaml text with its `gates:` section replaced (appended if it has none)."""
    updated, count = re.subn(r"(?ms)^gates:\n.*?(?=^\S|\Z)", lambda _: gates, params_text, count=1)
    return updated if count else f"{params_text.rstrip()}\n\n{gates}"
