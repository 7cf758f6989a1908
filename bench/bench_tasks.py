"""Calibration of the paired champion/challenger test for every task, by simulation.

Bakes the template and drives the baked package's own code (`tasks.TASKS[task].paired_test`
and `tasks.paired_loss.detectability_refusal`, through `testing.task_simulation`). For each task:
the false-promotion rate of two equal models and at the null's edge (true improvement exactly
`min_delta`), which must stay at or below alpha; the power at two true effects beyond
`min_delta` (half and one minimum detectable delta, where the normal theory predicts about
0.34 and 0.80); and the refusal rate of a holdout too small to detect the delta. Then the
delayed-label drop alarm (`tasks.realised_performance`): its false alarms for the evaluated
model itself and its detection of a worse one. Every rate comes with its Monte Carlo
standard error. Then the speed of the regression and multiclass intervals against a
per-resample scikit-learn loop, and last the time a multiclass and a regression server take
to answer one row (a bake of each task, its sample and default model, one OpenMP thread as the
server runs): the checked one-row shortcut against the pipeline's own predict_proba/predict.
Run `python bench/bench_tasks.py [--smoke]`.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType, SimpleNamespace
from typing import Any

import numpy as np
from scipy.special import ndtr, ndtri, softmax
from sklearn.metrics import (
    f1_score,
    log_loss,
    mean_absolute_error,
    mean_absolute_percentage_error,
    r2_score,
    recall_score,
    roc_auc_score,
    root_mean_squared_error,
)

from harness import figure, import_baked, table

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
    speed_rows: int = 100_000
    speed_resamples: int = 1000
    baseline_resamples: int = 20  # the scikit-learn loop is timed on these and scaled
    train_rows: int = 4000  # the sample rows a task's default model is trained on
    served_rows: int = 500  # single rows answered each way
    drop_comparisons: int = 1000
    drop_resamples: int = 200


SMOKE = Sizes(
    comparisons=100,
    holdout_rows=300,
    small_rows=30,
    population_rows=10_000,
    speed_rows=2000,
    speed_resamples=40,
    baseline_resamples=4,
    drop_comparisons=40,
    drop_resamples=50,
    train_rows=600,
    served_rows=20,
)


def load_package(workdir: Path) -> SimpleNamespace:
    """Bake the template with its defaults; import the baked modules this benchmark drives."""
    from cookiecutter.main import cookiecutter

    project = Path(cookiecutter(str(ROOT), no_input=True, output_dir=str(workdir)))
    package = next(p.parent.parent.name for p in (project / "src").glob("*/tasks/table.py"))
    sim, regression, multiclass = import_baked(
        project / "src",
        f"{package}.testing.task_simulation",
        f"{package}.tasks.regression",
        f"{package}.tasks.multiclass",
    )
    return SimpleNamespace(sim=sim, regression=regression, multiclass=multiclass)


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


def drop_figures(sim: ModuleType, task: str, sizes: Sizes) -> list[dict[str, Any]]:
    """The delayed-label alarm: false alarms of an unchanged model, and a true drop caught."""
    rows, n = sizes.holdout_rows, sizes.drop_comparisons
    same = sim.drop_rates(
        sim.population(task, sim.CHALLENGER_NOISE, SEED + 6, rows=sizes.population_rows),
        rows, rows, n, SEED + 7, alpha=ALPHA, resamples=sizes.drop_resamples,
    )  # fmt: skip
    worse = sim.drop_rates(
        sim.population(task, 1.0, SEED + 8, rows=sizes.population_rows),
        rows, rows, n, SEED + 9, degraded=True, alpha=ALPHA, resamples=sizes.drop_resamples,
    )  # fmt: skip
    setting = (
        f"evaluated on {rows} rows, judged on {rows} later labels, intervals from "
        f"{sizes.drop_resamples} resamples; Monte Carlo se"
    )
    return [
        figure(
            f"tasks.{task}.false_drop_alarm",
            same.dropped,
            "share",
            f"the evaluated model itself (no true drop), must be <= alpha {ALPHA} (the rule of "
            f"`make performance`: the one-sided bound against the evaluated interval's far end); "
            f"{setting} {same.dropped_se:.4f} over {n}",
        ),
        figure(
            f"tasks.{task}.drop_detected",
            worse.dropped,
            "share",
            f"a model worse by {worse.true_drop:.4g} in the headline metric; "
            f"{setting} {worse.dropped_se:.4f} over {n}",
        ),
    ]


def _seconds(call: Callable[[], object]) -> float:
    start = time.perf_counter()
    call()
    return time.perf_counter() - start


def _regression_loop(y: np.ndarray, predicted: np.ndarray, resamples: int) -> None:
    """The straightforward way: materialise each resample and call scikit-learn."""
    rng = np.random.default_rng(SEED)
    for _ in range(resamples):
        rows = rng.integers(0, y.size, y.size)
        y_b, p_b = y[rows], predicted[rows]
        root_mean_squared_error(y_b, p_b)
        mean_absolute_error(y_b, p_b)
        r2_score(y_b, p_b)
        mean_absolute_error(y_b, p_b) / np.abs(y_b).mean()
        mean_absolute_percentage_error(y_b, p_b)


def _multiclass_loop(y: np.ndarray, proba: np.ndarray, resamples: int) -> None:
    """The straightforward way: a class-stratified resample, then scikit-learn per metric."""
    rng = np.random.default_rng(SEED)
    strata = [np.flatnonzero(y == c) for c in range(proba.shape[1])]
    for _ in range(resamples):
        rows = np.concatenate([rng.choice(s, s.size) for s in strata])
        y_b, p_b = y[rows], proba[rows]
        predicted = p_b.argmax(axis=1)
        f1_score(y_b, predicted, average="macro")
        log_loss(y_b, p_b)
        roc_auc_score(y_b, p_b, multi_class="ovr")
        recall_score(y_b, predicted, average=None)


def speed_figures(package: SimpleNamespace, sizes: Sizes) -> list[dict[str, Any]]:
    """Time the vectorised intervals against a per-resample scikit-learn loop, same holdout."""
    rng = np.random.default_rng(SEED)
    n, resamples, few = sizes.speed_rows, sizes.speed_resamples, sizes.baseline_resamples
    y = 50 + 5 * rng.standard_normal(n)  # never near zero, so MAPE is reported too
    predicted = y + 3 * rng.standard_normal(n)
    codes = rng.integers(0, 5, n)
    logits = rng.standard_normal((n, 5))
    logits[np.arange(n), codes] += 1.0
    proba = softmax(logits, axis=1)
    cases = [
        ("regression", package.regression.regression_intervals, _regression_loop, (y, predicted),
         "RMSE, MAE, R², relative MAE, MAPE"),
        ("multiclass", package.multiclass.multiclass_intervals, _multiclass_loop, (codes, proba),
         "macro-F1, log loss, one-vs-rest macro AUC, accuracy, recall of each of 5 classes"),
    ]  # fmt: skip
    figures = []
    for task, fast, loop, data, metrics in cases:
        seconds = _seconds(lambda f=fast, d=data: f(*d, resamples=resamples, seed=SEED))
        baseline = _seconds(lambda lp=loop, d=data: lp(*d, few)) * resamples / few
        figures.append(
            figure(
                f"tasks.{task}_intervals",
                seconds,
                "s",
                f"{metrics}: 95% intervals from {resamples:,} resamples of {n:,} rows; baseline: "
                f"materialised resamples and scikit-learn, timed on {few} and scaled linearly",
                baseline=baseline,
                ratio=baseline / seconds,
            )
        )
    return figures


def one_row_figure(workdir: Path, task: str, sizes: Sizes) -> dict[str, Any]:
    """Bake `task` with its sample; train its default model; time one-row answers both ways."""
    from cookiecutter.main import cookiecutter
    from threadpoolctl import threadpool_limits

    project = Path(cookiecutter(str(ROOT), no_input=True, output_dir=str(workdir / task),
                                extra_context={"task": task}))  # fmt: skip
    package = next(p.parent.name for p in (project / "src").glob("*/task_pipeline.py"))
    names = ("config", "contract", "data", "model", "sample_data", "task_pipeline",
             "serve.schema", "serve.task_predictor", "rollout.loadgen")  # fmt: skip
    config, contract_m, data, model, sample, tasks, schema, served, loadgen = import_baked(
        project / "src", *(f"{package}.{name}" for name in names)
    )
    contract = contract_m.load_contract(project / "contract.yaml")
    raw = sample.generate(project / "contract.yaml", workdir / f"{task}.csv", sizes.train_rows, 1)
    table = data.conform(data.load_table(raw), contract)
    X, y, _ = tasks.task_data(table, contract, task)
    settings = config.load_config(project / "params.yaml").model
    pipeline = model.build_pipeline(
        contract, settings.kind, settings.hyperparameters(), settings.seed, task
    ).fit(X, y)
    predictor = served.TaskPredictor(pipeline, contract, task)
    assert predictor.fast is not None, predictor.fast_path_off
    request = schema.build_models(contract).row  # rows as the server parses a request body
    rows = [
        request.model_validate(r) for r in loadgen.holdout_rows(raw, contract, sizes.served_rows)
    ]
    with threadpool_limits(limits=1):
        fast = _seconds(lambda: [predictor.answer([row]) for row in rows])
        shortcut, predictor.fast = predictor.fast, None
        slow = _seconds(lambda: [predictor.answer([row]) for row in rows])
        predictor.fast = shortcut
    n = len(rows)
    return figure(
        f"tasks.{task}_one_row",
        1000 * fast / n,
        "ms",
        f"one {task} row answered by the server's predictor ({settings.kind}, {sizes.train_rows:,} "
        f"sample rows, one thread), mean of {n}; baseline: the pipeline's own "
        f"{'predict' if task == 'regression' else 'predict_proba'} on the same rows",
        baseline=1000 * slow / n,
        ratio=slow / fast,
    )


def run(workdir: Path, smoke: bool | None = None) -> list[dict[str, Any]]:
    """Return every task's calibration figures, then interval speed (`bench/run.py` entry).

    Tiny sizes with `smoke`, which defaults to BENCH_SMOKE=1 (`bench/run.py --smoke`).
    """
    if smoke is None:
        smoke = os.environ.get("BENCH_SMOKE") == "1"
    sizes = SMOKE if smoke else Sizes()
    package = load_package(workdir)
    figures = []
    for task, tails, min_delta in SCENARIOS:
        figures += task_figures(package.sim, task, tails, min_delta, sizes)
    for task in ("regression", "multiclass", "binary"):
        figures += drop_figures(package.sim, task, sizes)
    figures += speed_figures(package, sizes)
    return figures + [one_row_figure(workdir, task, sizes) for task in ("multiclass", "regression")]


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
