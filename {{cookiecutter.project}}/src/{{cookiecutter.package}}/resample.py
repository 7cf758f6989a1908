"""Bootstrap resamples as per-row draw counts, stratified by any grouping of the rows.

The same idea as `stats.py`'s binary bootstrap, for any number of strata (one for regression,
one per class for multiclass): a resample is never materialised, it is a row of draw counts,
and a metric on it is a weighted formula. A metric's point estimate is the same formula with
every count equal to one, so a point estimate and its replicates cannot disagree.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence

import numpy as np
from numpy.typing import NDArray

from .stats import Interval

__all__ = ["Kernel", "bootstrap", "count_chunks", "percentile_intervals", "point"]

Floats = NDArray[np.float64]
# A kernel maps draw counts, shape (resamples, rows), to one metric value per resample.
Kernel = Callable[[Floats], Floats]

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
        counts = np.zeros((size, n))
        offsets = (np.arange(size) * n)[:, None]
        for rows in strata:
            # One bincount for the whole chunk: draw i of resample r lands in bin r * n + row.
            draws = rows[rng.integers(0, rows.size, size=(size, rows.size))] + offsets
            counts += np.bincount(draws.ravel(), minlength=size * n).reshape(size, n)
        yield counts


def bootstrap(
    kernels: Mapping[str, Kernel],
    strata: Sequence[NDArray[np.intp]],
    n: int,
    resamples: int,
    seed: int,
) -> dict[str, Floats]:
    """Return each kernel's value on every resample, all kernels on the same resamples."""
    out = {name: np.empty(resamples) for name in kernels}
    start = 0
    for counts in count_chunks(strata, n, resamples, seed):
        stop = start + counts.shape[0]
        for name, kernel in kernels.items():
            out[name][start:stop] = kernel(counts)
        start = stop
    return out


def point(kernel: Kernel, n: int) -> float:
    """Return the kernel on the holdout itself: every row drawn once."""
    return float(kernel(np.ones((1, n)))[0])


def percentile_intervals(
    kernels: Mapping[str, Kernel],
    strata: Sequence[NDArray[np.intp]],
    n: int,
    *,
    resamples: int,
    seed: int,
    level: float,
) -> dict[str, Interval]:
    """Return each kernel's point estimate with its percentile-bootstrap interval."""
    if not 0 < level < 1:
        raise ValueError(f"level must be in (0, 1); got {level!r}")
    replicates = bootstrap(kernels, strata, n, resamples, seed)
    quantiles = (0.5 - level / 2, 0.5 + level / 2)
    method = "bootstrap" if len(strata) == 1 else "stratified bootstrap"
    intervals = {}
    for name, values in replicates.items():
        low, high = np.quantile(values, quantiles)
        intervals[name] = Interval(point(kernels[name], n), float(low), float(high), method)
    return intervals
