"""Request and response models of /predict, built from the contract at run time."""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    TypeAdapter,
    ValidationError,
    create_model,
)

from ..contract import Column, Contract
from .task_schema import class_model, value_model

MAX_STRING = 256  # free-text ids longer than this are not ids
# Rows are flat: `{"rows": [{...}]}` is three levels. Deeper bodies are refused before parsing,
# since the JSON parser recurses once per level and fails (RecursionError) near a thousand.
MAX_DEPTH = 8
# escapes go first, so that no quote inside a string is left; both patterns scan linearly
_ESCAPE = re.compile(rb"\\.", re.DOTALL)
_STRING = re.compile(rb'"[^"]*"')
_BRACKETS = bytes(range(256)).translate(None, b"[]{}")  # every byte that is not a bracket
_NOT_UTF8 = (b"\xff\xfe", b"\xfe\xff", b"\x00")  # UTF-16/32 byte-order marks and their zero bytes


class RequestError(ValueError):
    """A /predict body that the contract refuses; `errors` name each field and reason."""

    def __init__(self, errors: list[dict[str, Any]], status: int = 422) -> None:
        super().__init__("; ".join(f"{e['field']}: {e['reason']}" for e in errors))
        self.errors = errors
        self.status = status


def body_error(reason: str, status: int = 422) -> RequestError:
    """An error about the body as a whole rather than one field."""
    return RequestError([{"field": "(body)", "loc": [], "reason": reason}], status)


class Prediction(BaseModel):
    """One scored row."""

    id: str | None = None
    score: float
    label: str | int | bool  # the target's own value (e.g. "yes"); see target_labels


def _native(value: Any) -> Any:
    return value.item() if hasattr(value, "item") else value


def target_labels(contract: Contract) -> tuple[Any, Any]:
    """(the other value, the positive value) of the target, as the table writes them.

    A prediction's label speaks the table's language: `yes`/`no`, `CH`/`MM`, True/False or 0/1.
    """
    column = contract.columns[contract.target]
    values = (False, True) if column.type == "boolean" else tuple(column.values or (0, 1))
    positive = next((v for v in values if str(v) == str(contract.positive)), contract.positive)
    others = [v for v in values if str(v) != str(positive)]
    return _native(others[0] if others else 0), _native(positive)


def prediction_model(contract: Contract) -> type[BaseModel]:
    """The `Prediction` of this contract: its label is one of the target's two values."""
    negative, positive = target_labels(contract)
    target = contract.target
    labels: Any = Literal[positive, negative]  # the contract's two values, known at run time
    return create_model(
        "Prediction",
        __base__=Prediction,
        score=(
            float,
            Field(description=f"probability that `{target}` is {positive!r} (the positive class)"),
        ),
        label=(
            labels,
            Field(
                description=f"`{target}` as the table writes it: {positive!r} (the positive class) "
                f"when score >= params.yaml evaluate.threshold, else {negative!r}"
            ),
        ),
    )


# a task's Prediction; binary's names the positive class (multiclass/regression: task_schema.py)
PREDICTION_MODELS: dict[str, Callable[[Contract, Sequence[Any]], type[BaseModel]]] = {
    "binary": lambda contract, classes: prediction_model(contract),
    "multiclass": class_model,
    "regression": value_model,
}


def response_model(
    contract: Contract, task: str = "binary", classes: Sequence[Any] = ()
) -> type[BaseModel]:
    """The /predict answer of this contract and task (a multiclass model's `classes`)."""
    row = PREDICTION_MODELS[task](contract, classes)
    return create_model(
        "PredictResponse",
        __base__=PredictResponse,
        predictions=(list[row], ...),  # type: ignore[valid-type]
    )


class PredictResponse(BaseModel):
    """The answer of /predict: one prediction per row, in request order."""

    request_id: str
    model_version: str
    variant: str
    predictions: list[Prediction]


class FieldError(BaseModel):
    """What is wrong with one field, or with the body as a whole (`field` is "(body)")."""

    field: str
    loc: list[str | int]
    reason: str


class Refusal(BaseModel):
    """A 4xx answer: each problem named."""

    detail: list[FieldError]


