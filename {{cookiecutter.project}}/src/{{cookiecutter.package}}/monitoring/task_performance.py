"""`performance` for a multiclass or regression model: delayed labels against its evaluation.

The same join and the same drop rule as a binary model's (`performance.py`), on the task's
headline metric (`tasks.TASKS[task].headline`: RMSE, macro-F1) through
`tasks.realised_performance`. Predictions come from `make score` outputs (a `value` column, or
one `probability_<class>` column per class) or the servers' prediction logs (`value`, or
`probabilities`), as the task's prediction columns; labels are the target as the table writes
it (numbers, or the class names).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from ..config import Config, Task
from ..contract import Contract
from ..data import load_table, read_log_lines
from ..errors import DataError
from ..records import Estimate
from ..registry import Registry, RegistryError
from ..stats import Interval
from ..tasks import TASKS, realised_performance, slice_report
from ..tasks.multiclass import encode
from ..tasks.outputs import probability_column
from ..tasks.stage_reports import MIN_SLICE_CLASS_ROWS


def prediction_columns(task: Task, classes: Sequence[Any]) -> list[str]:
    """The columns `make score` writes the task's prediction in (what this reads back)."""
    if task == "multiclass":
        return [probability_column(str(c)) for c in classes]
    return ["value"]


def _log_frame(path: Path, contract: Contract, task: Task, classes: Sequence[Any]) -> pd.DataFrame:
    """A prediction log's records as `make score`'s columns (probabilities spread out)."""
    records, _ = read_log_lines(path)
    frame = pd.DataFrame.from_records(records).rename(columns={"id": contract.id})
    if task == "multiclass" and "probabilities" in frame.columns:
        spread = pd.DataFrame(frame.pop("probabilities").tolist(), index=frame.index)
        frame[[probability_column(str(c)) for c in spread.columns]] = spread
    return frame


def read_task_predictions(
    paths: list[Path], contract: Contract, task: Task, classes: Sequence[Any]
) -> tuple[pd.DataFrame, int]:
    """(id, model_version, the prediction columns), a row's last prediction per version kept;
    and how many repeats were dropped."""
    columns = ["model_version", *prediction_columns(task, classes)]
    frames = []
    for path in paths:
        is_log = ".jsonl" in path.suffixes
        frame = _log_frame(path, contract, task, classes) if is_log else load_table(path)
        if is_log and frame.empty:  # a server that has answered nothing yet
            continue
        missing = [c for c in (contract.id, *columns) if c not in frame.columns]
        if missing:
            raise DataError(
                f"{path}: not a {task} prediction file; missing columns {missing} "
                f"(`make score` with this project's champion writes them)"
            )
        frames.append(frame[[contract.id, *columns]])
    if not frames:
        raise DataError(f"no predictions in {', '.join(map(str, paths))}: nothing was scored yet")
    types = {contract.id: "str", "model_version": "str"} | dict.fromkeys(columns[1:], "float64")
    table = pd.concat(frames, ignore_index=True).astype(types)
    unique = table.drop_duplicates([contract.id, "model_version"], keep="last")
    return unique.reset_index(drop=True), len(table) - len(unique)


def task_targets(
    labels: pd.DataFrame, contract: Contract, task: Task, classes: Sequence[Any], path: Path
) -> pd.DataFrame:
    """(id, y): a regression's numbers, or class codes in the contract's class order."""
    target = labels[contract.target]
    try:
        if task == "multiclass":
            y: Any = encode(target.astype(str).to_numpy(), [str(c) for c in classes])
        else:
            y = pd.to_numeric(target, errors="raise").astype("float64").to_numpy()
    except ValueError as error:
        raise DataError(f"{path}: column {contract.target!r}: {error}") from None
    return pd.DataFrame({contract.id: labels[contract.id], "y": y})


