"""`performance`: realised metrics once labels arrive, compared with each version's evaluation.

This module judges a binary model's ROC AUC; a multiclass or regression model's headline
metric is judged the same way by `task_performance.py`, into the same report.

Labels (id + target) are joined by id with logged or batch predictions (id, score,
model_version). Per model version: the same metrics and intervals as `evaluate`, the drop
alarm, and slices when the scored rows' features are given. Labels for unknown ids,
duplicate labels and partial coverage are counted and reported; conflicting labels for one
id are an error that names the ids.

The alarm accounts for the reference's own uncertainty: the evaluated ROC AUC was measured
once, on one holdout, so comparing every batch with its point value makes the false-alarm
rate of a deployed model depend on that holdout's luck (20-70 % of undrifted batches for
some bakes). A batch raises the alarm when its one-sided upper bound (level 1 - alpha) is
below the evaluated interval's lower end (minus min_delta): for every model whose evaluated
interval covers its true ROC AUC, an undrifted batch alarms with chance at most alpha
(docs/canary.md, "Realised performance", has the figures measured over re-bakes).
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pandas as pd
from scipy.special import ndtri

from .. import stats
from ..artifacts import write_json, write_text
from ..config import Config, PerformanceConfig, Task, load_config
from ..contract import Contract, load_contract
from ..data import conform, load_table, read_log_lines
from ..errors import DataError
from ..evaluation import headline_metrics, slice_metrics
from ..paths import PERFORMANCE_DIR
from ..records import Estimate
from ..registry import Registry
from ..task_pipeline import classes_of
from .task_performance import (
    bounds_text,
    evaluated_metric,
    metric_label,
    read_task_predictions,
    realised_of,
    task_entries,
    task_targets,
)

PREDICTIONS = Path("predictions")  # `make score` outputs
LOGS = Path("logs")  # the servers' prediction logs (params.yaml: serve.prediction_log)
PREDICTION_COLUMNS = ("score", "model_version")
EXAMPLES = 5


def read_predictions(paths: list[Path], contract: Contract) -> tuple[pd.DataFrame, int]:
    """Every prediction (id, score, model_version) from batch outputs or prediction logs.

    A row scored more than once by the same version keeps its last score; returns the
    table and how many repeats were dropped.
    """
    if not paths:
        raise DataError(
            f"no predictions to join: run `make score DATA=...` (writes {PREDICTIONS}/) "
            "or pass PREDICTIONS=path"
        )
    frames = []
    for path in paths:
        if ".jsonl" in path.suffixes:  # the server's prediction log (serve/prediction_log.py)
            records, _ = read_log_lines(path)
            if not records:  # a server that has answered nothing yet
                continue
            frame = pd.DataFrame.from_records(records).rename(columns={"id": contract.id})
        else:
            frame = load_table(path)
        missing = [c for c in (contract.id, *PREDICTION_COLUMNS) if c not in frame.columns]
        if missing:
            raise DataError(f"{path}: not a prediction file; missing columns {missing}")
        frames.append(frame[[contract.id, *PREDICTION_COLUMNS]])
    if not frames:
        raise DataError(f"no predictions in {', '.join(map(str, paths))}: nothing was scored yet")
    table = pd.concat(frames, ignore_index=True).astype(
        {contract.id: "str", "model_version": "str", "score": "float64"}
    )
    unique = table.drop_duplicates([contract.id, "model_version"], keep="last")
    return unique.reset_index(drop=True), len(table) - len(unique)


def read_labels(
    path: Path, contract: Contract, task: Task = "binary", classes: Sequence[Any] = ()
) -> tuple[pd.DataFrame, int]:
    """Labels as (id, y); exact repeats dropped (counted), conflicting ones refused by id.

    y is 0/1 (binary), a class code in `classes`' order (multiclass) or the number.
    """
    table = load_table(path)
    missing = [c for c in (contract.id, contract.target) if c not in table.columns]
    if missing:
        raise DataError(f"{path}: missing columns {missing}; expected the id and the target")
    labels = table[[contract.id, contract.target]].astype({contract.id: "str"})
    allowed = contract.columns[contract.target].values
    if allowed is not None:
        bad = ~labels[contract.target].astype(str).isin([str(v) for v in allowed])
        if bad.any():
            raise DataError(
                f"{path}: column {contract.target!r} holds values outside {list(allowed)}, "
                f"e.g. {labels.loc[bad, contract.target].head(EXAMPLES).tolist()} at ids "
                f"{labels.loc[bad, contract.id].head(EXAMPLES).tolist()}"
            )
    unique = labels.drop_duplicates()
    conflicting = unique[contract.id][unique[contract.id].duplicated()]
    if len(conflicting):
        raise DataError(
            f"{path}: {conflicting.nunique()} id(s) have conflicting labels, e.g. "
            f"{conflicting.unique()[:EXAMPLES].tolist()}; keep one label per id"
        )
    if task != "binary":
        return task_targets(unique, contract, task, classes, path), len(labels) - len(unique)
    y = (unique[contract.target].astype(str) == str(contract.positive)).astype("int64")
    return pd.DataFrame({contract.id: unique[contract.id], "y": y}), len(labels) - len(unique)


def evaluated_auc(registry: Registry, version: str) -> stats.Interval | None:
    """The ROC AUC (with interval) that `evaluate` measured for a registered version."""
    return evaluated_metric(registry, version, "roc_auc")  # promote's tag: metrics.json's


def drop_verdict(
    realised: stats.Interval, reference: stats.Interval, level: float, settings: PerformanceConfig
) -> dict[str, Any]:
    """Drop when the batch's one-sided upper bound is below the evaluated interval's low end.

    `realised` and `reference` are two-sided intervals at `level` (the batch's standard error
    is read back from its DeLong interval).
    """
    se = (realised.high - realised.low) / (2 * float(ndtri(0.5 + level / 2)))
    upper = realised.value + float(ndtri(1 - settings.alpha)) * se
    floor = reference.low - settings.min_delta
    return {
        "status": "drop" if upper < floor else "ok",
        "evaluated": reference.to_dict(),
        "diff": realised.value - reference.value,
        "realised_upper": upper,
        "floor": floor,
        "alpha": settings.alpha,
        "rule": (
            f"drop when the realised ROC AUC's one-sided {1 - settings.alpha:.0%} upper bound "
            f"is below the evaluated interval's lower end"
            + (f" minus {settings.min_delta:g}" if settings.min_delta else "")
        ),
    }


def judge_version(
    rows: pd.DataFrame, reference: stats.Interval | None, config: Config, contract: Contract
) -> dict[str, Any]:
    """Realised metrics of one version, and whether ROC AUC dropped significantly."""
    y, scores = rows["y"].to_numpy(), rows["score"].to_numpy()
    positives = int(y.sum())
    entry: dict[str, Any] = {"n": len(y), "positives": positives}
    settings = config.performance
    if len(y) < settings.min_labels or min(positives, len(y) - positives) < 5:
        entry["judged"] = False
        entry["reason"] = (
            f"too few labels to judge: {len(y)} rows, {positives} positives "
            f"(performance.min_labels is {settings.min_labels}; 5 of each class needed)"
        )
        return entry
    entry |= {"judged": True, "metrics": headline_metrics(y, scores, config.evaluate)}
    if contract.slices and set(contract.slice_columns) <= set(rows.columns):
        entry["slices"] = slice_metrics(rows, y, scores, contract, config.evaluate)
    if reference is None:
        entry["drop"] = {"status": "no_reference", "reason": "no evaluated ROC AUC recorded"}
        return entry
    realised = entry["metrics"]["roc_auc"]
    current = stats.Interval(realised["value"], realised["low"], realised["high"], "delong")
    entry["drop"] = drop_verdict(current, reference, config.evaluate.level, settings)
    return entry


def binary_entries(
    joined: pd.DataFrame,
    predictions: pd.DataFrame,
    contract: Contract,
    config: Config,
    registry: Registry,
) -> dict[str, Any]:
    """Each model version's judged entry on its ROC AUC."""
    versions: dict[str, Any] = {}
    for version, rows in joined.groupby("model_version", sort=True):
        scored = int((predictions["model_version"] == version).sum())
        judged = judge_version(rows, evaluated_auc(registry, str(version)), config, contract)
        versions[str(version)] = {"scored": scored, "coverage": len(rows) / scored, **judged}
    return versions


