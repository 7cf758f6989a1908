"""`make contract DATA=path`: draft contract.yaml (and the gates) from your own data, for review."""

from __future__ import annotations

import argparse
import json
import math
import re
import shlex
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
import yaml

from .artifacts import write_text
from .config import Task, parse_config
from .contract import ContractError, parse_contract
from .data import load_table
from .data_version import record
from .draft_gates import draft_gates, with_gates
from .draft_roles import (
    AmbiguousTarget,
    guess_id,
    guess_positive,
    guess_target,
    id_kind,
    looks_like_dates,
    name_words,
    native,
    two_valued,
)
from .draft_task import with_binary_promotion, with_model_kind, with_task, with_task_params
from .errors import DataError, RefusedError, ServiceError
from .paths import PARAMS, RAW_DIR
from .suite import parse_datetimes
from .tasks.inference import TaskGuess, infer_task

MAX_CATEGORIES = 30  # one-hot encoded up to this many distinct values
MAX_LISTED = 200  # more distinct values than this: free text, not a model input
MARGIN = 0.10  # ranges are widened by this share of the observed span on each side
_CODE_WORDS = frozenset(
    {
        "id",
        "code",
        "type",
        "kind",
        "class",
        "category",
        "group",
        "segment",
        "region",
        "zone",
        "store",
        "zip",
    }
)
ZERO_ONE = "only 0 and 1 seen"  # the notes make contract prints a line about
CODES = "codes"

HEADER = """\
# Drafted from {source} by `make contract`: review every line before you trust it. The
# pipeline enforces exactly what this file says (validate refuses data that breaks it).
#
# Column types: integer, float (min/max bound every value, `mean` bounds a batch's mean),
# boolean (true/false only), category (`values` lists what is allowed; `encoding: onehot` or
# `frequency` for many values), datetime (min/max, `reference`: the date "days since" counts
# to) and string (free text: checked, but not a model input). `nullable: true` allows blanks.
# Numeric ranges are the observed ones widened by {margin:.0%} of their span on each side, but
# never across zero: a column with no negative value keeps min >= 0 (and no positive value,
# max <= 0). Dates widen the same way (at least a day); a later date is refused, so move `max`
# when newer data comes. Add `slices`, `protected` attributes and `invariances` by hand.
"""


@dataclass(frozen=True)
class Drafted:
    """One column's contract entry and the comment that says how it was derived."""

    spec: dict[str, Any]
    note: str


def _floor(value: float, kind: str) -> float | int:
    """Round towards minus infinity (4 decimals for floats), so a rounded min still holds the data."""
    if kind == "integer":
        return math.floor(value)
    scaled = math.floor(value * 1e4) / 1e4
    return scaled if math.isfinite(scaled) and scaled <= value else value


def _ceil(value: float, kind: str) -> float | int:
    """Round towards plus infinity, so a rounded max still holds the data."""
    if kind == "integer":
        return math.ceil(value)
    scaled = math.ceil(value * 1e4) / 1e4
    return scaled if math.isfinite(scaled) and scaled >= value else value


def widen(low: float, high: float) -> tuple[float, float]:
    """The observed range plus MARGIN of its span on each side, without crossing zero."""
    span = high - low
    margin = MARGIN * (span if span > 0 else max(abs(low), 1.0))
    lo, hi = low - margin, high + margin
    if low >= 0:
        lo = max(lo, 0.0)  # counts, amounts, ages: no negative value was seen, none is allowed
    if high <= 0:
        hi = min(hi, 0.0)
    return lo, hi


def _is_boolean(values: pd.Series, present: pd.Series) -> bool:
    if pd.api.types.is_bool_dtype(values.dtype):
        return True
    # a boolean column with blanks is read as Python objects holding True and False
    return values.dtype == object and len(present) > 0 and present.map(type).eq(bool).all()