def evaluated_metric(registry: Registry, version: str, metric: str) -> Interval | None:
    """The metric (with interval) `evaluate` measured for a version, as promote tagged it."""
    try:
        recorded = registry.get_version(version).tags.get(metric)
    except RegistryError:
        return None
    if not recorded:
        return None
    entry = Estimate.model_validate_json(recorded)
    if entry.value is None or entry.low is None or entry.high is None:
        return None
    return Interval(entry.value, entry.low, entry.high, entry.method)


def judge_task_version(
    rows: pd.DataFrame,
    reference: Interval | None,
    config: Config,
    contract: Contract,
    classes: Sequence[Any],
) -> dict[str, Any]:
    """The realised headline metric of one version, and whether it dropped significantly."""
    task = config.task
    stats = TASKS[task]
    metric = stats.headline
    y = rows["y"].to_numpy()
    prediction = rows[prediction_columns(task, classes)].to_numpy()
    # a (rows, classes) matrix, or one column: a 1-D prediction
    prediction = prediction if stats.outputs.columns(classes) else prediction[:, 0]
    entry: dict[str, Any] = {"n": len(y), "metric": metric}
    settings, evaluate = config.performance, config.evaluate
    short = stats.too_small(y, MIN_SLICE_CLASS_ROWS, classes)
    if len(y) < settings.min_labels or short:
        entry["judged"] = False
        entry["reason"] = (
            f"too few labels to judge: {len(y)} rows (performance.min_labels is "
            f"{settings.min_labels})" + (f"; {short}" if short else "")
        )
        return entry
    level, resamples, seed = evaluate.level, evaluate.bootstrap_resamples, evaluate.bootstrap_seed
    realised = stats.metrics(y, prediction, classes, level=level, resamples=resamples, seed=seed)
    entry |= {"judged": True, "metrics": {n: i.to_dict() for n, i in realised.items()}}
    if contract.slices and set(contract.slice_columns) <= set(rows.columns):
        masks = {name: contract.slice_mask(rows, name) for name in contract.slices}
        entry["slices"] = slice_report(task, y, prediction, masks, classes, level=level,
                                       min_rows=evaluate.min_slice_size, resamples=resamples,
                                       seed=seed)  # fmt: skip
    if reference is None:
        entry["drop"] = {"status": "no_reference", "reason": f"no evaluated {metric} recorded"}
        return entry
    entry["drop"] = realised_performance(
        task, y, prediction, reference, classes, metric=metric, min_delta=settings.min_delta,
        alpha=settings.alpha, level=level, resamples=resamples, seed=seed,
    )  # fmt: skip
    return entry


def task_entries(
    joined: pd.DataFrame,
    predictions: pd.DataFrame,
    contract: Contract,
    config: Config,
    registry: Registry,
    classes: Sequence[Any],
) -> dict[str, Any]:
    """Each model version's judged entry, as `performance_report` lists them."""
    versions: dict[str, Any] = {}
    metric = TASKS[config.task].headline
    for version, rows in joined.groupby("model_version", sort=True):
        scored = int((predictions["model_version"] == version).sum())
        reference = evaluated_metric(registry, str(version), metric)
        judged = judge_task_version(rows, reference, config, contract, classes)
        versions[str(version)] = {"scored": scored, "coverage": len(rows) / scored, **judged}
    return versions


def realised_of(entry: dict[str, Any]) -> dict[str, Any]:
    """The realised headline interval of a judged entry (binary's is ROC AUC)."""
    return dict(entry["metrics"][entry.get("metric", "roc_auc")])


def metric_label(entry: dict[str, Any]) -> str:
    """How reports name an entry's headline metric."""
    metric = str(entry.get("metric", "roc_auc"))
    return {"roc_auc": "ROC AUC"}.get(metric, metric)


def bounds_text(drop: dict[str, Any]) -> str:
    """The realised one-sided bound against the limit it is held to, whatever the task."""
    if "realised_upper" in drop:  # binary's record
        return f"upper bound {drop['realised_upper']:.4f} vs floor {drop['floor']:.4f}"
    return f"one-sided bound {drop['realised_bound']:.4f} vs limit {drop['limit']:.4f}"
