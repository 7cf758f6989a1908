"""The gate stage: small named checks over metrics.json; any failure stops the pipeline."""

from __future__ import annotations

import argparse
import math
import sys
from collections.abc import Callable, Iterator
from typing import Literal

from ..config import GatesConfig, TaskGatesConfig, load_config
from ..errors import ConfigError, RefusedError
from ..paths import GATE, METRICS
from ..records import CheckResult as Result
from ..records import Estimate, GateReport, Metrics, TaskMetrics, read_record, write_record

Op = Literal[">=", "<=", ">"]
Gates = GatesConfig
CheckFn = Callable[[Metrics, Gates], Iterator[Result]]
CHECKS: dict[str, CheckFn] = {}


def check(fn: CheckFn) -> CheckFn:
    """Register a check; its id is the function name, its fix hint the docstring."""
    CHECKS[fn.__name__] = fn
    return fn


def _judge(
    id_: str,
    entry: Estimate,
    bound: float,
    op: Op,
    gates: Gates | TaskGatesConfig,
    subject: str | None = None,
    key: str | None = None,
) -> Result:
    """Compare a metric with its bound, on what `gates.judge_on` says to judge.

    `point`: the estimate. `lower_bound`: the pessimistic end of the interval (the model must
    show it meets the bound). `whole_interval`: the optimistic end (a gate fails only when the
    whole interval is on the wrong side, so a model that truly meets the bound fails with
    probability at most (1 - evaluate.level) / 2).
    """
    value, low, high = math.nan if entry.value is None else entry.value, entry.low, entry.high
    mode = gates.judge_on if low is not None and high is not None else "point"
    upper_end = (mode == "lower_bound") == (op == "<=")
    end = high if upper_end else low
    judged = value if mode == "point" or end is None else end
    passed = {">=": judged >= bound, ">": judged > bound, "<=": judged <= bound}[op]
    interval = (float(low), float(high)) if low is not None and high is not None else None
    hint = ((CHECKS.get(id_) or TASK_CHECKS[id_]).__doc__ or "").strip()
    key = key or f"params.yaml: gates.{id_}"
    return Result(
        id=id_, value=value, bound=bound, op=op, passed=passed, judged=judged,
        interval=interval, subject=subject, hint=hint, key=key,
    )  # fmt: skip


def _bound(gates: Gates, name: str) -> float | None:
    """A gate's bound, or None when it is null: that gate is off."""
    value = getattr(gates, name)
    return None if value is None else float(value)


def _metric_gate(id_: str, metric: str, op: Op, metrics: Metrics, gates: Gates) -> Iterator[Result]:
    bound = _bound(gates, id_)
    if bound is not None:
        yield _judge(id_, metrics.metrics[metric], bound, op, gates)


@check
def auc_roc(metrics: Metrics, gates: Gates) -> Iterator[Result]:
    """ROC AUC too low: improve features or the model, or check the data for label noise."""
    yield from _metric_gate("auc_roc", "roc_auc", ">=", metrics, gates)


@check
def precision_at_5pct(metrics: Metrics, gates: Gates) -> Iterator[Result]:
    """Top-5% precision too low: the highest scores are not reliable enough to act on."""
    yield from _metric_gate("precision_at_5pct", "precision_at_5pct", ">=", metrics, gates)


@check
def min_lift_at_5pct(metrics: Metrics, gates: Gates) -> Iterator[Result]:
    """The top 5% scores are not enough richer in positives than the prevalence: the ranking barely beats random."""
    yield from _metric_gate("min_lift_at_5pct", "lift_at_5pct", ">=", metrics, gates)


@check
def max_fpr_at_recall_80(metrics: Metrics, gates: Gates) -> Iterator[Result]:
    """Too many false alarms at 80% recall: the model separates classes poorly at that operating point."""
    yield from _metric_gate("max_fpr_at_recall_80", "fpr_at_recall_80", "<=", metrics, gates)


@check
def min_slice_auc(metrics: Metrics, gates: Gates) -> Iterator[Result]:
    """A slice is served badly: inspect it in the model report; add data or features for it."""
    bound = _bound(gates, "min_slice_auc")
    for name, entry in metrics.slices.items():
        if entry.judged and entry.roc_auc is not None and bound is not None:
            yield _judge("min_slice_auc", entry.roc_auc, bound, ">=", gates, name)


@check
def beat_baseline(metrics: Metrics, gates: Gates) -> Iterator[Result]:
    """Not shown better than the best single feature (paired ROC AUC gain; within gates.baseline_margin): check the pipeline for a bug, or add signal."""
    if gates.beat_baseline:
        baseline = metrics.baseline
        bound = 0.0 - gates.baseline_margin  # not -0.0, which prints as "-0.0000"
        yield _judge("beat_baseline", baseline.auc_gain, bound, ">", gates, baseline.name)


