"""The paired champion/challenger test on per-row losses, and when a holdout cannot decide it.

Both models are scored on the same rows, so each row gives one loss difference (champion's
loss minus challenger's: positive means the challenger did better there). The mean of those
differences is the difference in mean loss (MSE, MAE or log loss), and a one-sided paired t-test
asks whether it exceeds `min_delta`. Pairing removes the rows' shared difficulty, which is most
of the variance, so it is far tighter than comparing two separate intervals.
"""

from __future__ import annotations

import math

import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy.stats import t as student_t

from ..stats import PairedComparison, minimum_detectable_delta

__all__ = ["detectability_refusal", "paired_loss_test"]

Floats = NDArray[np.float64]


def _losses(values: ArrayLike, name: str, n: int | None = None) -> Floats:
    try:
        loss = np.asarray(values, dtype=np.float64)
    except (TypeError, ValueError) as err:
        raise ValueError(f"{name} must be numeric per-row losses: {err}") from None
    if loss.ndim != 1 or loss.size < 2:
        raise ValueError(f"{name} must be a 1-D array of at least 2 rows; got shape {loss.shape}")
    if n is not None and loss.size != n:
        raise ValueError(f"{name} has {loss.size} rows but challenger_loss has {n}")
    if not np.isfinite(loss).all():
        raise ValueError(f"{name} contains NaN or infinite losses; expected finite numbers")
    return loss


def paired_loss_test(
    challenger_loss: ArrayLike,
    champion_loss: ArrayLike,
    metric: str,
    min_delta: float = 0.0,
    alpha: float = 0.05,
    level: float | None = None,
) -> PairedComparison:
    """Test mean(champion_loss - challenger_loss) > min_delta with a one-sided paired t-test.

    `metric` names the loss (e.g. "squared_error"); `min_delta` is in its units. The interval
    is two-sided at `level`, by default 1 - 2 * alpha so its lower end agrees with the test.
    """
    challenger = _losses(challenger_loss, "challenger_loss")
    champion = _losses(champion_loss, "champion_loss", challenger.size)
    if not (isinstance(min_delta, (int, float)) and math.isfinite(min_delta)):
        raise ValueError(f"min_delta must be a finite number; got {min_delta!r}")
    if not 0 < alpha < 0.5:
        raise ValueError(f"alpha must be in (0, 0.5); got {alpha!r}")
    level = 1.0 - 2.0 * alpha if level is None else level
    if not 0 < level < 1:
        raise ValueError(f"level must be in (0, 1); got {level!r}")
    n = challenger.size
    improvement = champion - challenger
    diff = float(improvement.mean())
    se = float(improvement.std(ddof=1)) / math.sqrt(n)
    margin = diff - min_delta
    if se > 0:
        statistic = margin / se
        p_value = float(student_t.sf(statistic, n - 1))
        half = float(student_t.ppf(0.5 + level / 2, n - 1)) * se
    else:
        # Every row differs by the same amount (e.g. identical models): the margin is exact.
        statistic = math.copysign(math.inf, margin) if margin else 0.0
        p_value, half = (0.0 if margin > 0 else 1.0), 0.0
    return PairedComparison(
        metric=metric,
        challenger=float(challenger.mean()),
        champion=float(champion.mean()),
        diff=diff,
        low=diff - half,
        high=diff + half,
        min_delta=float(min_delta),
        alpha=float(alpha),
        statistic=statistic,
        p_value=p_value,
        method="paired t",
        n=n,
        se=se,
    )


def detectability_refusal(
    comparison: PairedComparison, max_detectable_delta: float, power: float = 0.8
) -> str | None:
    """Why the holdout is too small to trust this comparison, or None if it can detect the delta.

    The same rule as the binary promotion: refuse when the smallest true improvement the test
    would find with `power` exceeds `max_detectable_delta` (in the compared metric's units).
    """
    mde = minimum_detectable_delta(comparison.se, comparison.alpha, power)
    if mde <= max_detectable_delta:
        return None
    return (
        f"holdout too small for the requested delta: it detects only {comparison.metric} "
        f"differences above {mde:.4g} (promotion.max_detectable_delta is {max_detectable_delta})"
    )
