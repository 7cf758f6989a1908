"""HTML reports for people: one offline page per report, rendered from the JSON report's dict.

Templates are the `*.html` files beside this module; they are plain Jinja2 with every
value escaped, styles inline and charts as inline SVG, so a page opens from disk anywhere.
"""

from __future__ import annotations

import json
from functools import lru_cache
from importlib import resources
from typing import Any

from . import svg

MAX_TEXT = 160


def _short(value: Any) -> str:
    """A value as compact text, cut to a readable length."""
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.4g}"
    text = value if isinstance(value, str) else json.dumps(value, default=str)
    return text if len(text) <= MAX_TEXT else text[: MAX_TEXT - 1] + "…"


def _share(value: Any) -> str:
    return "-" if value is None else f"{float(value):.1%}"


@lru_cache(maxsize=1)
def _environment() -> Any:
    import jinja2
    from markupsafe import Markup

    def load(name: str) -> str:
        return (resources.files(__package__) / name).read_text(encoding="utf-8")

    env = jinja2.Environment(
        loader=jinja2.FunctionLoader(load),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["short"] = _short
    env.filters["share"] = _share
    # the SVG helpers escape every label themselves, so their output is safe markup
    env.globals["paired_bars"] = lambda *a, **k: Markup(svg.paired_bars(*a, **k))  # noqa: S704
    env.globals["line_chart"] = lambda *a, **k: Markup(svg.line_chart(*a, **k))  # noqa: S704
    env.globals["interval_chart"] = lambda *a, **k: Markup(svg.interval_chart(*a, **k))  # noqa: S704
    return env


def render(template: str, **context: Any) -> str:
    """Render one template from `reports/` with the given values."""
    page: str = _environment().get_template(template).render(**context)
    return page


def render_validation(report: dict[str, Any]) -> str:
    """The validation page: summary, failures, every expectation with observed value and verdict."""
    return render("validation.html", report=report, title=f"Validation: {report.get('file')}")


def render_drift(report: dict[str, Any]) -> str:
    """The drift page: verdict, the PSI table (worst first), reference vs current per feature."""
    return render("drift.html", report=report, title=f"Drift: {report.get('data', '')}")


def render_model_report(report: dict[str, Any], generator: str | None = None) -> str:
    """A generic report page from a dict (see `reports/model_report.html` for the keys);
    `generator` is the command that wrote it, named in the footer."""
    extra = {} if generator is None else {"generator": generator}
    return render(
        "model_report.html", report=report, title=report.get("title", "Model report"), **extra
    )