def _numeric(present: pd.Series, nullable_ints: bool) -> Drafted:
    integral = pd.api.types.is_integer_dtype(present.dtype) or (
        nullable_ints and bool((present == present.round()).all())
    )
    kind = "integer" if integral else "float"
    if integral and len(present) and set(present.unique()) <= {0, 1}:
        note = (
            f"{ZERO_ONE}: drafted as a 0/1 flag; if it counts something, replace `values` "
            "with `min: 0` and a `max`"
        )
        return Drafted({"type": "integer", "values": [0, 1]}, note)
    if not len(present):
        return Drafted({"type": "float"}, "no values seen: no range")
    low, high = float(present.min()), float(present.max())
    lo, hi = widen(low, high)
    mean = float(present.mean())
    spread = float(present.std()) if len(present) > 1 else 0.0
    spread = spread if spread > 0 else max(abs(mean) * MARGIN, 1.0)
    mean_lo, mean_hi = max(mean - spread, lo), min(mean + spread, hi)
    spec = {
        "type": kind,
        "min": _floor(lo, kind),
        "max": _ceil(hi, kind),
        "mean": [_floor(mean_lo, "float"), _ceil(mean_hi, "float")],
    }
    sign = ""
    if low >= 0:
        sign = " (no negative value seen: min kept >= 0)"
    elif high <= 0:
        sign = " (no positive value seen: max kept <= 0)"
    note = f"observed {low:g} to {high:g}, mean {mean:.4g}, sd {spread:.4g}{sign}; mean bound: mean +/- 1 sd"
    return Drafted(spec, note)


def _dates(parsed: pd.Series) -> Drafted:
    first, last = parsed.min(), parsed.max()
    margin = max((last - first) * MARGIN, pd.Timedelta(days=1))
    spec = {
        "type": "datetime",
        "min": str((first - margin).normalize().date()),
        # a bare date is midnight: the day after the widened end still admits its afternoons
        "max": str(((last + margin).normalize() + pd.Timedelta(days=1)).date()),
        "reference": str((last.normalize() + pd.Timedelta(days=1)).date()),
    }
    note = f"observed {first} to {last}; widened by {margin.days} day(s); reference: the day after the last"
    return Drafted(spec, note)


def _text(present: pd.Series, rows: int) -> Drafted:
    distinct = int(present.nunique())
    values = sorted(str(v) for v in present.unique())
    if distinct <= MAX_CATEGORIES:
        return Drafted({"type": "category", "values": values}, f"{distinct} distinct values")
    if distinct <= MAX_LISTED and distinct <= len(present) // 2:
        spec = {"type": "category", "encoding": "frequency", "values": values}
        note = f"{distinct} distinct values: encoded by frequency; an unlisted value is refused"
        return Drafted(spec, note)
    note = f"{distinct} distinct values in {rows} rows: free text, not a model input"
    return Drafted({"type": "string"}, note)


def named_like_a_code(name: str) -> bool:
    """Whether a column's name says its numbers are codes (StoreID, customer_type, MOSTYPE)."""
    words = name_words(name)
    if set(words) & _CODE_WORDS:
        return True
    # one upper-case word (MOSTYPE, STOREID): its ending is all the name says
    return name.isupper() and len(words) == 1 and name.lower().endswith(tuple(_CODE_WORDS))


