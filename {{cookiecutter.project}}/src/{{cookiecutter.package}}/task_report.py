"""The model card (Markdown) and the model report (HTML) of a multiclass or regression model.

Both say only what metrics/metrics.json says, so the numbers in them cannot drift from it.
"""

from __future__ import annotations

import html
from typing import Any

from .contract import Contract
from .records import Estimate, TaskMetrics


def interval_text(entry: Estimate | None) -> str:
    if entry is None or entry.value is None:
        return "n/a"
    if entry.low is None or entry.high is None:
        return f"{entry.value:.4f}"
    return f"{entry.value:.4f} [{entry.low:.4f}, {entry.high:.4f}]"


def _rows(metrics: TaskMetrics) -> list[tuple[str, str, str]]:
    """(section, name, value) for every number the card and the report show."""
    rows = [("Evaluation", name, interval_text(entry)) for name, entry in metrics.metrics.items()]
    base = metrics.baseline
    rows += [
        ("Baselines", f"{name} predictor: {base.headline}", interval_text(entry))
        for name, entry in base.constants.items()
    ]
    rows.append(
        ("Baselines", f"best single feature ({base.single_feature}): {base.headline}",
         interval_text(base.single_feature_headline))
    )  # fmt: skip
    rows.append(("Baselines", f"gain over it in mean {base.compared}", interval_text(base.gain)))
    for name, entry in metrics.slices.items():
        shown = interval_text(entry.headline) if entry.judged else (entry.reason or "not judged")
        rows.append(("Slices", f"{name} (n={entry.n}): {metrics.headline}", shown))
    for attribute, fair in metrics.fairness.items():
        rows.append(
            ("Fairness", f"{attribute}: {fair.measure} (parity {fair.parity:g}; {fair.contrast})",
             interval_text(fair.disparity))
        )  # fmt: skip
    for name, rule in metrics.invariances.items():
        rows.append(
            ("Behaviour", f"{name}: {rule.watched} {rule.direction}s when {rule.column} "
             f"goes {rule.change[0]!r} -> {rule.change[1]!r}",
             f"{rule.share:.1%} of rows (required {rule.min_share:.0%})")
        )  # fmt: skip
    return rows


def render_card(metrics: TaskMetrics, meta: dict[str, Any], contract: Contract) -> str:
    """The model card: use, data, model, every measured number with its interval, limits."""
    level = f"{metrics.level:.0%}"
    lines = [
        f"# Model card: {contract.name} ({metrics.task})",
        "",
        "## Intended use",
        "",
        f"Predicts `{contract.target}` ({metrics.task}"
        + (f": classes {', '.join(map(str, metrics.classes))}" if metrics.classes else "")
        + f") from {len(contract.feature_columns)} columns of contract `{contract.name}`.",
        "",
        "## Training data",
        "",
        f"{meta.get('rows', {}).get('train', '?')} training rows, "
        f"{metrics.n} holdout rows; data sha256 `{meta.get('data_sha256', '?')}`.",
        "",
        "## Model",
        "",
        f"`{meta.get('model_kind', '?')}` with {meta.get('model_params', {})}; "
        f"commit `{meta.get('git_commit')}`.",
    ]
    section = ""
    for where, name, value in _rows(metrics):
        if where != section:
            section = where
            lines += ["", f"## {section} ({level} intervals)", "", "| | |", "|---|---|"]
        lines.append(f"| {name} | {value} |")
    lines += [
        "",
        "## Limitations",
        "",
        "Measured on one holdout drawn from the same table as the training rows: new "
        "populations, new values and a moved target are not covered. Slices too small to "
        "judge are listed, not judged.",
        "",
        "## Environment",
        "",
        ", ".join(f"{k} {v}" for k, v in sorted(meta.get("versions", {}).items())) or "n/a",
        "",
    ]
    return "\n".join(lines)


def render_report(metrics: TaskMetrics, contract: Contract) -> str:
    """A self-contained HTML page with the same numbers as the card."""
    body = []
    section = ""
    for where, name, value in _rows(metrics):
        if where != section:
            if section:
                body.append("</table>")
            section = where
            body.append(f"<h2>{html.escape(section)}</h2><table>")
        body.append(f"<tr><td>{html.escape(name)}</td><td>{html.escape(value)}</td></tr>")
    body.append("</table>")
    title = html.escape(f"Model report: {contract.name} ({metrics.task})")
    return (
        f"<!doctype html><html><head><meta charset='utf-8'><title>{title}</title>"
        "<style>body{font-family:sans-serif;margin:2em}td{padding:2px 12px}</style></head>"
        f"<body><h1>{title}</h1>"
        f"<p>{metrics.n} holdout rows; intervals at {metrics.level:.0%}.</p>"
        + "".join(body)
        + "</body></html>\n"
    )
