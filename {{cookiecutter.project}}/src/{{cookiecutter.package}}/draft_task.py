"""`make contract` for a multiclass or regression target: the task said, gates and promotion
drafted relative to what needs no model (mean/median predictor, class prior/majority, the best
single feature), and params.yaml's `task` set."""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np
import pandas as pd

from .config import TASK_LOSSES, PromotionConfig, Task
from .contract import Contract
from .data import conform
from .errors import ConfigError
from .model import estimators
from .task_pipeline import task_data
from .tasks.table import TASKS

# The linear model of one task named for another: a project baked with one changes to the other
# when `make contract` finds the other task (model.py's ESTIMATORS / REGRESSORS).
LINEAR_COUNTERPART = {"logistic_regression": "ridge", "ridge": "logistic_regression"}
NON_INFERIORITY = 0.10  # the model may trail the best single feature by this share of its loss
RELATIVE_MIN_DELTA = 0.005  # of the constant predictor's loss: a gain smaller is no gain
RELATIVE_DETECTABLE = 0.05  # of the same: refuse comparisons that cannot see a gain this large


@dataclass(frozen=True)
class DraftedTaskParams:
    """The `gates:` and `promotion:` sections (comments included) and a line for the terminal."""

    gates: str
    promotion: str
    summary: str


def _number(value: float) -> str:
    return f"{value:.6g}"


def draft_task_params(df: pd.DataFrame, contract: Contract, task: Task) -> DraftedTaskParams:
    """Gates and promotion for this table, measured on all its rows."""
    frame = conform(df, contract)
    X, y, classes = task_data(frame, contract, task)
    stats_ = TASKS[task]
    headline = stats_.headline
    constants = stats_.baselines(y, len(y), classes)
    constant_name, constant = next(iter(constants.items()))  # mean / prior
    feature, single = stats_.single_feature(X, y, classes)
    constant_loss = float(stats_.row_loss(y, constant).mean())
    feature_loss = float(stats_.row_loss(y, single).mean())
    margin = NON_INFERIORITY * feature_loss
    scores = {
        name: stats_.metrics(y, values, classes, level=0.95, resamples=200, seed=0)
        for name, values in {**constants, "single": single}.items()
    }
    if task == "regression":
        median_mae = float(np.abs(y - np.median(y)).mean())
        bounds = (
            "  min:\n"
            "    r2: 0.0                  # R² 0 is the mean predictor: the model must beat it\n"
            "  max:\n"
            f"    rmse: {_number(scores['mean']['rmse'].value)}  # the mean predictor's RMSE\n"
            f"    mae: {_number(median_mae)}  # the median predictor's MAE\n"
            "  max_slice: null            # RMSE on every judged slice (none drafted)\n"
        )
        fairness = "    max_disparity: 1.25      # error ratio: worst group's MAE / best group's\n"
        unit = "squared target units"
    else:
        majority_f1 = scores["majority"]["macro_f1"].value
        prior_ll = scores["prior"]["log_loss"].value
        bounds = (
            "  min:\n"
            f"    macro_f1: {_number(majority_f1)}  # the majority class's macro-F1\n"
            "  max:\n"
            f"    log_loss: {_number(prior_ll)}  # the class prior's log loss\n"
            "  min_slice: null            # macro-F1 on every judged slice (none drafted)\n"
        )
        fairness = "    max_disparity: 0.20      # recall gap: widest spread of a class's recall\n"
        unit = "log loss"
    gates = (
        "gates:\n"
        f"  # Drafted by `make contract` for a {task} target from {len(y)} rows: each bound is what\n"
        f"  # needs no model ({constant_name} predictor; best single feature `{feature}`, mean\n"
        f"  # {stats_.compared} {_number(feature_loss)}), judged on the whole 95% interval.\n"
        "  judge_on: whole_interval\n"
        + bounds
        + "  # The model's mean loss must not exceed the best single feature's by more than the\n"
        f"  # margin ({NON_INFERIORITY:.0%} of that feature's loss): paired on the same holdout rows.\n"
        "  beat_baseline: true\n"
        f"  baseline_margin: {_number(margin)}\n"
        "  fairness:                  # per `protected` attribute of contract.yaml (none drafted)\n"
        + fairness
        + "\n"
    )
    promotion = (
        "promotion:\n"
        f"  metric: {TASK_LOSSES[task]}      # the paired t-test on per-row loss\n"
        f"  # in {unit}: {RELATIVE_MIN_DELTA:.1%} and {RELATIVE_DETECTABLE:.0%} of the "
        f"{constant_name} predictor's mean loss ({_number(constant_loss)})\n"
        f"  min_delta: {_number(RELATIVE_MIN_DELTA * constant_loss)}\n"
        "  alpha: 0.05\n"
        "  bootstrap_resamples: 2000\n"
        "  seed: 13\n"
        "  min_class_count: 30\n"
        f"  max_detectable_delta: {_number(RELATIVE_DETECTABLE * constant_loss)}\n"
        "\n"
    )
    summary = (
        f"{headline} of the {constant_name} predictor {_number(scores[constant_name][headline].value)}, "
        f"of the best single feature ({feature}) {_number(scores['single'][headline].value)}; "
        "judged on 95% intervals"
    )
    return DraftedTaskParams(gates, promotion, summary)


