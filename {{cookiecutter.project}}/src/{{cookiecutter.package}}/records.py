"""The records one stage writes for the next: metrics.json, gate.json, promotion.json.

One typed model per file, used to write it and to read it back, so a writer and its readers
cannot disagree on a field. A file that does not match is a `DataError` naming the file and
each bad field. Non-finite numbers are written as null (JSON has no NaN).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Literal, TypeVar

from .artifacts import write_json
from .errors import DataError
from .typed import Frozen, parse

JudgeOn = Literal["point", "lower_bound", "whole_interval"]
Decision = Literal["promoted", "not_promoted", "refused", "would_promote"]


class Estimate(Frozen):
    """A point estimate with its confidence interval (null where it is not defined)."""

    value: float | None
    low: float | None = None
    high: float | None = None
    method: str = ""


class Baseline(Frozen):
    """The best single feature, and how much the model gains over it."""

    name: str
    roc_auc: Estimate
    auc_gain: Estimate


class Slice(Frozen):
    """ROC AUC on one contract slice, or why the slice is too small to judge."""

    n: int
    positives: int
    judged: bool
    roc_auc: Estimate | None = None
    reason: str | None = None


class GroupRates(Frozen):
    """Positive rate, TPR and FPR of one value of a protected attribute."""

    n: int
    positive_rate: float | None
    tpr: float | None
    fpr: float | None


class Fairness(Frozen):
    """Fairness of one protected attribute at the decision threshold."""

    threshold: float
    disparate_impact: Estimate
    equalized_odds_gap: Estimate
    groups: dict[str, GroupRates]


class InvarianceShare(Frozen):
    """One behavioural rule of the contract and the share of rows that obey it."""

    column: str
    change: list[Any]
    direction: Literal["increase", "decrease"]
    share: float
    min_share: float


class Importance(Frozen):
    """Permutation importance of one feature: the mean ROC AUC drop and its spread."""

    feature: str
    auc_drop: float
    std: float


class Metrics(Frozen):
    """metrics/metrics.json, written by `evaluate`, judged by `gate`, read by reports and promote."""

    n: int
    positives: int
    prevalence: float
    level: float
    metrics: dict[str, Estimate]
    baseline: Baseline
    slices: dict[str, Slice]
    fairness: dict[str, Fairness]
    invariances: dict[str, InvarianceShare]
    importance: list[Importance]


class TaskBaseline(Frozen):
    """What needs no model, and the model's paired gain over the best single feature."""

    headline: str
    constants: dict[str, Estimate]  # the headline metric of each constant predictor
    single_feature: str
    single_feature_headline: Estimate
    compared: str  # the per-row loss the gain is measured in
    gain: Estimate  # mean loss of the feature minus the model's: positive means the model wins


class TaskSlice(Frozen):
    """The headline metric on one contract slice, or why the slice is too small to judge."""

    n: int
    judged: bool
    headline: Estimate | None = None
    reason: str | None = None


class TaskFairness(Frozen):
    """How differently one protected attribute's groups are served (`tasks.fairness`)."""

    measure: str
    parity: float
    disparity: Estimate
    contrast: str
    groups: dict[str, dict[str, Any]]
    left_out: list[str]


class TaskInvariance(InvarianceShare):
    """A behavioural rule on a multiclass class's probability or a regression's value."""

    watched: str  # the number that must move: "value" or "probability[<class>]"


class TaskMetrics(Frozen):
    """metrics/metrics.json of a multiclass or regression model (binary writes `Metrics`)."""

    task: Literal["multiclass", "regression"]
    n: int
    level: float
    headline: str
    classes: list[Any]
    metrics: dict[str, Estimate]
    baseline: TaskBaseline
    slices: dict[str, TaskSlice]
    fairness: dict[str, TaskFairness]
    invariances: dict[str, TaskInvariance]


class CheckResult(Frozen):
    """One judged value: what it is, the bound, and whether it passed."""

    id: str
    value: float
    bound: float
    op: Literal[">=", "<=", ">"]
    passed: bool
    judged: float  # the number compared with the bound: the value or an end of its interval
    interval: tuple[float, float] | None = None
    subject: str | None = None  # the slice, attribute or rule the check looked at
    hint: str = ""
    key: str = ""  # where the bound is set: the one place to edit to move it


class GateReport(Frozen):
    """metrics/gate.json, written by `gate`, read by `promote` and `gate --markdown`."""

    passed: bool
    judge_on: JudgeOn
    checks: list[CheckResult]


class Comparison(Frozen):
    """The paired test of challenger against champion on the same rows (`stats.compare`)."""

    metric: str
    challenger: float | None
    champion: float | None
    diff: float | None
    low: float | None
    high: float | None
    min_delta: float
    alpha: float
    statistic: float | None
    p_value: float | None
    method: str
    n: int
    se: float | None
    significant: bool


class Evidence(Frozen):
    """What the decision rests on: the data, the commit and the evaluated metrics."""

    data_sha256: str | None
    git_commit: str | None
    metrics: dict[str, Estimate]


class CardRef(Frozen):
    """Where the model card is: an artifact of the registered version."""

    version: str
    artifact: str


class Promotion(Frozen):
    """metrics/promotion.json, written by `promote`, read by the workflow's deploy decision."""

    challenger: str | None
    champion: str | None
    dry_run: bool
    decision: Decision
    reason: str
    version: str | None = None  # set when promoted
    comparison: Comparison | None = None
    minimum_detectable_delta: float | None = None  # includes min_delta
    minimum_detectable_delta_power: float | None = None  # the chance it is promoted
    model: str
    evidence: Evidence
    model_card: CardRef | None = None
    registry: str | None = None  # the registry asked (no credentials): the record is its answer
    compared_only: str | None = None  # why no alias could move here, and how to promote instead
    experiment: str | None = None  # the DVC experiment this ran in: compared, never promoted
    override: str | None = None  # the reason given for moving a shared alias from a non-release


R = TypeVar("R", bound=Frozen)


def read_record(path: str | Path, kind: type[R]) -> R:
    """Read and check a record file; DataError naming the file and each bad field."""
    path = Path(path)
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise DataError(f"{path}: not found; run the stage that writes it (dvc repro)") from None
    except json.JSONDecodeError as error:
        raise DataError(f"{path}: not valid JSON: {error}") from None
    return parse(kind, raw, f"{path}: not a valid {kind.__name__} record", DataError)


def write_record(path: str | Path, record: Frozen) -> Path:
    """Write a record atomically, indented, non-finite numbers as null."""
    return write_json(path, record.model_dump())
