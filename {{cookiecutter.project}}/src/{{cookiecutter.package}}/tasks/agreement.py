"""How often a shadow model's answers differ from the primary's, with a Wilson interval.

What "differ" means depends on the task: a different label (binary, multiclass), or a value
further apart than a stated relative tolerance (regression).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy.special import ndtri

from ..artifacts import jsonable
from .regression import values

__all__ = ["Disagreement", "label_disagreement", "value_disagreement", "wilson_interval"]


@dataclass(frozen=True)
class Disagreement:
    """The share of compared rows on which the two models disagree, with its interval."""

    share: float
    low: float
    high: float
    rows: int
    disagreeing: int
    rule: str

    def to_dict(self) -> dict[str, object]:
        """Return a JSON-safe dict."""
        return dict(jsonable(asdict(self)))


def wilson_interval(count: int, n: int, level: float = 0.95) -> tuple[float, float]:
    """Return the Wilson score interval of a binomial share count / n."""
    if n < 1 or not 0 <= count <= n:
        raise ValueError(f"need 0 <= count <= n and n >= 1; got count={count}, n={n}")
    if not 0 < level < 1:
        raise ValueError(f"level must be in (0, 1); got {level!r}")
    z = float(ndtri(0.5 + level / 2))
    share = count / n
    centre = (share + z * z / (2 * n)) / (1 + z * z / n)
    half = z / (1 + z * z / n) * math.sqrt(share * (1 - share) / n + z * z / (4 * n * n))
    # At a share of exactly 0 or 1 the bound is exact; clamp the float noise around it.
    return max(0.0, centre - half), min(1.0, centre + half)


def _result(differs: NDArray[np.bool_], rule: str, level: float) -> Disagreement:
    count, n = int(differs.sum()), int(differs.size)
    low, high = wilson_interval(count, n, level)
    return Disagreement(count / n, low, high, n, count, rule)


def label_disagreement(primary: ArrayLike, shadow: ArrayLike, level: float = 0.95) -> Disagreement:
    """Return the share of rows whose predicted labels differ."""
    left, right = np.asarray(primary), np.asarray(shadow)
    if left.ndim != 1 or left.size == 0 or left.shape != right.shape:
        raise ValueError(
            f"primary and shadow must be non-empty 1-D label arrays of the same length; "
            f"got shapes {left.shape} and {right.shape}"
        )
    return _result(left != right, "label differs", level)


def value_disagreement(
    primary: ArrayLike,
    shadow: ArrayLike,
    relative_tolerance: float = 0.05,
    floor: float = 0.0,
    level: float = 0.95,
) -> Disagreement:
    """Return the share of rows where |shadow - primary| > relative_tolerance * max(|primary|, floor).

    `floor` (in target units, e.g. the mean |target|) keeps predictions near zero from
    counting every tiny difference as a disagreement.
    """
    left = values(primary, "primary")
    right = values(shadow, "shadow", left.size)
    if not (relative_tolerance >= 0 and math.isfinite(relative_tolerance)):
        raise ValueError(
            f"relative_tolerance must be a finite number >= 0; got {relative_tolerance!r}"
        )
    if not (floor >= 0 and math.isfinite(floor)):
        raise ValueError(f"floor must be a finite number >= 0; got {floor!r}")
    allowed = relative_tolerance * np.maximum(np.abs(left), floor)
    rule = f"|difference| > {relative_tolerance:g} x max(|primary|, {floor:g})"
    return _result(np.abs(right - left) > allowed, rule, level)