class Failure(BaseModel):
    """A 5xx answer: what went wrong on the server's side."""

    detail: str


ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    400: {"model": Refusal, "description": "the body is not UTF-8"},
    413: {"model": Refusal, "description": "the body is larger than serve.max_body_bytes"},
    415: {"model": Refusal, "description": "not application/json in utf-8"},
    422: {"model": Refusal, "description": "not JSON, or refused by the contract"},
    500: {"model": Failure, "description": "an error on the server's side (counted)"},
    503: {"model": Failure, "description": "too many requests in progress; see Retry-After"},
}


@dataclass(frozen=True)
class RequestModels:
    """The row model, the batch model and the columns they carry."""

    row: type[BaseModel]
    batch: type[BaseModel]
    columns: tuple[str, ...]
    max_batch: int


def _values(values: tuple[Any, ...]) -> Any:
    """The allowed values, checked and published in the request schema."""
    return Field(json_schema_extra={"enum": list(values)})


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
    if value.tzinfo is None:
        return value
    try:
        return value.astimezone(UTC).replace(tzinfo=None)
    except OverflowError:  # e.g. 0001-01-01T00:00+01:00 is before year 1 in UTC
        raise ValueError("is outside the representable dates once converted to UTC") from None


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
    # Field(ge=None) is no bound, the same as leaving it out
    low, high = (column.min, column.max) if column.is_numeric else (None, None)
    if column.type == "integer":
        kind: Any = Annotated[int, Field(strict=True, ge=low, le=high)]
    elif column.type == "float":
        kind = Annotated[float, Field(strict=True, allow_inf_nan=False, ge=low, le=high)]
    elif column.type == "datetime":
        # JSON Schema has no date range: the bounds are stated for readers of the schema
        bounds_text = f"between {column.min} and {column.max}; UTC when no offset is given"
        kind = Annotated[
            datetime,
            _datetime_range(column.min, column.max),
            Field(description=f"ISO 8601 date-time {bounds_text}"),
        ]
    elif column.type == "boolean":
        kind = Annotated[bool, Field(strict=True)]  # JSON true/false; "yes" or 1 are refused
    elif column.type == "category" and all(isinstance(v, str) for v in column.values or ()):
        kind = Literal[tuple(column.values or ())]
    else:
        kind = Annotated[str, Field(strict=True, min_length=1, max_length=MAX_STRING)]
    if column.values is not None and column.type in ("integer", "float"):
        kind = Annotated[kind, _one_of(tuple(column.values)), _values(tuple(column.values))]
    if column.type == "category" and not all(isinstance(v, str) for v in column.values or ()):
        shown = tuple(str(v) for v in column.values or ())
        # whole-number codes arrive as JSON numbers (the table's 7) or as text ("7", as the
        # holdout and golden rows replay them): the same category either way
        code: Any = Annotated[str, Field(strict=True)] | Annotated[int, Field(strict=True)]
        kind = Annotated[code, AfterValidator(str), _one_of(shown), _values(shown)]
    return kind


def _id_field(column: Column) -> tuple[Any, Any]:
    """The id is echoed back with the score: a bounded string or a 64-bit integer."""
    text = Annotated[str, Field(strict=True, min_length=1, max_length=MAX_STRING)]
    number = Annotated[int, Field(strict=True, ge=-(2**63), le=2**63 - 1)]
    kind: Any = text | number
    return (kind | None, None) if column.nullable else (kind, ...)


def build_models(contract: Contract, max_batch: int = 1000) -> RequestModels:
    """Create the pydantic row and batch models; extra fields are refused."""
    config = ConfigDict(extra="forbid", frozen=True)
    fields: dict[str, Any] = {}
    for name in contract.feature_columns:
        column = contract.columns[name]
        kind = column_type(column)
        fields[name] = (kind | None, None) if column.nullable else (kind, ...)
    fields[contract.id] = _id_field(contract.columns[contract.id])
    row = create_model(f"{contract.name.title()}Row", __config__=config, **fields)
    rows = Annotated[list[row], Field(min_length=1, max_length=max_batch)]
    batch = create_model(f"{contract.name.title()}Batch", __config__=config, rows=(rows, ...))
    return RequestModels(row, batch, tuple(contract.feature_columns), max_batch)


