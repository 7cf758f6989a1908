"""The data contract: one file that says everything about every column."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd
import yaml
from pydantic import ConfigDict, Field, model_validator

from .errors import ConfigError
from .typed import Frozen, parse

ColumnType = Literal["string", "integer", "float", "category", "datetime", "boolean"]
NUMERIC_TYPES = ("integer", "float")


class ContractError(ConfigError):
    """The contract file is missing or says something impossible."""


class Column(Frozen):
    """What one column must look like."""

    name: str = ""
    type: ColumnType
    nullable: bool = False
    unique: bool = False
    min: float | str | None = None
    max: float | str | None = None
    values: tuple[Any, ...] | None = None
    mean: tuple[float, float] | None = None
    encoding: Literal["onehot", "frequency"] = "onehot"
    reference: str | None = None  # datetime columns: "days since" is measured to this date

    @model_validator(mode="after")
    def _consistent(self) -> Column:
        low, high = self.min, self.max
        # a number with a number, a date (text) with a date: a mixed pair is not compared
        comparable = isinstance(low, str) == isinstance(high, str)
        if low is not None and high is not None and comparable and low > high:  # type: ignore[operator]  # same kind, checked above
            raise ValueError(f"min {self.min!r} is greater than max {self.max!r}")
        if self.type == "boolean" and (
            self.min is not None or self.max is not None or self.values or self.mean
        ):
            raise ValueError("a boolean column holds true/false only: no min, max, values or mean")
        if self.type == "category" and not self.values:
            raise ValueError("a category column needs `values: [...]`")
        if self.mean is not None and self.mean[0] > self.mean[1]:
            raise ValueError(f"mean range {list(self.mean)} is not [low, high]")
        if self.type == "datetime" and self.reference is None:
            raise ValueError(
                "a datetime column needs `reference: YYYY-MM-DD` for days-since features"
            )
        return self

    @property
    def is_numeric(self) -> bool:
        """True for integer and float columns without a fixed set of values."""
        return self.type in NUMERIC_TYPES and self.values is None


class Invariance(Frozen):
    """Changing `column` from `from_value` to `to_value` moves the prediction in `direction`."""

    model_config = ConfigDict(populate_by_name=True)  # merged with Frozen's

    name: str
    column: str
    from_value: Any = Field(alias="from")
    to_value: Any = Field(alias="to")
    direction: Literal["increase", "decrease"]
    min_share: float = Field(0.9, gt=0.0, le=1.0)
    # multiclass only: the class whose probability moves (a regression moves its value, a
    # binary model its positive score)
    outcome: Any = None


class Contract(Frozen):
    """A validated `contract.yaml`."""

    name: str
    version: int = 1
    id: str
    target: str
    positive: Any = 1
    columns: dict[str, Column]
    slices: dict[str, dict[str, Any]] = Field(default_factory=dict)
    protected: tuple[str, ...] = ()
    invariances: tuple[Invariance, ...] = ()

    @model_validator(mode="after")
    def _references_exist(self) -> Contract:
        known = set(self.columns)
        for role, name in (("id", self.id), ("target", self.target)):
            if name not in known:
                raise ValueError(f"{role} column {name!r} is not listed under `columns`")
        for slice_name, where in self.slices.items():
            for column in where:
                if column not in known:
                    raise ValueError(f"slice {slice_name!r} uses unknown column {column!r}")
        for column in self.protected:
            if column not in known:
                raise ValueError(f"protected attribute {column!r} is not listed under `columns`")
        for inv in self.invariances:
            if inv.column not in self.feature_columns:
                raise ValueError(f"invariance {inv.name!r} uses {inv.column!r}, not a feature")
        return self

    @property
    def feature_columns(self) -> list[str]:
        """Columns the model sees: all but the id and the target."""
        return [c for c in self.columns if c not in (self.id, self.target)]

    @property
    def slice_columns(self) -> list[str]:
        """Columns the slices are defined on, each once, in contract order."""
        used = {column for where in self.slices.values() for column in where}
        return [c for c in self.columns if c in used]

    @property
    def fingerprint(self) -> str:
        """Hash of what a model depends on: feature names, types and allowed values."""
        schema = {
            name: [col.type, list(col.values) if col.values else None]
            for name, col in self.columns.items()
            if name != self.id
        }
        schema["__target__"] = [self.target, self.positive]  # type: ignore[list-item]  # not a column: the target and its positive value
        blob = json.dumps(schema, sort_keys=True, default=str).encode()
        return hashlib.sha256(blob).hexdigest()[:16]

    def slice_mask(self, df: pd.DataFrame, name: str) -> np.ndarray:
        """Rows of `df` in slice `name`: equality, or [low, high] for a two-item list."""
        mask = np.ones(len(df), dtype=bool)
        for column, wanted in self.slices[name].items():
            values = df[column]
            if isinstance(wanted, list) and len(wanted) == 2:
                mask &= values.between(wanted[0], wanted[1]).to_numpy()
            else:
                mask &= (values == wanted).to_numpy()
        return mask


def parse_contract(raw: dict[str, Any], source: str = "contract") -> Contract:
    """Validate a contract given as a mapping; errors name the field."""
    if not isinstance(raw, dict):
        raise ContractError(f"{source}: expected a mapping at the top level")
    columns = raw.get("columns")
    if isinstance(columns, dict):
        raw = {**raw, "columns": {n: {**(c or {}), "name": n} for n, c in columns.items()}}
    return parse(Contract, raw, f"{source} is not a valid contract", ContractError)


def load_contract(path: str | Path = "contract.yaml") -> Contract:
    """Read and validate the contract file."""
    path = Path(path)
    if not path.is_file():
        raise ContractError(
            f"{path}: contract not found. For your own data run `make contract DATA=path/to/file`."
        )
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as error:
        raise ContractError(f"{path}: not valid YAML: {error}") from None
    return parse_contract(raw, source=str(path))
