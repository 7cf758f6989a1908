"""Calibration of the paired champion/challenger test for every task, by simulation.

Bakes the template and drives the baked package's own code (`tasks.TASKS[task].paired_test`
and `paired_loss.detectability_refusal`, through `testing.task_simulation`). For each task:
the false-promotion rate of two equal models and at the null's edge (true improvement exactly
`min_delta`), which must stay at or below alpha; the power at two true effects beyond
`min_delta` (half and one minimum detectable delta, where the normal theory predicts about
0.34 and 0.80); and the refusal rate of a holdout too small to detect the delta. Every rate
comes with its Monte Carlo standard error. Run `python bench/bench_tasks.py [--smoke]`.
"""

from __future__ import annotations

import argparse
import importlib
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

from scipy.special import ndtr, ndtri

from harness import figure, table

ROOT = Path(__file__).resolve().parent.parent
ALPHA = 0.05
SEED = 20261207
# (task, tails, min_delta in the compared metric's units): regression compares mean squared
# error (the challenger's is 0.25), multiclass log loss in nats, binary ROC AUC.
SCENARIOS = (
    ("regression", "normal", 0.025),
    ("regression", "t5", 0.025),
    ("multiclass", "normal", 0.01),
    ("binary", "normal", 0.005),
)


@dataclass(frozen=True)
class Sizes:
    """How much simulation each figure gets."""

    comparisons: int = 4000
    holdout_rows: int = 1000
    small_rows: int = 100  # a holdout too small to detect the delta
    population_rows: int = 100_000


SMOKE = Sizes(comparisons=100, holdout_rows=300, small_rows=30, population_rows=10_000)


def load_simulation(workdir: Path) -> ModuleType:
    """Bake the template with its defaults and import the baked package's simulation module."""
    from cookiecutter.main import cookiecutter

    project = Path(cookiecutter(str(ROOT), no_input=True, output_dir=str(workdir)))
    package = next(p.parent.name for p in (project / "src").glob("*/tasks.py"))
    sys.path.insert(0, str(project / "src"))
    try:
        return importlib.import_module(f"{package}.testing.task_simulation")
    finally:
        sys.path.remove(str(project / "src"))


def _rate(name: str, rates: Any, what: str) -> dict[str, Any]:
    mc = f"Monte Carlo se {rates.promoted_se:.4f} over {rates.comparisons} comparisons"
    return figure(name, rates.promoted, "share", f"{what}; {mc}")


def task_figures(sim: ModuleType, task: str, tails: str, min_delta: float, sizes: Sizes) -> list:
    """Level at two null edges, power at two effects, and refusal, for one task."""
    label = f"tasks.{task}" + ("" if tails == "normal" else f"_{tails}")
    rows, n, seed = sizes.holdout_rows, sizes.comparisons, SEED

    def pop(noise: float) -> Any:
        return sim.population(task, noise, seed, tails, sizes.population_rows)

    def noise_for(improvement: float) -> float:
        return sim.champion_noise_for(task, improvement, seed, tails, sizes.population_rows)

    equal = pop(sim.CHALLENGER_NOISE)
    equal_truth = sim.true_improvement(equal)
    equal_rates = sim.promotion_rates(equal, rows, n, equal_truth, seed + 1, ALPHA)
    edge = pop(noise_for(min_delta))
    edge_truth = sim.true_improvement(edge)
    edge_rates = sim.promotion_rates(edge, rows, n, edge_truth, seed + 2, ALPHA)
    mde = edge_rates.mean_mde
    figures = [
        _rate(
            f"{label}.false_promotion_equal",
            equal_rates,
            f"two equal models, min_delta at the population's true difference "
            f"{equal_truth:.2e}; {rows} rows; must be <= alpha {ALPHA}",
        ),
        _rate(
            f"{label}.false_promotion_edge",
            edge_rates,
            f"challenger truly better by exactly min_delta {edge_truth:.4g}; {rows} rows; "
            f"must be <= alpha {ALPHA}",
        ),
    ]
    for multiple in (0.5, 1.0):
        effect_pop = pop(noise_for(edge_truth + multiple * mde))
        effect = sim.true_improvement(effect_pop) - edge_truth
        rates = sim.promotion_rates(effect_pop, rows, n, edge_truth, seed + 3, ALPHA)
        predicted = float(ndtr(effect / rates.mean_se - ndtri(1 - ALPHA)))
        figures.append(
            _rate(
                f"{label}.power_{multiple:g}_mde",
                rates,
                f"true improvement min_delta + {effect:.4g} ({multiple:g} x the minimum "
                f"detectable delta {mde:.4g}); normal theory predicts {predicted:.3f}",
            )
        )
    # The refusal: a holdout whose MDE is above max_detectable_delta never decides.
    limit = 2 * mde
    small = sim.promotion_rates(edge, sizes.small_rows, n, edge_truth, seed + 4, ALPHA, limit)
    full = sim.promotion_rates(edge, rows, n, edge_truth, seed + 5, ALPHA, limit)
    figures.append(
        figure(
            f"{label}.refused_small_holdout",
            small.refused,
            "share",
            f"{sizes.small_rows}-row holdouts with max_detectable_delta {limit:.4g} (2 x the "
            f"{rows}-row MDE): refused; {rows}-row holdouts refused {full.refused:.3f}",
        )
    )
    return figures


def run(workdir: Path, smoke: bool = False) -> list[dict[str, Any]]:
    """Return the calibration figures of every task's paired test."""
    sizes = SMOKE if smoke else Sizes()
    sim = load_simulation(workdir)
    figures = []
    for task, tails, min_delta in SCENARIOS:
        figures += task_figures(sim, task, tails, min_delta, sizes)
    return figures


def main(argv: list[str] | None = None) -> int:
    """Print the figures (`--smoke`: tiny sizes, to check it runs)."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--smoke", action="store_true", help="tiny sizes: does it still run?")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        print(table(run(Path(tmp), args.smoke)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
