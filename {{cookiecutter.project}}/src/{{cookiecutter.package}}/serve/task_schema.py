"""The /predict answer of a regression or multiclass model, as the OpenAPI schema publishes it."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, create_model

from ..contract import Contract


class ValuePrediction(BaseModel):
    """One predicted value."""

    id: str | None = None
    value: float


class ClassPrediction(BaseModel):
    """The most probable class and every class's probability."""

    id: str | None = None
    label: str | int
    probabilities: Any


def value_model(contract: Contract, classes: Sequence[Any] = ()) -> type[BaseModel]:
    """A regression's `Prediction`: the predicted target."""
    return create_model(
        "Prediction",
        __base__=ValuePrediction,
        value=(float, Field(description=f"the predicted `{contract.target}`")),
    )


def class_model(contract: Contract, classes: Sequence[Any]) -> type[BaseModel]:
    """A multiclass `Prediction`: the label is one of the classes, each with its probability."""
    target = contract.target
    # one required property per class, named as the table writes the class (any text)
    fields: dict[str, Any] = {
        f"class_{i}": (float, Field(alias=str(c), ge=0.0, le=1.0)) for i, c in enumerate(classes)
    }
    probabilities = create_model(
        "Probabilities",
        __config__=ConfigDict(extra="forbid", populate_by_name=True),
        __doc__=f"The probability of each class of `{target}`; they sum to 1.",
        **fields,
    )
    labels: Any = Literal[tuple(classes)]  # the contract's classes, known at run time
    return create_model(
        "Prediction",
        __base__=ClassPrediction,
        label=(labels, Field(description=f"`{target}`: the class with the highest probability")),
        probabilities=(probabilities, ...),
    )
