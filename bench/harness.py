"""What every benchmark shares: the figure record, the table, running one file on its own."""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

Figure = dict[str, Any]


def figure(
    name: str,
    value: float,
    unit: str,
    note: str,
    baseline: float | None = None,
    ratio: float | None = None,
) -> Figure:
    """One measured figure; `ratio` says how many times better than `baseline` we are."""
    return {
        "name": name,
        "value": value,
        "unit": unit,
        "baseline": baseline,
        "ratio": ratio,
        "note": note,
    }


def table(figures: list[Figure]) -> str:
    """Figures as an aligned text table with their notes."""
    lines = [f"{'figure':<44} {'value':>14} {'unit':<6} {'baseline':>12} {'ratio':>8}"]
    for f in figures:
        baseline = f"{f['baseline']:,.4g}" if f.get("baseline") is not None else ""
        ratio = f"{f['ratio']:.2f}x" if f.get("ratio") is not None else ""
        lines.append(
            f"{f['name']:<44} {f['value']:>14,.4g} {f['unit']:<6} {baseline:>12} {ratio:>8}"
        )
        if f.get("note"):
            lines.append(f"    {f['note']}")
    return "\n".join(lines)


def run_standalone(run: Callable[[Path], list[Figure]]) -> int:
    """`python bench/bench_x.py`: run one benchmark in a temporary directory and print it."""
    with tempfile.TemporaryDirectory() as tmp:
        print(table(run(Path(tmp))))
    return 0
