"""params.yaml, typed: one pydantic model per section, the single place each default lives.

Every stage calls `load_config()` once. Unknown keys and impossible values are refused with
a `ConfigError` that names the key, the value and what is allowed, so a typo never falls
back silently to a default. The shipped params.yaml and these defaults agree (a template
test compares them).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import (
    ConfigDict,
    Field,
    ValidationInfo,
    ValidatorFunctionWrapHandler,
    field_validator,
    model_validator,
)

from . import model as user_model
from .errors import ConfigError
from .paths import PARAMS
from .typed import Frozen, parse

# What the model predicts: a class of two (binary), one of several (multiclass), or a number
# (regression). `tasks.TASKS[task]` holds everything that differs by task.
Task = Literal["binary", "multiclass", "regression"]


class DataConfig(Frozen):
    """Where the raw table is and how the sample generator sizes it."""

    raw: str
    sample_rows: int = Field(8000, ge=100)
    seed: int = 20240601


class SplitConfig(Frozen):
    """The holdout: a seeded hash of the id, so rows stay put as new ones arrive."""

    test_size: float = Field(0.3, gt=0, lt=1)
    seed: int = 42


class ModelConfig(Frozen):
    """Which estimator to train (a name in model.py's ESTIMATORS) and the settings of each.

    The shipped estimators' settings have their defaults here; an estimator you add to
    model.py takes its settings from a params.yaml section of its own name.
    """

    model_config = ConfigDict(extra="allow", frozen=True)

    kind: str
    hist_gradient_boosting: dict[str, Any] = Field(
        default_factory=lambda: {
            "max_iter": 200,
            "learning_rate": 0.05,
            "max_leaf_nodes": 15,
            "l2_regularization": 1.0,
        }
    )
    random_forest: dict[str, Any] = Field(
        default_factory=lambda: {
            "n_estimators": 200,
            "max_depth": 10,
            "min_samples_leaf": 5,
            "n_jobs": 1,
        }
    )
    logistic_regression: dict[str, Any] = Field(
        default_factory=lambda: {"C": 1.0, "max_iter": 1000}
    )
    seed: int = 7

    @field_validator("kind")
    @classmethod
    def _known_kind(cls, kind: str) -> str:
        if kind not in user_model.ESTIMATORS and kind not in user_model.REGRESSORS:
            known = ", ".join(user_model.ESTIMATORS)
            raise ValueError(f"model.py's ESTIMATORS has {known}; add yours there first")
        return kind

    @model_validator(mode="after")
    def _sections_are_estimators(self) -> ModelConfig:
        for name, value in (self.model_extra or {}).items():
            if name not in user_model.ESTIMATORS and name not in user_model.REGRESSORS:
                known = ", ".join({**user_model.ESTIMATORS, **user_model.REGRESSORS})
                raise ValueError(
                    f"model.{name}: not an estimator in model.py's ESTIMATORS ({known}), "
                    "nor seed (a typo?)"
                )
            if not isinstance(value, dict):
                raise ValueError(f"model.{name}: expected a mapping of settings, got {value!r}")
        return self

    def hyperparameters(self) -> dict[str, Any]:
        """The settings of the chosen estimator ({} when params.yaml gives none)."""
        section = getattr(self, self.kind, None)
        if section is None:
            section = (self.model_extra or {}).get(self.kind, {})
        return dict(section)


class EvaluateConfig(Frozen):
    """Confidence intervals, slices and the decision threshold."""

    level: float = Field(0.95, gt=0, lt=1)
    bootstrap_resamples: int = Field(1000, ge=100)
    bootstrap_seed: int = 11
    min_slice_size: int = Field(50, ge=1)
    threshold: float = Field(0.5, gt=0, lt=1)
    extra_metrics: tuple[str, ...] = ("average_precision", "brier")

    @field_validator("extra_metrics")
    @classmethod
    def _known_metrics(cls, names: tuple[str, ...]) -> tuple[str, ...]:
        from .stats import METRICS

        unknown = [name for name in names if name not in METRICS]
        if unknown:
            raise ValueError(f"unknown metric {unknown}; allowed: {sorted(METRICS)}")
        return names


class FairnessConfig(Frozen):
    """Bounds on group fairness across the contract's protected attributes."""

    min_disparate_impact: float = Field(0.8, ge=0, le=1)
    max_equalized_odds_gap: float = Field(0.15, ge=0, le=1)


class GatesConfig(Frozen):
    """Bounds a model must meet before it may be compared with the champion; null turns one off."""

    # whole_interval: fail only on evidence (see gate._judge); the paired promotion test,
    # not the gate, is where a model must prove it is better
    judge_on: Literal["point", "lower_bound", "whole_interval"] = "whole_interval"
    auc_roc: float | None = Field(0.8, ge=0, le=1)
    precision_at_5pct: float | None = Field(0.5, ge=0, le=1)
    min_lift_at_5pct: float | None = Field(None, ge=0)
    max_fpr_at_recall_80: float | None = Field(0.3, ge=0, le=1)
    min_slice_auc: float | None = Field(0.7, ge=0, le=1)
    beat_baseline: bool = True
    # how far the model's ROC AUC may trail the best single feature's (non-inferiority);
    # 0 demands a gain. `make contract` drafts it from what the holdout can detect.
    baseline_margin: float = Field(0.0, ge=0, le=1)
    fairness: FairnessConfig = FairnessConfig()


class TaskFairnessConfig(Frozen):
    """The bound on group disparity for a multiclass or regression model."""

    # regression: the error ratio (worst group's MAE / best group's, parity 1);
    # multiclass: the widest gap in a class's recall between groups (parity 0)
    max_disparity: float | None = Field(None, ge=0)


class TaskGatesConfig(Frozen):
    """Bounds for a multiclass or regression model, relative to what needs no model.

    `min` and `max` bound any metric evaluate reports for the task (metrics/metrics.json:
    `metrics`), by name; `max_slice` bounds the headline metric (regression: rmse, multiclass:
    macro_f1 from below, via `min_slice`) on every judged slice.
    """

    judge_on: Literal["point", "lower_bound", "whole_interval"] = "whole_interval"
    min: dict[str, float | None] = Field(default_factory=dict)
    max: dict[str, float | None] = Field(default_factory=dict)
    min_slice: float | None = None  # headline metrics where higher is better (macro_f1)
    max_slice: float | None = None  # headline metrics where lower is better (rmse)
    # the paired gain in the compared loss over the best single feature must exceed -margin
    beat_baseline: bool = True
    baseline_margin: float = Field(0.0, ge=0)
    fairness: TaskFairnessConfig = TaskFairnessConfig()


# the loss each non-binary task's paired test compares (tasks.TASKS[task].compared)
TASK_LOSSES = {"multiclass": "log_loss", "regression": "squared_error"}


class PromotionConfig(Frozen):
    """The paired test that decides whether the challenger replaces the champion."""

    metric: str = "roc_auc"
    min_delta: float = Field(0.005, ge=0)
    alpha: float = Field(0.05, gt=0, lt=1)
    bootstrap_resamples: int = Field(2000, ge=100)
    seed: int = 13
    min_class_count: int = Field(30, ge=1)
    max_detectable_delta: float = Field(0.05, gt=0)

    @field_validator("metric")
    @classmethod
    def _known_metric(cls, name: str) -> str:
        from .stats import METRICS

        allowed = sorted(METRICS) + sorted(set(TASK_LOSSES.values()))
        if name not in allowed:
            raise ValueError(f"unknown metric {name!r}; allowed: {allowed}")
        return name


class DriftConfig(Frozen):
    """PSI drift limits for validate, drift-check and served traffic."""

    psi_threshold: float = Field(0.2, gt=0)
    on_drift: Literal["warn", "fail"] = "warn"
    bins: int = Field(10, ge=2)
    psi_floor: float = Field(1e-4, gt=0, lt=1)
    max_unseen_share: float = Field(0.01, ge=0, le=1)
    max_null_increase: float = Field(0.05, ge=0, le=1)
    min_rows: int = Field(200, ge=1)
    notify_cooldown_hours: float = Field(24.0, ge=0)

    def limits(self) -> dict[str, float]:
        """The numeric limits the comparison reads."""
        return self.model_dump(exclude={"on_drift", "bins", "notify_cooldown_hours"})


class PerformanceConfig(Frozen):
    """Realised performance once labels arrive: when a drop from the evaluation counts."""

    alpha: float = Field(0.05, gt=0, lt=0.5)
    min_delta: float = Field(0.0, ge=0)
    min_labels: int = Field(200, ge=10)


# --------------------------------------------------------------------------- delivery


class Shadow(Frozen):
    """Mirror live traffic to the canary before it gets any; compare the answers."""

    enabled: bool = True
    duration_s: float = Field(6.0, ge=0)
    sample: float = Field(1.0, gt=0, le=1)
    queue: int = Field(256, ge=1)
    # a copy slower than this is given up and counted as slow; more than 1% slow copies
    # fails the shadow phase, so it must be at least guardrails.max_p99_ms
    timeout_ms: float = Field(250.0, gt=0)
    max_disagreement: float = Field(0.2, ge=0, le=1)
    # a regression's two values disagree when further apart than this share of the primary's
    # (of tolerance_floor, in target units, when the primary's is nearer zero)
    relative_tolerance: float = Field(0.05, ge=0)
    tolerance_floor: float = Field(0.0, ge=0)


class Step(Frozen):
    """One canary weight and how long to watch it."""

    weight: int = Field(ge=0, le=100)
    pause_s: float = Field(ge=0)


class Analysis(Frozen):
    """How often each engine looks, how much evidence it needs, and how it counts."""

    interval_s: float = Field(0.25, gt=0)
    # requests a step needs before it can pass (see docs/canary.md for what 200 can see)
    min_requests: int = Field(200, ge=1)
    # how long a step short of min_requests after its pause keeps waiting for traffic
    # (local delivery; Argo Rollouts judges a step at the end of its pause)
    max_wait_s: float = Field(180.0, ge=0)
    # 4xx are the caller's mistake: left out of the judged requests, or counted as answered
    client_errors: Literal["excluded", "ok"] = "excluded"
    # repeated looks at a step: sequential and bonferroni both keep the step's false-fail
    # rate at a limit to alpha (sequential with the smaller z: each window holds the last)
    correction: Literal["sequential", "bonferroni", "none"] = "sequential"


class Guardrails(Frozen):
    """Absolute limits on the canary."""

    max_error_rate: float = Field(0.05, ge=0, le=1)
    max_p99_ms: float = Field(250.0, gt=0)


class Relative(Frozen):
    """Limits on the canary relative to stable over the same window."""

    max_error_rate_increase: float = Field(0.02, ge=0, le=1)
    max_p99_ratio: float = Field(2.0, ge=1)
    p99_floor_ms: float = Field(25.0, ge=0)
    alpha: float = Field(0.01, gt=0, lt=1)


class Inconclusive(Frozen):
    """What a step still short of its requests after `analysis.max_wait_s` does."""

    policy: Literal["rollback", "promote"] = "rollback"


class Loadgen(Frozen):
    """The load generator that gives a laptop canary traffic to judge."""

    enabled: bool = True
    rps: float = Field(150.0, gt=0)
    concurrency: int = Field(4, ge=1)


class Rollout(Frozen):
    """The whole rollout spec."""

    shadow: Shadow = Shadow()
    steps: tuple[Step, ...]
    analysis: Analysis = Analysis()
    guardrails: Guardrails = Guardrails()
    relative: Relative = Relative()
    inconclusive: Inconclusive = Inconclusive()
    loadgen: Loadgen = Loadgen()

    @model_validator(mode="after")
    def _ends_at_full_weight(self) -> Rollout:
        weights = [s.weight for s in self.steps]
        if not weights or weights[-1] != 100:
            raise ValueError("steps must end with weight 100")
        if weights != sorted(weights):
            raise ValueError(f"step weights must not decrease: {weights}")
        if self.shadow.timeout_ms < self.guardrails.max_p99_ms:
            raise ValueError(
                f"shadow.timeout_ms ({self.shadow.timeout_ms:g}) must be at least "
                f"guardrails.max_p99_ms ({self.guardrails.max_p99_ms:g}): a shadow copy cut "
                "off sooner could never show the new model as too slow"
            )
        return self


class Serve(Frozen):
    """Where the local servers listen and how much one request may carry."""

    host: str = "127.0.0.1"
    port: int = Field(8080, ge=0, le=65535)
    router_port: int = Field(8000, ge=0, le=65535)
    staging_port: int = Field(8001, ge=0, le=65535)
    max_batch: int = Field(1000, ge=1)
    max_body_bytes: int = Field(1_048_576, ge=1024)
    ready_timeout_s: float = Field(60.0, gt=0)
    # every prediction as a JSON line, one file per server process; `-` stdout, `off` none
    prediction_log: str = "logs/predictions-{variant}-{pid}.jsonl"


class Config(Frozen):
    """The whole of params.yaml."""

    task: Task = "binary"
    data: DataConfig
    split: SplitConfig = SplitConfig()
    model: ModelConfig
    evaluate: EvaluateConfig = EvaluateConfig()
    gates: GatesConfig | TaskGatesConfig = GatesConfig()
    promotion: PromotionConfig = PromotionConfig()
    drift: DriftConfig = DriftConfig()
    performance: PerformanceConfig = PerformanceConfig()
    rollout: Rollout
    serve: Serve = Serve()

    @field_validator("gates", mode="wrap")
    @classmethod
    def _gates_of_the_task(
        cls, value: Any, handler: ValidatorFunctionWrapHandler, info: ValidationInfo
    ) -> Any:
        """Read `gates` as the task's kind of gates, so an error names the right keys."""
        if isinstance(value, dict):
            task = info.data.get("task", "binary")
            value = (GatesConfig if task == "binary" else TaskGatesConfig).model_validate(value)
        return handler(value)

    @model_validator(mode="after")
    def _fits_the_task(self) -> Config:
        fits = user_model.estimators(self.task)
        if self.model.kind not in fits:
            raise ValueError(
                f"model.kind: {self.model.kind} has no {self.task} estimator in model.py; "
                f"for {self.task} choose one of {', '.join(fits)}"
            )
        if self.task == "binary":
            if self.promotion.metric in TASK_LOSSES.values():
                raise ValueError(
                    f"promotion.metric: {self.promotion.metric} is a multiclass/regression loss; "
                    "a binary model compares roc_auc or another evaluate metric"
                )
            return self
        if self.promotion.metric != TASK_LOSSES[self.task]:
            raise ValueError(
                f"promotion.metric: a {self.task} model is compared on its per-row "
                f"{TASK_LOSSES[self.task]}; got {self.promotion.metric}"
            )
        return self

    @property
    def task_gates(self) -> TaskGatesConfig:
        """The gates of a multiclass or regression project."""
        if not isinstance(self.gates, TaskGatesConfig):
            raise ConfigError(f"params.yaml: gates are binary gates, but task is {self.task}")
        return self.gates


def parse_config(raw: Any, source: str = str(PARAMS)) -> Config:
    """Validate a params mapping; ConfigError names every bad key."""
    if not isinstance(raw, dict):
        raise ConfigError(f"{source}: expected a mapping of sections at the top level")
    return parse(Config, raw, source)


def parse_rollout(raw: Any, source: str = str(PARAMS)) -> Rollout:
    """Validate a `rollout` mapping alone (tests and tools that tune one spec)."""
    return parse(Rollout, raw, source, at="rollout")


def load_config(path: str | Path = PARAMS) -> Config:
    """Read and validate params.yaml; ConfigError if it is missing, unreadable or wrong."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"{path}: not found; run the command from the project root")
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as error:
        raise ConfigError(f"{path}: not valid YAML: {error}") from None
    return parse_config(raw, str(path))