def with_task(params_text: str, task: Task) -> str:
    """params.yaml text with its top-level `task:` set (added above `data:` if missing)."""
    updated, count = re.subn(r"(?m)^task: .*$", f'task: "{task}"', params_text, count=1)
    if count:
        return updated
    if not re.search(r"(?m)^data:", params_text):
        raise ConfigError("params.yaml: no `data:` section to put `task:` above")
    return re.sub(r"(?m)^data:", f'task: "{task}"\n\ndata:', params_text, count=1)


def with_section(params_text: str, name: str, section: str) -> str:
    """params.yaml text with one top-level section replaced (appended if it has none)."""
    updated, count = re.subn(
        rf"(?ms)^{name}:[^\n]*\n.*?(?=^\S|\Z)", lambda _: section, params_text, count=1
    )
    return updated if count else f"{params_text.rstrip()}\n\n{section}"


def with_model_kind(params_text: str, task: Task) -> tuple[str, str | None]:
    """params.yaml text whose `model.kind` fits the task, and a note if it had to change.

    Only the linear model changes (logistic_regression <-> ridge): the tree ensembles have an
    estimator for every task.
    """
    found = re.search(r"(?m)^  kind: \"?([A-Za-z0-9_]+)\"?", params_text)
    if found is None or found.group(1) in estimators(task):
        return params_text, None
    kind = found.group(1)
    other = LINEAR_COUNTERPART.get(kind)
    if other is None or other not in estimators(task):
        return params_text, None  # parse_config then names the kinds that fit
    start, end = found.span(1)
    note = f"model.kind {kind} has no {task} estimator: set to {other}, its {task} counterpart"
    return params_text[:start] + other + params_text[end:], note


def with_task_params(
    params_text: str, df: pd.DataFrame, contract: Contract, task: Task
) -> tuple[str, str]:
    """params.yaml text for a multiclass or regression table (`task`, `gates`, `promotion`),
    and the terminal's summary line."""
    drafted = draft_task_params(df, contract, task)
    text = with_section(with_task(params_text, task), "gates", drafted.gates)
    return with_section(text, "promotion", drafted.promotion), drafted.summary


def with_binary_promotion(params_text: str) -> str:
    """params.yaml text whose `promotion` compares binary models: a project baked for another
    task gets config.py's defaults (ROC AUC by DeLong) in place of its loss-based section."""
    found = re.search(
        r"(?m)^  metric: \"?([A-Za-z0-9_]+)", params_text.split("\npromotion:", 1)[-1]
    )
    if found is None or found.group(1) not in TASK_LOSSES.values():
        return params_text
    lines = [f"  {key}: {value}" for key, value in PromotionConfig().model_dump().items()]
    section = "promotion:  # config.py's defaults for a binary model\n" + "\n".join(lines) + "\n\n"
    return with_section(params_text, "promotion", section)