def request_body_schema(models: RequestModels) -> tuple[dict[str, Any], dict[str, Any]]:
    """The JSON schema of a /predict body (one row or a batch) and the definitions it refers to."""
    # a union of two models made at run time is a valid type form that mypy cannot see
    adapter: TypeAdapter[Any] = TypeAdapter(models.row | models.batch)  # type: ignore[arg-type]
    schema = adapter.json_schema(ref_template="#/components/schemas/{model}")
    return {k: v for k, v in schema.items() if k != "$defs"}, schema.get("$defs", {})


def _errors(error: ValidationError) -> list[dict[str, Any]]:
    out = []
    for item in error.errors(include_url=False, include_input=False):
        loc = [p for p in item["loc"] if isinstance(p, (str, int))]
        # the column is the first name after an optional ("rows", index); later parts are
        # pydantic's union branches ("str", "int")
        names = loc[2:] if loc[:1] == ["rows"] and len(loc) > 2 else loc
        field = next((p for p in names if isinstance(p, str)), "(body)")
        reason = item["msg"]
        if item["type"] == "extra_forbidden":
            reason = "not a contract column; extra fields are refused"
        elif item["type"] == "missing":
            reason = "required by the contract"
        out.append({"field": field, "loc": loc, "reason": reason})
    return out


ACCEPTED_TYPES = ("application/json",)


def media_type_error(content_type: str | None) -> RequestError | None:
    """415 unless the body is declared JSON (or not declared at all) in UTF-8."""
    if content_type is None:
        return None  # curl -d and many clients send none; the body is still parsed strictly
    kind, _, options = content_type.partition(";")
    kind = kind.strip().lower()
    if kind not in ACCEPTED_TYPES and not kind.endswith("+json"):
        return body_error(f"content-type {kind!r}: send application/json", 415)
    for option in options.split(";"):
        name, _, value = option.partition("=")
        if name.strip().lower() == "charset" and value.strip('" ').lower() not in ("utf-8", "utf8"):
            return body_error(f"content-type {content_type!r}: send JSON in utf-8", 415)
    return None


def nesting_depth(body: bytes) -> int:
    """How deeply arrays and objects nest in a JSON text (brackets inside strings do not count)."""
    if body.count(b"[") + body.count(b"{") <= MAX_DEPTH:
        return body.count(b"[") + body.count(b"{")  # an upper bound, and small: no scan needed
    depth = deepest = 0
    for char in _STRING.sub(b"", _ESCAPE.sub(b"", body)).translate(None, _BRACKETS):
        depth += 1 if char in b"[{" else -1
        deepest = max(deepest, depth)
        if deepest > MAX_DEPTH:
            break  # deep enough to refuse: the rest need not be read
    return deepest


def decode_json(body: bytes) -> Any:
    """The JSON value of a UTF-8 body that nests at most MAX_DEPTH levels."""
    if body.startswith(_NOT_UTF8[:2]) or _NOT_UTF8[2] in body:
        raise body_error("the body looks like UTF-16 or UTF-32: send JSON encoded as UTF-8", 400)
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as error:
        raise body_error(
            f"the body is not UTF-8 (byte {error.start}): send UTF-8 JSON", 400
        ) from None
    if nesting_depth(body) > MAX_DEPTH:
        raise body_error(f"JSON nested more than {MAX_DEPTH} levels deep; rows are flat objects")
    try:
        return json.loads(text)
    except (ValueError, RecursionError) as error:
        raise body_error(f"not valid JSON: {error}") from None


def parse_rows(body: bytes, models: RequestModels) -> tuple[list[BaseModel], bool]:
    """Validate a body holding one row or `{"rows": [...]}`; return (rows, was_batch)."""
    data = decode_json(body)
    if not isinstance(data, dict):
        raise body_error('expected a JSON object: one row, or {"rows": [...]}')
    batch = "rows" in data and "rows" not in models.columns
    try:
        if batch:
            return list(models.batch.model_validate(data).rows), True  # type: ignore[attr-defined]
        return [models.row.model_validate(data)], False
    except ValidationError as error:
        raise RequestError(_errors(error)) from None
