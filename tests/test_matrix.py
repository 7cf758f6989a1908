"""The bake matrix is read from cookiecutter.json and covers every pair of option values."""

from __future__ import annotations

import itertools
import json

import pytest

from .conftest import CHOICES, MATRIX, TEMPLATE, pairwise


def uncovered(rows: list[dict[str, str]], choices: dict[str, list[str]]) -> set[tuple]:
    """Pairs of option values that no row combines."""
    return {
        (a, x, b, y)
        for a, b in itertools.combinations(choices, 2)
        for x in choices[a]
        for y in choices[b]
        if not any(row[a] == x and row[b] == y for row in rows)
    }


def test_choices_come_from_cookiecutter_json():
    """A new option or value in cookiecutter.json reaches the matrix without a test edit."""
    answers = json.loads((TEMPLATE / "cookiecutter.json").read_text())
    listed = {k: v for k, v in answers.items() if isinstance(v, list) and not k.startswith("_")}
    assert listed == CHOICES
    assert {"dataset", "model", "python_version", "deploy_target"} <= CHOICES.keys()


def test_matrix_covers_every_pair_in_few_rows():
    """Every pair of answers is baked together somewhere, in few rows: the two largest options
    crossed, and one row more where they cannot hold every pair (four three-valued options and
    a two-valued one cannot share 9 rows: any 5 of those 9 hold a full line, so the two-valued
    option would miss a pair)."""
    assert not uncovered(MATRIX, CHOICES)
    sizes = sorted((len(v) for v in CHOICES.values()), reverse=True)
    assert sizes[0] * sizes[1] <= len(MATRIX) <= sizes[0] * sizes[1] + 1


@pytest.mark.parametrize(
    "choices",
    [
        {"a": ["1", "2"], "b": ["1", "2"], "c": ["1", "2"], "d": ["1", "2"], "e": ["1", "2"]},
        {"a": ["x", "y", "z"], "b": ["p", "q"], "c": ["m", "n", "o", "k"]},
    ],
    ids=["needs-extra-rows", "uneven"],
)
def test_pairwise_on_other_option_sets(choices):
    """Where no full column exists, extra rows still cover every pair."""
    rows = pairwise(choices)
    assert not uncovered(rows, choices)
    assert all(set(row) == set(choices) for row in rows)
