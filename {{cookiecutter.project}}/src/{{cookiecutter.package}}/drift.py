"""Drift: a reference profile of the training data, and PSI of a batch or a stream against it.

A profile keeps, per feature, bin counts (quantile bins of the reference for numbers and
dates, the contract's categories plus one "(other)" bin for categories) and a null count.
A batch (`count_frame`) and served traffic (`RunningProfile`) are reduced to the same counts,
and `compare_counts` judges both with one piece of code.
"""

from __future__ import annotations

import bisect
import itertools
import json
import math
import threading
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from .contract import Column, Contract
from .errors import DataError

PROFILE_VERSION = 1
OTHER = "(other)"
MAX_CATEGORIES = 50  # free-text columns keep their most frequent values; the rest share OTHER
_EPOCH = datetime(1970, 1, 1)
_NS_PER_DAY = 86_400e9


class DriftError(DataError):
    """A reference profile is unusable or does not match the data."""


def profiled_columns(contract: Contract) -> list[str]:
    """The columns a profile covers: the model's features (the id and the label are not inputs)."""
    return list(contract.feature_columns)


def _is_binned(column: Column) -> bool:
    return column.is_numeric or column.type == "datetime"


def _int_labels(column: Column) -> bool:
    values = column.values or ()
    return bool(values) and all(isinstance(v, int) and not isinstance(v, bool) for v in values)


def _numbers(series: pd.Series, kind: str) -> np.ndarray:
    """Floats (NaN for missing or unreadable); dates become days since 1970-01-01."""
    if kind == "datetime":
        stamps = series
        if not pd.api.types.is_datetime64_any_dtype(stamps):
            stamps = pd.to_datetime(stamps, errors="coerce", format="mixed", utc=True)
        if getattr(stamps.dt, "tz", None) is not None:
            stamps = stamps.dt.tz_convert("UTC").dt.tz_localize(None)
        # whole nanoseconds first, as `_row_number` does, so a row and a batch bin alike
        delta = (stamps - pd.Timestamp(_EPOCH)).to_numpy().astype("timedelta64[ns]")
        days: np.ndarray = delta.astype(np.int64).astype("float64") / _NS_PER_DAY
        days[np.isnat(delta)] = np.nan
        return days
    numbers: np.ndarray = pd.to_numeric(series, errors="coerce").to_numpy(
        dtype="float64", na_value=np.nan
    )
    return numbers


def _labels(series: pd.Series, int_labels: bool) -> tuple[np.ndarray, np.ndarray]:
    """Category labels as text (1, 1.0 and "1" agree when the contract's values are integers)."""
    missing = series.isna().to_numpy()
    text = series.astype(str)
    if int_labels:
        numbers = pd.to_numeric(series, errors="coerce")
        whole = (numbers.notna() & (numbers == numbers.round())).to_numpy()
        if whole.any():
            ints = numbers.to_numpy(dtype="float64", na_value=0.0)[whole].astype(np.int64)
            text = text.to_numpy(dtype=object)
            text[whole] = ints.astype(str)
            return np.asarray(text, dtype=object), missing
    return text.to_numpy(dtype=object), missing


def _bin_counts(values: np.ndarray, edges: list[float]) -> list[int]:
    # bins are (-inf, e0], (e0, e1], ..., (e_last, inf): bisect_left agrees row by row
    index = np.searchsorted(np.asarray(edges, dtype="float64"), values, side="left")
    counts: list[int] = np.bincount(index, minlength=len(edges) + 1).astype(int).tolist()
    return counts


def _category_counts(labels: np.ndarray, missing: np.ndarray, categories: list[str]) -> list[int]:
    codes = pd.Index(categories, dtype=object).get_indexer(labels[~missing])  # -1: unseen
    counts = np.bincount(codes[codes >= 0], minlength=len(categories)).astype(int).tolist()
    return [*counts, int((codes < 0).sum())]


def _shares(counts: list[int]) -> list[float]:
    total = sum(counts)
    return [c / total if total else 0.0 for c in counts]


def quantile_edges(values: np.ndarray, bins: int) -> np.ndarray:
    """Inner bin edges at the values' quantiles (repeated edges merged)."""
    edges: np.ndarray = np.unique(np.quantile(values, np.linspace(0, 1, bins + 1)[1:-1]))
    return edges


