"""Bootstrap resamples as per-row draw counts, stratified by any grouping of the rows.

The same idea as `stats.py`'s binary bootstrap, for any number of strata (one for regression,
one per class for multiclass): a resample is never materialised, it is a row of draw counts,
and a metric on it is a weighted formula. A metric's point estimate is the same formula with
every count equal to one, so a point estimate and its replicates cannot disagree.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence

import numpy as np
from numpy.typing import NDArray

from ..stats import Interval

__all__ = ["Kernel", "bootstrap", "count_chunks", "percentile_intervals", "point", "weighted_sums"]

Floats = NDArray[np.float64]
# A kernel maps draw counts, shape (resamples, rows), to each metric's value per resample.
# One kernel computes all of a task's metrics so per-row sums share one matrix product.
Kernel = Callable[[Floats], dict[str, Floats]]

# Elements of a (resamples x rows) count block, as in stats.py: a few such float64 blocks
# alive at once stay near 100 MB whatever the holdout size.
_CHUNK_ELEMENTS = 2**20


def count_chunks(
    strata: Sequence[NDArray[np.intp]], n: int, resamples: int, seed: int
) -> Iterator[Floats]:
    """Yield draw counts, shape (chunk, n), for consecutive blocks of resamples.

    Each stratum (an array of row indices) keeps its size in every resample, so a stratified
    holdout keeps its class balance. Counts are float64 so kernels need no casts.
    """
    if isinstance(resamples, bool) or not isinstance(resamples, (int, np.integer)):
        raise ValueError(f"resamples must be a positive integer; got {resamples!r}")
    if resamples < 1:
        raise ValueError(f"resamples must be a positive integer; got {resamples}")
    rng = np.random.default_rng(seed)
    per_chunk = max(1, min(resamples, _CHUNK_ELEMENTS // max(n, 1)))
    for start in range(0, resamples, per_chunk):
        size = min(per_chunk, resamples - start)
        parts = []
        for rows in strata:
            picked = rng.integers(0, rows.size, size=(size, rows.size))
            # A stratum of every row needs no gather: uniform over positions is uniform over rows.
            parts.append(picked if rows.size == n else rows[picked])
        draws = parts[0] if len(parts) == 1 else np.hstack(parts)
        # One bincount for the whole chunk: draw i of resample r lands in bin r * n + row.
        draws += (np.arange(size) * n)[:, None]
        yield np.bincount(draws.ravel(), minlength=size * n).reshape(size, n).astype(np.float64)


def weighted_sums(counts: Floats, quantities: Floats) -> Floats:
    """Return each resample's weighted sum of each per-row quantity, shape (resamples, m).

    `quantities` is (m, rows). einsum's single-threaded loop, not BLAS: with the cores shared
    by other processes (CI runners, this package's own servers), threaded matrix products of
    these thin shapes ran 3 to 30 times slower, depending on the orientation.
    """
    sums: Floats = np.einsum("mn,rn->rm", quantities, counts)
    return sums


def bootstrap(
    kernel: Kernel, strata: Sequence[NDArray[np.intp]], n: int, resamples: int, seed: int
) -> dict[str, Floats]:
    """Return every metric the kernel computes on every resample, by name."""
    out: dict[str, Floats] = {}
    start = 0
    for counts in count_chunks(strata, n, resamples, seed):
        stop = start + counts.shape[0]
        for name, values in kernel(counts).items():
            out.setdefault(name, np.empty(resamples))[start:stop] = values
        start = stop
    return out


def point(kernel: Kernel, n: int) -> dict[str, float]:
    """Return the kernel's metrics on the holdout itself: every row drawn once."""
    return {name: float(values[0]) for name, values in kernel(np.ones((1, n))).items()}


def percentile_intervals(
    kernel: Kernel,
    strata: Sequence[NDArray[np.intp]],
    n: int,
    *,
    resamples: int,
    seed: int,
    level: float,
) -> dict[str, Interval]:
    """Return each metric's point estimate with its percentile-bootstrap interval."""
    if not 0 < level < 1:
        raise ValueError(f"level must be in (0, 1); got {level!r}")
    replicates = bootstrap(kernel, strata, n, resamples, seed)
    points = point(kernel, n)
    quantiles = (0.5 - level / 2, 0.5 + level / 2)
    method = "bootstrap" if len(strata) == 1 else "stratified bootstrap"
    intervals = {}
    for name, values in replicates.items():
        low, high = np.quantile(values, quantiles)
        intervals[name] = Interval(points[name], float(low), float(high), method)
    return intervals