@check
def min_disparate_impact(metrics: Metrics, gates: Gates) -> Iterator[Result]:
    """Groups of a protected attribute get positive predictions at very different rates: review features and threshold."""
    bound = gates.fairness.min_disparate_impact
    key = "params.yaml: gates.fairness.min_disparate_impact"
    for attribute, entry in metrics.fairness.items():
        yield _judge(
            "min_disparate_impact", entry.disparate_impact, bound, ">=", gates, attribute, key
        )


@check
def max_equalized_odds_gap(metrics: Metrics, gates: Gates) -> Iterator[Result]:
    """Error rates differ across groups of a protected attribute: review features and training data."""
    bound = gates.fairness.max_equalized_odds_gap
    key = "params.yaml: gates.fairness.max_equalized_odds_gap"
    for attribute, entry in metrics.fairness.items():
        yield _judge(
            "max_equalized_odds_gap",
            entry.equalized_odds_gap,
            bound,
            "<=",
            gates,
            attribute,
            key,
        )


@check
def invariance(metrics: Metrics, gates: Gates) -> Iterator[Result]:
    """The model contradicts a behaviour the contract requires: look for leakage or a wrong feature encoding."""
    for name, entry in metrics.invariances.items():
        key = f"contract.yaml: invariances ({name}).min_share"
        share = Estimate(value=entry.share)
        yield _judge("invariance", share, entry.min_share, ">=", gates, name, key)


def run_checks(metrics: Metrics, gates: Gates) -> list[Result]:
    """Every registered check, in registration order."""
    return [result for fn in CHECKS.values() for result in fn(metrics, gates)]


# --------------------------------------------------------------------------- other tasks
# A multiclass or regression model's checks: the same judging (_judge) on TaskMetrics.
TaskCheckFn = Callable[[TaskMetrics, TaskGatesConfig], Iterator[Result]]
TASK_CHECKS: dict[str, TaskCheckFn] = {}


def task_check(fn: TaskCheckFn) -> TaskCheckFn:
    """Register a multiclass/regression check; its id is the name, its fix hint the docstring."""
    TASK_CHECKS[fn.__name__] = fn
    return fn


def _metric(metrics: TaskMetrics, name: str, key: str) -> Estimate:
    if name not in metrics.metrics:
        raise ConfigError(
            f"params.yaml: {key}: evaluate reports no {name!r} for this {metrics.task} model; "
            f"it reports {', '.join(metrics.metrics)}"
        )
    return metrics.metrics[name]


@task_check
def min_metric(metrics: TaskMetrics, gates: TaskGatesConfig) -> Iterator[Result]:
    """A metric is below its bound: improve features or the model, or check the data for label noise."""
    for name, bound in gates.min.items():
        if bound is not None:
            key = f"params.yaml: gates.min.{name}"
            yield _judge("min_metric", _metric(metrics, name, key), bound, ">=", gates, name, key)


@task_check
def max_metric(metrics: TaskMetrics, gates: TaskGatesConfig) -> Iterator[Result]:
    """An error metric is above its bound: improve features or the model, or check the data for label noise."""
    for name, bound in gates.max.items():
        if bound is not None:
            key = f"params.yaml: gates.max.{name}"
            yield _judge("max_metric", _metric(metrics, name, key), bound, "<=", gates, name, key)


@task_check
def slice_headline(metrics: TaskMetrics, gates: TaskGatesConfig) -> Iterator[Result]:
    """A slice is served badly: inspect it in the model report; add data or features for it."""
    for op, bound, key in (
        (">=", gates.min_slice, "min_slice"),
        ("<=", gates.max_slice, "max_slice"),
    ):
        if bound is None:
            continue
        for name, entry in metrics.slices.items():
            if entry.judged and entry.headline is not None:
                where = f"params.yaml: gates.{key}"
                yield _judge("slice_headline", entry.headline, bound, op, gates, name, where)  # type: ignore[arg-type]  # op is one of the two literals


@task_check
def beat_single_feature(metrics: TaskMetrics, gates: TaskGatesConfig) -> Iterator[Result]:
    """Not shown better than the best single feature (paired gain in per-row loss; within gates.baseline_margin): check the pipeline for a bug, or add signal."""
    if gates.beat_baseline:
        baseline = metrics.baseline
        bound = 0.0 - gates.baseline_margin
        key = "params.yaml: gates.baseline_margin"
        yield _judge(
            "beat_single_feature", baseline.gain, bound, ">", gates, baseline.single_feature, key
        )


