"""The pre-generation hook refuses bad answers with a message that says what to type."""

from __future__ import annotations

import pytest
from cookiecutter.exceptions import FailedHookException

from .conftest import bake


@pytest.mark.parametrize(
    ("answers", "message"),
    [
        ({"project": "a/b"}, "one directory name"),
        ({"project": "..\\evil"}, "one directory name"),
        ({"project": ".hidden"}, "not hidden"),
        ({"package": "2fast"}, "not a Python identifier"),
        ({"package": "my-model"}, "type e.g. my_model"),
        ({"package": "class"}, "type e.g. class_model"),
        ({"package": "Churn"}, "use lower case, e.g. churn"),
        ({"package": "pandas"}, "would shadow"),
    ],
    ids=lambda value: str(value) if isinstance(value, str) else "-".join(value.values()),
)
def test_bad_answers_are_refused(tmp_path, capfd, answers, message):
    """Exit 1 before any file is written, naming the answer and a valid alternative."""
    with pytest.raises(FailedHookException):
        bake(tmp_path, **answers)
    assert message in capfd.readouterr().err
    assert not [p for p in tmp_path.rglob("*") if p.is_file()]


def test_unknown_choice_is_refused_by_cookiecutter(tmp_path):
    """A choice outside the list never reaches the hooks: cookiecutter refuses it first."""
    with pytest.raises(ValueError, match="iris"):
        bake(tmp_path, dataset="iris")
    assert not list(tmp_path.iterdir())
