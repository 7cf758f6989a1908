"""The gate stage: small named checks over metrics.json; any failure stops the pipeline."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from .artifacts import read_json, write_json
from .params import load_params, require

METRICS = Path("metrics/metrics.json")
GATE = Path("metrics/gate.json")


@dataclass(frozen=True)
class Result:
    """One judged value: what it is, the bound, and whether it passed."""

    id: str
    value: float
    bound: float
    op: str  # ">=", "<=" or ">"
    passed: bool
    judged: float  # the number compared with the bound: the value or an end of its interval
    interval: tuple[float, float] | None = None
    subject: str | None = None  # the slice, attribute or rule the check looked at
    hint: str = ""


Metrics = dict[str, Any]
Gates = dict[str, Any]
CheckFn = Callable[[Metrics, Gates], Iterator[Result]]
CHECKS: dict[str, CheckFn] = {}


def check(fn: CheckFn) -> CheckFn:
    """Register a check; its id is the function name, its fix hint the docstring."""
    CHECKS[fn.__name__] = fn
    return fn


def _judge(
    id_: str, entry: dict[str, Any], bound: float, op: str, gates: Gates, subject: str | None = None
) -> Result:
    """Compare a metric with its bound on the point estimate or the pessimistic interval end."""
    value, low, high = float(entry["value"]), entry.get("low"), entry.get("high")
    pessimistic = gates.get("judge_on", "point") == "lower_bound" and low is not None
    if op == "<=":
        judged = float(high) if pessimistic else value
        passed = judged <= bound
    else:
        judged = float(low) if pessimistic else value
        passed = judged > bound if op == ">" else judged >= bound
    interval = (float(low), float(high)) if low is not None and high is not None else None
    hint = (CHECKS[id_].__doc__ or "").strip()
    return Result(id_, value, bound, op, passed, judged, interval, subject, hint)


@check
def auc_roc(metrics: Metrics, gates: Gates) -> Iterator[Result]:
    """ROC AUC too low: improve features or the model, or check the data for label noise."""
    yield _judge("auc_roc", metrics["metrics"]["roc_auc"], float(gates["auc_roc"]), ">=", gates)


@check
def precision_at_5pct(metrics: Metrics, gates: Gates) -> Iterator[Result]:
    """Top-5% precision too low: the highest scores are not reliable enough to act on."""
    entry = metrics["metrics"]["precision_at_5pct"]
    yield _judge("precision_at_5pct", entry, float(gates["precision_at_5pct"]), ">=", gates)


@check
def max_fpr_at_recall_80(metrics: Metrics, gates: Gates) -> Iterator[Result]:
    """Too many false alarms at 80% recall: the model separates classes poorly at that operating point."""
    entry = metrics["metrics"]["fpr_at_recall_80"]
    yield _judge("max_fpr_at_recall_80", entry, float(gates["max_fpr_at_recall_80"]), "<=", gates)


@check
def min_slice_auc(metrics: Metrics, gates: Gates) -> Iterator[Result]:
    """A slice is served badly: inspect it in the model report; add data or features for it."""
    for name, entry in metrics["slices"].items():
        if entry.get("judged"):
            yield _judge(
                "min_slice_auc", entry["roc_auc"], float(gates["min_slice_auc"]), ">=", gates, name
            )


@check
def beat_baseline(metrics: Metrics, gates: Gates) -> Iterator[Result]:
    """No better than a single feature: the model adds nothing; check the pipeline for a bug."""
    if gates.get("beat_baseline", True):
        bound = float(metrics["baseline"]["roc_auc"]["value"])
        yield _judge(
            "beat_baseline",
            metrics["metrics"]["roc_auc"],
            bound,
            ">",
            gates,
            metrics["baseline"]["name"],
        )


@check
def min_disparate_impact(metrics: Metrics, gates: Gates) -> Iterator[Result]:
    """Groups of a protected attribute get positive predictions at very different rates: review features and threshold."""
    bound = float(gates.get("fairness", {}).get("min_disparate_impact", 0.8))
    for attribute, entry in metrics["fairness"].items():
        yield _judge(
            "min_disparate_impact", entry["disparate_impact"], bound, ">=", gates, attribute
        )


@check
def max_equalized_odds_gap(metrics: Metrics, gates: Gates) -> Iterator[Result]:
    """Error rates differ across groups of a protected attribute: review features and training data."""
    bound = float(gates.get("fairness", {}).get("max_equalized_odds_gap", 0.1))
    for attribute, entry in metrics["fairness"].items():
        yield _judge(
            "max_equalized_odds_gap", entry["equalized_odds_gap"], bound, "<=", gates, attribute
        )


@check
def invariance(metrics: Metrics, gates: Gates) -> Iterator[Result]:
    """The model contradicts a behaviour the contract requires: look for leakage or a wrong feature encoding."""
    for name, entry in metrics["invariances"].items():
        yield _judge(
            "invariance", {"value": entry["share"]}, float(entry["min_share"]), ">=", gates, name
        )


def run_checks(metrics: Metrics, gates: Gates) -> list[Result]:
    """Every registered check, in registration order."""
    return [result for fn in CHECKS.values() for result in fn(metrics, gates)]


def to_markdown(report: dict[str, Any]) -> str:
    """The gate report as Markdown, for a CI job summary."""
    verdict = "passed" if report["passed"] else "FAILED"
    lines = [
        f"## Model gate: {verdict}",
        "",
        "| check | subject | value | interval | bound | verdict |",
        "|---|---|---|---|---|---|",
    ]
    for r in report["checks"]:
        interval = f"[{r['interval'][0]:.4f}, {r['interval'][1]:.4f}]" if r["interval"] else ""
        mark = "pass" if r["passed"] else "**fail**"
        lines.append(
            f"| {r['id']} | {r['subject'] or ''} | {r['value']:.4f} | {interval} | {r['op']} {r['bound']:.4f} | {mark} |"
        )
    failed = [r for r in report["checks"] if not r["passed"]]
    if failed:
        lines += ["", "### How to fix", ""] + [f"- **{r['id']}**: {r['hint']}" for r in failed]
    return "\n".join(lines) + "\n"


def describe(result: Result) -> str:
    """One line for the terminal."""
    about = f" [{result.subject}]" if result.subject else ""
    verdict = "pass" if result.passed else "FAIL"
    return f"{verdict:4} {result.id}{about}: {result.judged:.4f} {result.op} {result.bound:.4f}"


def main(argv: list[str] | None = None) -> int:
    """Judge metrics.json against params.yaml `gates`; write gate.json; fail on any failed check."""
    parser = argparse.ArgumentParser(prog="gate", description=main.__doc__)
    parser.add_argument(
        "--markdown", action="store_true", help="print gate.json as Markdown and exit"
    )
    args = parser.parse_args(argv)
    if args.markdown:
        print(to_markdown(read_json(GATE)), end="")
        return 0
    gates = require(load_params(), "gates", dict)
    results = run_checks(read_json(METRICS), gates)
    passed = all(r.passed for r in results)
    write_json(
        GATE,
        {
            "passed": passed,
            "judge_on": gates.get("judge_on", "point"),
            "checks": [asdict(r) for r in results],
        },
    )
    for result in results:
        print(f"gate: {describe(result)}", file=sys.stdout if result.passed else sys.stderr)
    if not passed:
        failed = [r for r in results if not r.passed]
        print(f"gate: {len(failed)} of {len(results)} checks failed; see {GATE}", file=sys.stderr)
        for r in failed:
            print(f"  - {r.id}: {r.hint}", file=sys.stderr)
        return 1
    print(f"gate: all {len(results)} checks passed")
    return 0