@task_check
def max_disparity(metrics: TaskMetrics, gates: TaskGatesConfig) -> Iterator[Result]:
    """Groups of a protected attribute are served very differently (error ratio or recall gap): review features and training data."""
    bound = gates.fairness.max_disparity
    key = "params.yaml: gates.fairness.max_disparity"
    if bound is not None:
        for attribute, entry in metrics.fairness.items():
            yield _judge("max_disparity", entry.disparity, bound, "<=", gates, attribute, key)


@task_check
def task_invariance(metrics: TaskMetrics, gates: TaskGatesConfig) -> Iterator[Result]:
    """The model contradicts a behaviour the contract requires: look for leakage or a wrong feature encoding."""
    for name, entry in metrics.invariances.items():
        key = f"contract.yaml: invariances ({name}).min_share"
        share = Estimate(value=entry.share)
        yield _judge("task_invariance", share, entry.min_share, ">=", gates, name, key)


def run_task_checks(metrics: TaskMetrics, gates: TaskGatesConfig) -> list[Result]:
    """Every multiclass/regression check, in registration order."""
    return [result for fn in TASK_CHECKS.values() for result in fn(metrics, gates)]


def to_markdown(report: GateReport) -> str:
    """The gate report as Markdown, for a CI job summary."""
    verdict = "passed" if report.passed else "FAILED"
    lines = [
        f"## Model gate: {verdict}",
        "",
        "| check | subject | value | interval | bound | verdict |",
        "|---|---|---|---|---|---|",
    ]
    for r in report.checks:
        interval = f"[{r.interval[0]:.4f}, {r.interval[1]:.4f}]" if r.interval else ""
        mark = "pass" if r.passed else "**fail**"
        lines.append(
            f"| {r.id} | {r.subject or ''} | {r.value:.4f} | {interval} | {r.op} {r.bound:.4f} | {mark} |"
        )
    failed = [r for r in report.checks if not r.passed]
    if failed:
        lines += ["", "### How to fix", ""] + [f"- **{r.id}**: {fix(r)}" for r in failed]
    return "\n".join(lines) + "\n"


def fix(result: Result) -> str:
    """How to fix a failed check, and the exact key that sets its bound."""
    return f"{result.hint} Or, if the bound is wrong for your data, edit {result.key}."


def _judged_as(result: Result) -> str:
    """What was compared with the bound: the estimate, or which end of its interval."""
    if result.interval is None or result.judged == result.value:
        return "estimate"
    low, high = result.interval
    end = "lower" if result.judged == low else "upper"
    return f"{end} end of [{low:.4f}, {high:.4f}] (gates.judge_on); estimate {result.value:.4f}"


def describe(result: Result) -> str:
    """One line for the terminal, a true statement: what was required and what was found.

    A failure names the key that sets its bound.
    """
    about = f" [{result.subject}]" if result.subject else ""
    judged = f"{result.judged:.4f}"
    how = _judged_as(result)
    if result.passed:
        return f"pass {result.id}{about}: {judged} {result.op} {result.bound:.4f} ({how})"
    return (
        f"FAIL {result.id}{about}: required {result.op} {result.bound:.4f}, found {judged} "
        f"({how}) (bound: {result.key})"
    )


def main(argv: list[str] | None = None) -> int:
    """Judge metrics.json against params.yaml `gates`; write gate.json; fail on any failed check."""
    parser = argparse.ArgumentParser(prog="gate", description=main.__doc__)
    parser.add_argument(
        "--markdown", action="store_true", help="print gate.json as Markdown and exit"
    )
    args = parser.parse_args(argv)
    if args.markdown:
        print(to_markdown(read_record(GATE, GateReport)), end="")
        return 0
    config = load_config()
    gates = config.gates
    if config.task == "binary":
        results = run_checks(read_record(METRICS, Metrics), config.gates)  # type: ignore[arg-type]  # Config checks binary gates are GatesConfig
    else:
        results = run_task_checks(read_record(METRICS, TaskMetrics), config.task_gates)
    passed = all(r.passed for r in results)
    write_record(GATE, GateReport(passed=passed, judge_on=gates.judge_on, checks=results))
    for result in results:
        print(f"gate: {describe(result)}", file=sys.stdout if result.passed else sys.stderr)
    if not passed:
        failed = [r for r in results if not r.passed]
        fixes = "".join(
            f"\n  - {r.id}{f' [{r.subject}]' if r.subject else ''}: {fix(r)}" for r in failed
        )
        raise RefusedError(f"{len(failed)} of {len(results)} checks failed; see {GATE}{fixes}")
    print(f"gate: all {len(results)} checks passed")
    return 0