def build_reference(df: pd.DataFrame, contract: Contract, bins: int) -> dict[str, Any]:
    """Profile the training data: quantile bin edges, category shares, null shares, row count."""
    if bins < 2:
        raise DriftError(f"drift.bins is {bins}; a profile needs at least 2 bins")
    if df.empty:
        raise DriftError("cannot build a reference profile from an empty table")
    features: dict[str, Any] = {}
    for name in profiled_columns(contract):
        if name not in df.columns:
            raise DriftError(f"reference data has no column {name!r}; it has {list(df.columns)}")
        column = contract.columns[name]
        if _is_binned(column):
            values = _numbers(df[name], column.type)
            present = values[~np.isnan(values)]
            edges = quantile_edges(present, bins).tolist() if present.size else []
            counts = _bin_counts(present, edges)
            nulls = int(values.size - present.size)
            entry: dict[str, Any] = {"kind": "numeric", "type": column.type, "edges": edges}
        else:
            int_labels = _int_labels(column)
            labels, missing = _labels(df[name], int_labels)
            if column.values is not None:
                categories = _labels(pd.Series(list(column.values)), int_labels)[0].tolist()
            else:
                top = pd.Series(labels[~missing]).value_counts().head(MAX_CATEGORIES)
                categories = [str(v) for v in top.index]
            counts = _category_counts(labels, missing, categories)
            nulls = int(missing.sum())
            entry = {"kind": "categorical", "type": column.type, "int_labels": int_labels}
            entry["categories"] = categories
        entry.update(
            counts=counts,
            shares=_shares(counts),
            nulls=nulls,
            null_share=nulls / len(df),
        )
        features[name] = entry
    return {
        "version": PROFILE_VERSION,
        "contract": contract.name,
        "fingerprint": contract.fingerprint,
        "rows": len(df),
        "bins": bins,
        "features": features,
    }


def check_reference(reference: Mapping[str, Any]) -> None:
    """Raise DriftError unless `reference` looks like a profile this code wrote."""
    if not isinstance(reference, Mapping) or reference.get("version") != PROFILE_VERSION:
        found = reference.get("version") if isinstance(reference, Mapping) else type(reference)
        raise DriftError(f"reference profile version {found!r}; expected {PROFILE_VERSION}")
    if not isinstance(reference.get("features"), Mapping):
        raise DriftError("reference profile has no `features` mapping")


def count_frame(reference: Mapping[str, Any], df: pd.DataFrame) -> dict[str, Any]:
    """Reduce a batch to the reference's bins: counts and nulls per feature."""
    check_reference(reference)
    features: dict[str, Any] = {}
    for name, ref in reference["features"].items():
        if name not in df.columns:
            features[name] = {"counts": [0] * len(ref["counts"]), "nulls": 0, "missing": True}
            continue
        if ref["kind"] == "numeric":
            values = _numbers(df[name], ref["type"])
            present = values[~np.isnan(values)]
            counts = _bin_counts(present, ref["edges"])
            nulls = int(values.size - present.size)
        else:
            labels, missing = _labels(df[name], bool(ref.get("int_labels")))
            counts = _category_counts(labels, missing, ref["categories"])
            nulls = int(missing.sum())
        features[name] = {"counts": counts, "nulls": nulls, "missing": False}
    return {"rows": len(df), "features": features}


def psi(reference: Iterable[float], current: Iterable[float], floor: float = 1e-4) -> float:
    """PSI of two histograms (counts or shares); an empty bin counts as share `floor`."""
    ref = np.asarray(list(reference), dtype="float64")
    cur = np.asarray(list(current), dtype="float64")
    if ref.shape != cur.shape:
        raise DriftError(f"histograms differ in length: {ref.size} vs {cur.size}")
    if ref.sum() <= 0 or cur.sum() <= 0:
        return math.nan
    # the floor keeps log(0) out: a bin empty on one side still adds a large, finite term
    p = np.maximum(ref / ref.sum(), floor)
    q = np.maximum(cur / cur.sum(), floor)
    return float(np.sum((q - p) * np.log(q / p)))


def bin_labels(ref: Mapping[str, Any]) -> list[str]:
    """Readable bin names: intervals for numbers and dates, category names for categories."""
    if ref["kind"] == "categorical":
        return [*ref["categories"], OTHER]
    edges = [_edge_text(e, ref["type"]) for e in ref["edges"]]
    if not edges:
        return ["all values"]
    return (
        [f"≤ {edges[0]}"]
        + [f"{a} to {b}" for a, b in itertools.pairwise(edges)]
        + [f"> {edges[-1]}"]
    )


