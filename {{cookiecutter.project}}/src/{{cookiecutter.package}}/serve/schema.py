"""Request and response models of /predict, built from the contract at run time."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    create_model,
)

from ..contract import Column, Contract

MAX_STRING = 256  # free-text ids longer than this are not ids


class RequestError(ValueError):
    """A /predict body that the contract refuses; `errors` name each field and reason."""

    def __init__(self, errors: list[dict[str, Any]]) -> None:
        super().__init__("; ".join(f"{e['field']}: {e['reason']}" for e in errors))
        self.errors = errors


class Prediction(BaseModel):
    """One scored row."""

    id: str | None = None
    score: float
    label: int


class PredictResponse(BaseModel):
    """The answer of /predict: one prediction per row, in request order."""

    model_version: str
    variant: str
    predictions: list[Prediction]


@dataclass(frozen=True)
class RequestModels:
    """The row model, the batch model and the columns they carry."""

    row: type[BaseModel]
    batch: type[BaseModel]
    columns: tuple[str, ...]
    max_batch: int


def _one_of(values: tuple[Any, ...]) -> AfterValidator:
    allowed = set(values)
    shown = ", ".join(repr(v) for v in values)

    def check(value: Any) -> Any:
        if value not in allowed:
            raise ValueError(f"must be one of {shown}")
        return value

    return AfterValidator(check)


def _naive_utc(value: datetime) -> datetime:
    # training data is conformed to naive UTC; an aware timestamp is converted, not refused
    return value.astimezone(UTC).replace(tzinfo=None) if value.tzinfo else value


def _datetime_range(low: Any, high: Any) -> AfterValidator:
    lo = datetime.fromisoformat(str(low)) if low is not None else None
    hi = datetime.fromisoformat(str(high)) if high is not None else None

    def check(value: datetime) -> datetime:
        value = _naive_utc(value)
        if (lo is not None and value < lo) or (hi is not None and value > hi):
            raise ValueError(f"must be between {low} and {high}")
        return value

    return AfterValidator(check)


def column_type(column: Column) -> Any:
    """The pydantic type of one contract column: type, range, allowed values, nullability."""
    bounds = {"ge": column.min, "le": column.max} if column.is_numeric else {}
    bounds = {k: v for k, v in bounds.items() if v is not None}
    if column.type == "integer":
        kind: Any = Annotated[int, Field(strict=True, **bounds)]
    elif column.type == "float":
        kind = Annotated[float, Field(strict=True, allow_inf_nan=False, **bounds)]
    elif column.type == "datetime":
        kind = Annotated[datetime, _datetime_range(column.min, column.max)]
    elif column.type == "category" and all(isinstance(v, str) for v in column.values or ()):
        kind = Literal[tuple(column.values or ())]
    else:
        kind = Annotated[str, Field(strict=True, min_length=1, max_length=MAX_STRING)]
    if column.values is not None and column.type in ("integer", "float"):
        kind = Annotated[kind, _one_of(tuple(column.values))]
    if column.type == "category" and not all(isinstance(v, str) for v in column.values or ()):
        kind = Annotated[str, _one_of(tuple(str(v) for v in column.values or ()))]
    return kind


def build_models(contract: Contract, max_batch: int = 1000) -> RequestModels:
    """Create the pydantic row and batch models; extra fields are refused."""
    config = ConfigDict(extra="forbid", frozen=True)
    fields: dict[str, Any] = {}
    for name in contract.feature_columns:
        column = contract.columns[name]
        kind = column_type(column)
        fields[name] = (kind | None, None) if column.nullable else (kind, ...)
    # the id is optional: a caller may send it to get it back with the score
    fields[contract.id] = (str | int | None, None)
    row = create_model(f"{contract.name.title()}Row", __config__=config, **fields)
    rows = Annotated[list[row], Field(min_length=1, max_length=max_batch)]  # type: ignore[valid-type]
    batch = create_model(f"{contract.name.title()}Batch", __config__=config, rows=(rows, ...))
    return RequestModels(row, batch, tuple(contract.feature_columns), max_batch)


def _errors(error: ValidationError) -> list[dict[str, Any]]:
    out = []
    for item in error.errors(include_url=False):
        loc = [p for p in item["loc"] if isinstance(p, (str, int))]
        field = next((p for p in reversed(loc) if isinstance(p, str)), "(body)")
        reason = item["msg"]
        if item["type"] == "extra_forbidden":
            reason = "not a contract column; extra fields are refused"
        elif item["type"] == "missing":
            reason = "required by the contract"
        out.append({"field": field, "loc": loc, "reason": reason})
    return out


def parse_rows(body: bytes, models: RequestModels) -> tuple[list[BaseModel], bool]:
    """Validate a body holding one row or `{"rows": [...]}`; return (rows, was_batch)."""
    try:
        data = json.loads(body)
    except (ValueError, UnicodeDecodeError) as error:
        reason = f"not valid JSON: {error}"
        raise RequestError([{"field": "(body)", "loc": [], "reason": reason}]) from None
    if not isinstance(data, dict):
        reason = 'expected a JSON object: one row, or {"rows": [...]}'
        raise RequestError([{"field": "(body)", "loc": [], "reason": reason}])
    batch = "rows" in data and "rows" not in models.columns
    try:
        if batch:
            return list(models.batch.model_validate(data).rows), True  # type: ignore[attr-defined]
        return [models.row.model_validate(data)], False
    except ValidationError as error:
        raise RequestError(_errors(error)) from None