def performance_report(
    predictions: pd.DataFrame,
    labels: pd.DataFrame,
    contract: Contract,
    config: Config,
    registry: Registry,
    features: pd.DataFrame | None = None,
) -> dict[str, Any]:
    """Join, then judge each model version that has labelled predictions."""
    joined = predictions.merge(labels, on=contract.id, how="inner")
    if features is not None:
        joined = joined.merge(features, on=contract.id, how="left")
    unknown = labels[~labels[contract.id].isin(predictions[contract.id])][contract.id]
    if config.task == "binary":
        versions = binary_entries(joined, predictions, contract, config, registry)
    else:  # the task's headline metric (task_performance.py)
        classes = classes_of(contract, config.task)
        versions = task_entries(joined, predictions, contract, config, registry, classes)
    drops = [v for v, e in versions.items() if e.get("drop", {}).get("status") == "drop"]
    return {
        "status": "drop" if drops else ("ok" if versions else "no_overlap"),
        "dropped_versions": drops,
        "labels": len(labels),
        "unknown_ids": {"count": len(unknown), "examples": unknown.head(EXAMPLES).tolist()},
        "versions": versions,
    }


def summary_lines(report: dict[str, Any]) -> list[str]:
    """One line per version, then what could not be joined."""
    lines = []
    for version, entry in report["versions"].items():
        head = f"v{version}: {entry['n']} labelled of {entry['scored']} scored ({entry['coverage']:.0%})"
        if not entry["judged"]:
            lines.append(f"{head}; {entry['reason']}")
            continue
        auc, name = realised_of(entry), metric_label(entry)
        line = f"{head}; realised {name} {auc['value']:.4f} [{auc['low']:.4f}, {auc['high']:.4f}]"
        drop = entry["drop"]
        if drop["status"] == "no_reference":
            line += f"; {drop['reason']}"
        else:
            verdict = "DROP" if drop["status"] == "drop" else "no significant drop"
            line += (
                f" vs evaluated {drop['evaluated']['value']:.4f}: {verdict} ({bounds_text(drop)})"
            )
        lines.append(line)
    if report["unknown_ids"]["count"]:
        unknown = report["unknown_ids"]
        lines.append(
            f"{unknown['count']} label(s) match no prediction (e.g. ids {unknown['examples']}); "
            "they were left out"
        )
    if report["status"] == "no_overlap":
        lines.append("no label matches a prediction: check that both files use the same ids")
    return lines