def _edge_text(value: float, kind: str) -> str:
    if kind == "datetime":
        day: str = (pd.Timestamp(_EPOCH) + pd.Timedelta(days=value)).strftime("%Y-%m-%d")
        return day
    return f"{value:.4g}"


def compare_counts(
    reference: Mapping[str, Any], current: Mapping[str, Any], limits: Mapping[str, float]
) -> dict[str, Any]:
    """Judge current counts against the reference: PSI, null and unseen shares, verdicts.

    `limits` is `DriftConfig.limits()`: every key present, defaults from config.py.
    """
    check_reference(reference)
    limits = dict(limits)
    rows = int(current["rows"])
    report: list[dict[str, Any]] = []
    for name, ref in reference["features"].items():
        cur = current["features"].get(name) or {"counts": [], "nulls": 0, "missing": True}
        report.append(_judge(name, ref, cur, int(reference["rows"]), rows, limits))
    report.sort(
        key=lambda f: (f["verdict"] != "drift", -(f["psi"] if f["psi"] is not None else 0.0))
    )
    drifted = [f["feature"] for f in report if f["verdict"] == "drift"]
    status = "drift" if drifted else "ok"
    if rows < limits["min_rows"]:
        status = "too_few_rows"
    return {
        "status": status,
        "drifted": drifted if status != "too_few_rows" else [],
        "max_psi": max((f["psi"] for f in report if f["psi"] is not None), default=None),
        "rows": {"reference": int(reference["rows"]), "current": rows},
        "limits": limits,
        "features": report,
    }


def _judge(
    name: str,
    ref: Mapping[str, Any],
    cur: Mapping[str, Any],
    ref_rows: int,
    rows: int,
    limits: Mapping[str, Any],
) -> dict[str, Any]:
    if cur.get("missing"):
        return {
            "feature": name,
            "kind": ref["kind"],
            "psi": None,
            "verdict": "drift",
            "reasons": ["column is missing from the data"],
            "null_share": {"reference": ref["null_share"], "current": None},
            "bins": [],
        }
    value = psi(ref["counts"], cur["counts"], limits["psi_floor"])
    current_shares = _shares(cur["counts"])
    null_share = cur["nulls"] / rows if rows else 0.0
    reasons = []
    if not math.isnan(value) and value > limits["psi_threshold"]:
        reasons.append(f"PSI {value:.3f} > {limits['psi_threshold']}")
    if null_share - ref["null_share"] > limits["max_null_increase"]:
        reasons.append(
            f"null share {null_share:.3f} vs {ref['null_share']:.3f} in the reference "
            f"(+{null_share - ref['null_share']:.3f} > {limits['max_null_increase']})"
        )
    entry: dict[str, Any] = {
        "feature": name,
        "kind": ref["kind"],
        "psi": None if math.isnan(value) else round(value, 6),
        "null_share": {"reference": ref["null_share"], "current": null_share},
    }
    if ref["kind"] == "categorical":
        unseen_ref, unseen_cur = ref["shares"][-1], current_shares[-1] if current_shares else 0.0
        entry["unseen_share"] = {"reference": unseen_ref, "current": unseen_cur}
        if unseen_cur - unseen_ref > limits["max_unseen_share"]:
            reasons.append(
                f"{unseen_cur:.1%} of values are not among the reference's categories "
                f"(> {limits['max_unseen_share']:.1%})"
            )
    entry["verdict"] = "drift" if reasons else "ok"
    entry["reasons"] = reasons
    entry["bins"] = [
        {"label": label, "reference": r, "current": c}
        for label, r, c in zip(bin_labels(ref), ref["shares"], current_shares, strict=False)
    ]
    return entry


def compare(
    reference: Mapping[str, Any],
    df: pd.DataFrame,
    contract: Contract,
    limits: Mapping[str, float],
) -> dict[str, Any]:
    """Compare a batch with the reference profile; features sorted with the worst drift first."""
    report = compare_counts(reference, count_frame(reference, df), limits)
    report["contract_changed"] = reference.get("fingerprint") != contract.fingerprint
    return report