def _codes(present: pd.Series, rows: int) -> Drafted | None:
    """Whole numbers that name things (by the column's name) as a category, or None."""
    distinct = int(present.nunique())
    if distinct > MAX_LISTED or distinct > max(len(present) // 2, 2):
        return None
    values = sorted(int(v) for v in present.unique())
    spec: dict[str, Any] = {"type": "category", "values": values}
    if distinct > MAX_CATEGORIES:
        spec = {"type": "category", "encoding": "frequency", "values": values}
    note = (
        f"{CODES}: {distinct} distinct whole numbers whose name says they are codes, so a "
        "category (7 is not 'more' than 3); if they measure an amount, make it `type: integer` "
        "with min/max"
    )
    return Drafted(spec, note)


def infer_column(values: pd.Series, name: str = "") -> Drafted:
    """A column entry from observed values, chosen so the same data always validates."""
    present = values.dropna()
    codes = (
        _codes(present, len(values))
        if pd.api.types.is_integer_dtype(present.dtype) and named_like_a_code(name)
        else None
    )
    if codes is not None:
        drafted = codes
    elif _is_boolean(values, present):
        drafted = Drafted({"type": "boolean"}, "true/false")
    elif pd.api.types.is_datetime64_any_dtype(values.dtype):
        drafted = _dates(parse_datetimes(present))
    elif pd.api.types.is_numeric_dtype(values.dtype):
        # pandas reads whole numbers with blanks as floats; the contract still says integer
        drafted = _numeric(present, nullable_ints=bool(values.isna().any()))
    elif looks_like_dates(present):
        drafted = _dates(parse_datetimes(present))
    else:
        drafted = _text(present, len(values))
    missing = int(values.isna().sum())
    if missing:
        return Drafted({**drafted.spec, "nullable": True}, f"{drafted.note}; {missing} blank")
    return drafted


def _target_spec(values: pd.Series) -> dict[str, Any]:
    if pd.api.types.is_bool_dtype(values.dtype):
        return {"type": "boolean"}
    labels = sorted((native(v) for v in values.unique()), key=str)
    if pd.api.types.is_integer_dtype(values.dtype):
        return {"type": "integer", "values": labels}
    if pd.api.types.is_float_dtype(values.dtype):
        return {"type": "float", "values": labels}
    return {"type": "category", "values": [str(v) for v in labels]}


@dataclass(frozen=True)
class Draft:
    """A drafted contract mapping, per-column notes, and why the id, target and positive were chosen."""

    raw: dict[str, Any]
    notes: dict[str, str]
    reasons: dict[str, str]
    task: Task = "binary"


def draft(
    df: pd.DataFrame,
    name: str,
    id_column: str | None,
    target: str | None,
    task_override: str | None = None,
) -> Draft:
    """Draft a contract for `df`; the caller checks it with parse_contract."""
    for role, column in (("ID", id_column), ("TARGET", target)):
        if column is not None and column not in df.columns:
            raise DataError(f"{role}={column!r} is not a column; the data has {list(df.columns)}")
    reasons: dict[str, str] = {}
    if id_column is None:
        guess = guess_id(df, exclude=(target,) if target else ())
        id_column, reasons["id"] = guess.value, f"guessed: {guess.reason}"
    if target is None:
        guess = guess_target(df, id_column)
        target, reasons["target"] = guess.value, f"guessed: {guess.reason}"
    values = df[target]
    if task_override is None and (
        two_valued(values) or values.isna().any() or values.nunique() < 2
    ):
        task_guess = TaskGuess("binary", "two values")  # and the binary checks below, as before
    else:
        task_guess = infer_task(values, task_override)
    reasons["task"], task = task_guess.reason, task_guess.task
    if task == "binary" and not two_valued(df[target]):
        raise DataError(
            f"target {target!r} has {df[target].nunique()} values and {int(df[target].isna().sum())} "
            "blanks; a target needs exactly two values and none blank"
        )
    if df[id_column].isna().any() or not df[id_column].is_unique:
        raise DataError(f"id {id_column!r} is not unique and never blank; choose another with ID=")
    drafted = {str(c): infer_column(df[c], str(c)) for c in df.columns}
    column_kind = id_kind(df[id_column]) or (
        "float" if pd.api.types.is_float_dtype(df[id_column].dtype) else "string"
    )
    drafted[id_column] = Drafted(
        {"type": column_kind, "unique": True}, "the id: unique, never blank"
    )
    head: dict[str, Any] = {"name": name, "version": 1, "id": id_column, "target": target}
    if task == "binary":
        positive = guess_positive(df[target])
        reasons["positive"] = positive.reason
        drafted[target] = Drafted(
            _target_spec(df[target]), f"the target; positive: {positive.reason}"
        )
        head["positive"] = positive.value
    elif task == "multiclass":  # the classes, listed
        drafted[target] = Drafted(_target_spec(df[target]), f"the target: {reasons['task']}")
    else:  # a number with a range
        spec = {k: v for k, v in drafted[target].spec.items() if k != "values"}
        drafted[target] = Drafted(spec, f"the target: {reasons['task']}")
    raw: dict[str, Any] = {
        **head,
        "columns": {c: d.spec for c, d in drafted.items()},
        "slices": {},
        "protected": [],
        "invariances": [],
    }
    return Draft(raw, {c: d.note for c, d in drafted.items()}, reasons, task)


def to_yaml(drafted: Draft, source: str) -> str:
    """The contract as YAML with a comment above each column saying how it was derived."""
    raw = drafted.raw
    head = {k: raw[k] for k in ("name", "version", "id", "target", "positive") if k in raw}
    lines = [HEADER.format(source=source, margin=MARGIN).rstrip("\n")]
    lines.append(yaml.safe_dump(head, sort_keys=False, allow_unicode=True).rstrip("\n"))
    lines.append("columns:")
    for column, spec in raw["columns"].items():
        lines.append(f"  # {column}: {drafted.notes[column]}".replace("\n", " "))
        entry = yaml.safe_dump(
            {column: spec}, sort_keys=False, allow_unicode=True, default_flow_style=None, width=100
        )
        lines += ["  " + line for line in entry.rstrip("\n").split("\n")]
    tail = {k: raw[k] for k in ("slices", "protected", "invariances")}
    lines.append(yaml.safe_dump(tail, sort_keys=False, default_flow_style=None).rstrip("\n"))
    text = "\n".join(lines) + "\n"
    if yaml.safe_load(text) != raw:  # the comments must not change what the file says
        raise ContractError(
            "the drafted YAML does not read back as drafted (a bug: please report it)"
        )
    return text


def with_data_raw(params_text: str, data_file: Path) -> str:
    """params.yaml text with `data.raw` set, comments kept (a line edit, not a YAML rewrite)."""
    value = json.dumps(data_file.as_posix())  # a JSON string is a YAML string
    updated, count = re.subn(
        r"(?m)^(  raw: ).*$", lambda m: m.group(1) + value, params_text, count=1
    )
    if count != 1:
        raise ContractError("params.yaml: no `data.raw` line to update")
    return updated


def main(argv: list[str] | None = None) -> int:
    """Draft contract.yaml and the gates from a CSV or Parquet file; make it the pipeline's raw data."""
    parser = argparse.ArgumentParser(prog="contract", description=main.__doc__)
    parser.add_argument("--data", type=Path, required=True)
    parser.add_argument("--id", help="id column (default: guessed from the data)")
    parser.add_argument("--target", help="target column (default: guessed among two-valued ones)")
    parser.add_argument(
        "--task", help="binary, multiclass or regression (default: inferred from the target)"
    )
    parser.add_argument("--out", type=Path, default=Path("contract.yaml"))
    parser.add_argument("--params", type=Path, default=PARAMS)
    parser.add_argument("--force", action="store_true", help="overwrite an existing contract")
    parser.add_argument("--dvc-add", action="store_true", help="track the copied data with DVC")
    args = parser.parse_args(argv)
    if args.out.exists() and not args.force:
        raise RefusedError(
            f"{args.out} exists; review it by hand, or pass --force (make: FORCE=1) to redraft"
        )
    df = load_table(args.data)
    try:
        drafted = draft(df, args.data.stem, args.id or None, args.target or None, args.task or None)
    except AmbiguousTarget as error:
        commands = "\n".join(
            "  " + shlex.join(["make", "contract", f"DATA={args.data}", f"TARGET={name}"])
            for name in error.candidates
        )
        raise DataError(f"which column is the target? {error}. Choose one:\n{commands}") from None
    contract = parse_contract(drafted.raw, source=str(args.data))
    text = to_yaml(drafted, args.data.name)
    destination = RAW_DIR / f"dataset{args.data.suffix.lower()}"
    params = with_data_raw(args.params.read_text(encoding="utf-8"), destination)
    if drafted.task == "binary":
        gates = draft_gates(df, contract, args.params)
        params = with_binary_promotion(with_gates(with_task(params, "binary"), gates.text))
        summary = gates.summary
    else:
        params, summary = with_task_params(params, df, contract, drafted.task)
    params, kind_note = with_model_kind(params, drafted.task)
    parse_config(yaml.safe_load(params), str(args.params))  # a drafted file that loads
    # nothing is written until everything is drafted: a refused table leaves the project as it was
    destination.parent.mkdir(parents=True, exist_ok=True)
    if args.data.resolve() != destination.resolve():
        shutil.copyfile(args.data, destination)
    write_text(args.out, text)
    write_text(args.params, params)
    for role in ("id", "target"):
        print(f"contract: {role} {drafted.raw[role]!r} ({drafted.reasons.get(role, 'as given')})")
    print(f"contract: task {drafted.task} ({drafted.reasons['task']})")
    if "positive" in drafted.raw:
        print(
            f"contract: positive value {drafted.raw['positive']!r} ({drafted.reasons['positive']})"
        )
    print(f"contract: drafted {args.out} ({len(contract.columns)} columns); data at {destination}")
    print(f"contract: drafted {args.params} `task`, `gates` ({summary})")
    if kind_note:
        print(f"contract: note: {kind_note}")
    for note, line in (
        (
            ZERO_ONE,
            "hold only 0 and 1 and are drafted as 0/1 flags (if one counts something, give it min/max)",
        ),
        (CODES, "are whole numbers drafted as categories, as their names say codes (review them)"),
    ):
        named = [c for c, said in drafted.notes.items() if said.startswith(note)]
        if named:
            listed = ", ".join(named[:8]) + (
                f" and {len(named) - 8} more" if len(named) > 8 else ""
            )
            print(f"contract: note: {listed} {line}; see contract.yaml")
    if args.dvc_add:
        done = subprocess.run(["dvc", "add", "--quiet", str(destination)], check=False)
        if done.returncode != 0:
            raise ServiceError(f"`dvc add {destination}` failed (its message is above)")
    record(destination)  # `validate` refuses this file replaced without `make data-update`
    print("contract: next, review both files, then run `dvc repro`")
    return 0