def batch_history(out_dir: Path, current: str) -> list[tuple[str, dict[str, Any]]]:
    """Earlier batches' reports in `out_dir` (not `current`), oldest first, by name."""
    found = []
    for path in out_dir.glob("*.json"):
        if path.stem == current:
            continue
        try:
            report = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError):
            continue  # not one of ours, or being written: the chart goes without it
        if isinstance(report, dict) and isinstance(report.get("versions"), dict):
            when = str(
                report.get("generated_at")
                or datetime.fromtimestamp(path.stat().st_mtime, UTC).isoformat()
            )
            found.append((when, path.stem, report))
    return [(name, report) for _, name, report in sorted(found, key=lambda f: f[0])]


def _realised(entry: dict[str, Any]) -> tuple[float, float, float] | None:
    if not entry.get("judged"):
        return None
    auc = realised_of(entry)
    return float(auc["value"]), float(auc["low"]), float(auc["high"])


def _chart(
    version: str,
    entry: dict[str, Any],
    history: Sequence[tuple[str, dict[str, Any]]],
    batch: str,
) -> dict[str, Any] | None:
    """This version's realised headline metric per batch over time, over its evaluated interval."""
    points = []
    for name, report in [*history, (batch, {"versions": {version: entry}})]:
        realised = _realised(report["versions"].get(version, {}))
        if realised is not None:
            points.append([name, *realised])
    if not points:
        return None
    evaluated = entry.get("drop", {}).get("evaluated")
    band = None if not evaluated else [evaluated["value"], evaluated["low"], evaluated["high"]]
    return {"points": points, "band": band, "y_label": metric_label(entry)}