class RunningProfile:
    """Counts of rows seen so far in the reference's bins: cheap per row, safe across threads."""

    def __init__(self, reference: Mapping[str, Any]) -> None:
        check_reference(reference)
        self.reference = reference
        self._lock = threading.Lock()
        self._plan: list[tuple[str, str, Any, bool]] = []
        for name, ref in reference["features"].items():
            if ref["kind"] == "numeric":
                self._plan.append((name, ref["type"], list(ref["edges"]), False))
            else:
                index = {label: i for i, label in enumerate(ref["categories"])}
                self._plan.append((name, "categorical", index, bool(ref.get("int_labels"))))
        self._empty()

    def _empty(self) -> None:
        self._rows = 0
        self._nulls = {name: 0 for name, *_ in self._plan}
        self._counts = {
            name: [0] * len(self.reference["features"][name]["counts"]) for name, *_ in self._plan
        }

    @property
    def rows(self) -> int:
        """Rows seen since creation or the last reset."""
        return self._rows

    def update(self, row: Mapping[str, Any]) -> None:
        """Count one row (a mapping of column to value, as a request body gives it)."""
        with self._lock:
            self._rows += 1
            for name, kind, lookup, int_labels in self._plan:
                value = row.get(name)
                if kind == "categorical":
                    label = _row_label(value, int_labels)
                    if label is None:
                        self._nulls[name] += 1
                    else:
                        self._counts[name][lookup.get(label, len(lookup))] += 1
                else:
                    number = _row_number(value, kind)
                    if math.isnan(number):  # missing or unreadable
                        self._nulls[name] += 1
                    else:
                        self._counts[name][bisect.bisect_left(lookup, number)] += 1

    def update_many(self, rows: Iterable[Mapping[str, Any]]) -> None:
        """Count several rows."""
        for row in rows:
            self.update(row)

    def update_frame(self, df: pd.DataFrame) -> None:
        """Count a whole DataFrame at once (vectorised, same bins as row by row)."""
        counted = count_frame(self.reference, df)
        with self._lock:
            self._rows += counted["rows"]
            for name, item in counted["features"].items():
                self._nulls[name] += item["nulls"] if not item["missing"] else counted["rows"]
                self._counts[name] = [
                    a + b for a, b in zip(self._counts[name], item["counts"], strict=True)
                ]

    def _counted(self) -> dict[str, Any]:
        # callers hold the lock; lists are copied so later rows do not change a snapshot
        features = {
            name: {"counts": list(counts), "nulls": self._nulls[name], "missing": False}
            for name, counts in self._counts.items()
        }
        return {"rows": self._rows, "features": features}

    def snapshot(self) -> dict[str, Any]:
        """The counts so far, shaped like `count_frame`'s result."""
        with self._lock:
            return self._counted()

    def reset(self) -> dict[str, Any]:
        """Return the counts so far and start again from zero (for windows of traffic)."""
        with self._lock:
            counted = self._counted()
            self._empty()
        return counted

    def compare(self, limits: Mapping[str, float]) -> dict[str, Any]:
        """Judge the traffic seen so far with the same code as a batch."""
        return compare_counts(self.reference, self.snapshot(), limits)


def _row_number(value: Any, kind: str) -> float:
    if value is None:
        return math.nan
    try:
        if kind == "datetime":
            stamp = value if isinstance(value, datetime) else datetime.fromisoformat(str(value))
            if stamp.tzinfo is not None:
                stamp = stamp.astimezone(UTC).replace(tzinfo=None)
            delta = stamp - _EPOCH
            nanoseconds = (
                (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds
            ) * 1000
            return float(nanoseconds) / _NS_PER_DAY
        return float(value)
    except (TypeError, ValueError, OverflowError):
        return math.nan


def _row_label(value: Any, int_labels: bool) -> str | None:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    if int_labels:
        try:
            number = float(value)
        except (TypeError, ValueError):
            return str(value)
        if number.is_integer():
            return str(int(number))
    return str(value)


def load_reference(path: str | Path) -> dict[str, Any]:
    """Read a reference profile file; DriftError naming the file if it is not one."""
    path = Path(path)
    try:
        reference = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as error:
        raise DriftError(f"{path}: cannot read a reference profile: {error}") from None
    try:
        check_reference(reference)
    except DriftError as error:
        raise DriftError(f"{path}: {error}") from None
    profile: dict[str, Any] = reference
    return profile
