"""Which columns play which role in a user's table: the id, the target and its positive value.

`make contract` drafts from these guesses and prints each one's reason; a guess the data
cannot settle stops with the exact commands to choose (`AmbiguousTarget`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import pandas as pd

from .errors import DataError
from .suite import parse_datetimes

_ID_NAME = re.compile(r"(^|_)(id|key|uuid)$|^id_|_id$", re.IGNORECASE)
# Words of a column name that say "this is what happened" (an outcome), as whole words of
# the name (`passengerClass` -> passenger, class; `is_fraud` -> is, fraud), so an attribute
# that merely has two values (`sex`, `student`) does not look like a target.
_OUTCOME_WORDS = frozenset(
    {
        "target",
        "label",
        "outcome",
        "result",
        "response",
        "y",
        "class",
        "churn",
        "churned",
        "default",
        "defaulted",
        "delinquent",
        "fraud",
        "fraudulent",
        "survived",
        "survival",
        "died",
        "death",
        "dead",
        "purchase",
        "purchased",
        "bought",
        "buy",
        "converted",
        "conversion",
        "subscribed",
        "clicked",
        "click",
        "readmitted",
        "attrition",
        "cancelled",
        "canceled",
        "renewed",
        "renewal",
        "repaid",
        "approved",
        "accepted",
        "won",
        "success",
        "diagnosis",
        "malignant",
        "event",
    }
)
# Words of a name that say whole numbers are codes, not amounts (StoreID, customer_type).
_FLAG_PREFIXES = frozenset({"is", "has", "was", "did", "will"})  # is_fraud, hasChurned
_WORDS = re.compile(r"[A-Z]?[a-z]+|[A-Z]+(?![a-z])|\d+")
# values that name the event a model is usually asked to predict
_POSITIVE_WORDS = {"1", "true", "t", "yes", "y", "positive", "pos", "bad", "fraud", "default"}
_POSITIVE_WORDS |= {"defaulted", "churn", "churned", "event", "fail", "failed"}
_DATE_LIKE = r"\d[-/:T.]\d|\d{8}"


@dataclass(frozen=True)
class Guess:
    """A column picked for a role (id, target, positive value), with the reason."""

    value: Any
    reason: str


def native(value: Any) -> Any:
    """A numpy scalar as the Python value YAML writes plainly."""
    return value.item() if hasattr(value, "item") else value


def looks_like_dates(present: pd.Series) -> bool:
    if not len(present) or pd.api.types.is_numeric_dtype(present.dtype):
        return False
    text = present.astype(str)
    return bool(text.str.contains(_DATE_LIKE).all() and parse_datetimes(present).notna().all())


def id_kind(values: pd.Series) -> str | None:
    """ "integer" or "string" when a column could be an id; None otherwise."""
    if values.isna().any() or not values.is_unique or len(values) < 2:
        return None
    if pd.api.types.is_integer_dtype(values.dtype):
        return "integer"
    if pd.api.types.is_string_dtype(values.dtype) and not pd.api.types.is_bool_dtype(values.dtype):
        return None if looks_like_dates(values) else "string"
    return None


def guess_id(df: pd.DataFrame, exclude: tuple[str, ...] = ()) -> Guess:
    """The column that identifies rows: unique, never blank, whole numbers or text (not dates)."""
    ranked = []
    for position, name in enumerate(df.columns):
        kind = id_kind(df[name]) if name not in exclude else None
        if kind is None:
            continue
        values = df[name]
        named = bool(_ID_NAME.search(str(name)))
        # a run of whole numbers (1..n, shuffled or not) is a row number; text of one shape a code
        if kind == "integer":
            shaped = int(values.max()) - int(values.min()) == len(values) - 1
        else:
            shaped = values.astype(str).str.len().nunique() == 1
        ranked.append((-(2 * named + shaped), position, name, kind, named, shaped))
    if not ranked:
        raise DataError(
            "no id column found: no column is unique and never blank (whole numbers or text). "
            "Add one (a row number will do), or choose it with `make contract DATA=... ID=name`"
        )
    _, _, name, kind, named, shaped = min(ranked)
    why = [f"{kind}, unique and never blank in {len(df)} rows"]
    why += ["its name says id"] if named else []
    why += (
        ["values of one shape" if kind == "string" else "a run of whole numbers"] if shaped else []
    )
    others = [r[2] for r in sorted(ranked) if r[2] != name]
    if others:
        why.append(f"also possible: {', '.join(map(str, others[:3]))}")
    return Guess(str(name), "; ".join(why))


def two_valued(values: pd.Series) -> bool:
    return not values.isna().any() and values.nunique() == 2


def name_words(name: str) -> list[str]:
    """`passengerClass` -> [passenger, class]; `IS_FRAUD` -> [is, fraud]."""
    return [w.lower() for w in _WORDS.findall(name)]


def outcome_evidence(name: str) -> int:
    """How strongly a column's name says it records an outcome: 2 for an outcome word
    (survived, default, churned, y), 1 for a bare flag prefix (is_senior, has_card), else 0.
    A flag prefix alone is weaker because attributes are named that way too."""
    words = name_words(name)
    if not words:
        return 0
    if _OUTCOME_WORDS & set(words):
        return 2
    return 1 if words[0] in _FLAG_PREFIXES else 0


class AmbiguousTarget(DataError):
    """Several columns could be the target and nothing in the data says which one."""

    def __init__(self, candidates: list[str], why: str) -> None:
        self.candidates = candidates
        super().__init__(f"{why}; training a model of the wrong column helps nobody")


def guess_target(df: pd.DataFrame, id_column: str) -> Guess:
    """The column to predict: two values, never blank, and either the only such column or the
    only one named like an outcome. Otherwise AmbiguousTarget names the candidates."""
    candidates = [str(name) for name in df.columns if name != id_column and two_valued(df[name])]
    if not candidates:
        raise DataError(
            "no target found: no column has exactly two values and no blanks (a multiclass or "
            "regression target is never guessed). Choose it with `make contract DATA=... TARGET=name`"
        )
    # the strongest name evidence decides: `churned` beats `is_senior`; two of a kind tie
    strongest = max(outcome_evidence(name) for name in candidates)
    named = [name for name in candidates if strongest and outcome_evidence(name) == strongest]
    if len(named) == 1:
        why = "two values, never blank; its name says outcome"
        chosen = named[0]
    elif len(candidates) == 1:
        why, chosen = "the only column with two values and no blanks", candidates[0]
    elif named:
        raise AmbiguousTarget(
            named, f"{len(named)} columns are named like an outcome: {', '.join(named)}"
        )
    else:
        raise AmbiguousTarget(
            candidates,
            f"{len(candidates)} columns have two values and none is named like an outcome "
            f"(survived, default, churn, target, label, is_...): {', '.join(candidates)}",
        )
    rest = [name for name in candidates if name != chosen]
    if rest:
        why += f"; also possible: {', '.join(rest[:3])}"
    return Guess(chosen, why)


def guess_positive(values: pd.Series) -> Guess:
    """The target value that counts as the event: one that says so, else the rarer one."""
    counts = values.value_counts()
    for value in sorted(counts.index, key=str):
        if str(value).strip().lower() in _POSITIVE_WORDS:
            return Guess(native(value), f"{native(value)!r} names the event")
    rarer = (
        counts.idxmin() if counts.iloc[0] != counts.iloc[-1] else sorted(counts.index, key=str)[-1]
    )
    share = counts[rarer] / counts.sum()
    return Guess(native(rarer), f"the rarer value ({share:.1%} of rows)")