def render_html(
    report: dict[str, Any],
    history: Sequence[tuple[str, dict[str, Any]]] = (),
    batch: str = "this batch",
) -> str:
    """One offline page: per version a table, its ROC AUC per batch over time against the
    evaluated interval, and one table of its slices."""
    from ..reports.model_report import interval_text
    from ..reports.pages import render_model_report

    sections = []
    for version, entry in report["versions"].items():
        if not entry["judged"]:
            sections.append({"title": f"Version {version}", "text": entry["reason"]})
            continue
        rows = [[metric, m["value"], interval_text(Estimate.model_validate(m)), m.get("method", "")]
                for metric, m in entry["metrics"].items()]  # fmt: skip
        section: dict[str, Any] = {
            "title": f"Version {version}: {entry['n']} labelled rows ({entry['coverage']:.0%})",
            "table": {"columns": ["metric", "value", "interval", "method"], "rows": rows},
        }
        name, metric = metric_label(entry), entry.get("metric", "roc_auc")
        if entry["drop"]["status"] != "no_reference":
            drop = entry["drop"]
            section["text"] = (
                f"Evaluated {name} {drop['evaluated']['value']:.4f} "
                f"[{drop['evaluated']['low']:.4f}, {drop['evaluated']['high']:.4f}]; realised "
                f"minus evaluated {drop['diff']:+.4f}; {drop['status']}: {drop['rule']} "
                f"({bounds_text(drop)})"
            )
        sections.append(section)
        chart = _chart(version, entry, history, batch)
        if chart is not None:
            sections.append(
                {"title": f"Version {version}: realised {name} per batch", "intervals": chart}
            )
        slices = entry.get("slices", {})
        if slices:
            slice_rows = [
                [slice_name, s["n"], s[metric]["value"] if s.get("judged") else s.get("reason", ""),
                 interval_text(Estimate.model_validate(s[metric]) if s.get("judged") else None)]
                for slice_name, s in slices.items()
            ]  # fmt: skip
            sections.append({"title": f"Version {version}: slices",
                             "table": {"columns": ["slice", "rows", name, "interval"], "rows": slice_rows}})  # fmt: skip
    return render_model_report(
        {
            "title": "Realised performance",
            "verdict": report["status"],
            "subtitle": f"{report['labels']} labels; "
            f"{report['unknown_ids']['count']} matched no prediction",
            "sections": sections,
        },
        generator="make performance",
    )


def main(argv: list[str] | None = None) -> int:
    """Join labels with predictions by id; report realised metrics against the evaluation."""
    parser = argparse.ArgumentParser(prog="performance", description=main.__doc__)
    parser.add_argument("--labels", type=Path, required=True, help="CSV/Parquet: id and target")
    parser.add_argument(
        "--predictions", type=Path, nargs="*", help="default: predictions/*.parquet, logs/*.jsonl*"
    )
    parser.add_argument("--data", type=Path, help="the scored rows' features, for slices")
    parser.add_argument("--notify", action="store_true", help="repository_dispatch on a drop")
    parser.add_argument("--contract", type=Path, default=Path("contract.yaml"))
    parser.add_argument("--out", type=Path, default=PERFORMANCE_DIR)
    args = parser.parse_args(argv)
    contract, config = load_contract(args.contract), load_config()
    paths = args.predictions or [
        *sorted(PREDICTIONS.glob("*.parquet")),
        *sorted(LOGS.glob("*.jsonl*")),
    ]
    task, classes = config.task, classes_of(contract, config.task)
    if task == "binary":
        predictions, repeats = read_predictions(paths, contract)
    else:
        predictions, repeats = read_task_predictions(paths, contract, task, classes)
    labels, duplicates = read_labels(args.labels, contract, task, classes)
    features = None
    if args.data is not None:
        columns = [contract.id, *contract.slice_columns]
        features = conform(load_table(args.data), contract, columns=columns)
        features = features.astype({contract.id: "str"}).drop_duplicates(contract.id)
    report = performance_report(predictions, labels, contract, config, Registry(), features)
    report |= {"repeated_predictions": repeats, "duplicate_labels": duplicates,
               "labels_file": str(args.labels),
               "generated_at": datetime.now(UTC).isoformat(timespec="seconds")}  # fmt: skip
    json_path = args.out / f"{args.labels.stem}.json"
    history = batch_history(args.out, args.labels.stem)
    write_json(json_path, report)
    write_text(json_path.with_suffix(".html"), render_html(report, history, args.labels.stem))
    for line in summary_lines(report):
        print(f"performance: {line}")
    print(f"performance: report {json_path.with_suffix('.html')}")
    if args.notify and report["status"] == "drop":
        from .notify import notify

        payload = {"status": "performance_drop", "versions": report["dropped_versions"],
                   "report": str(json_path)}  # fmt: skip
        print(f"performance: {notify(payload, config.drift.notify_cooldown_hours).message}")
    return 0
