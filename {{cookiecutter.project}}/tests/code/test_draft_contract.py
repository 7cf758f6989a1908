"""`make contract DATA=path`: a reviewable contract drafted from the user's own table."""

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from {{ cookiecutter.package }}.contract import ContractError, load_contract, parse_contract
from {{ cookiecutter.package }}.draft_contract import draft, main, to_yaml
from {{ cookiecutter.package }}.errors import DataError, RefusedError, run_main
from {{ cookiecutter.package }}.pipeline.validate import validate_file

PARAMS = """\
data:
  raw: data/raw/own.csv
  seed: 1
split:
  test_size: 0.3
gates:
  judge_on: point
  auc_roc: 0.80
promotion:
  metric: roc_auc
model:
  kind: logistic_regression
rollout:
  steps: [{weight: 100, pause_s: 0}]
"""


def own_table(rows: int = 300) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "order_id": [f"O{i:05d}" for i in range(rows)],
            "amount": [10.5 + (i % 50) * 3.25 for i in range(rows)],
            "items": [1 + i % 7 for i in range(rows)],
            "channel": [("web", "store", "phone")[i % 3] for i in range(rows)],
            "placed_at": pd.date_range("2024-01-01", periods=rows, freq="6h").strftime(
                "%Y-%m-%d %H:%M:%S"
            ),
            "returned": [int(i % 5 == 0) for i in range(rows)],
        }
    )


@pytest.fixture
def project(tmp_path, monkeypatch):
    """An empty project directory with a params.yaml, as the working directory."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "params.yaml").write_text(PARAMS)
    return tmp_path


def drafted_and_validated(table: pd.DataFrame, path: Path, **roles) -> tuple:
    """Draft from the file as written, then validate that same file: (contract, report)."""
    if path.suffix == ".csv":
        table.to_csv(path, index=False)
    else:
        table.to_parquet(path, index=False)
    from {{ cookiecutter.package }}.data import load_table

    result = draft(load_table(path), path.stem, roles.get("id"), roles.get("target"))
    contract = parse_contract(yaml.safe_load(to_yaml(result, path.name)), source="drafted")
    report, _ = validate_file(path, contract)
    return contract, report


@pytest.mark.parametrize("suffix", [".csv", ".parquet"])
def test_draft_validates_the_data_it_came_from(project, suffix):
    """The drafted contract guesses id and target, and the data passes its own suite."""
    source = project / f"orders{suffix}"
    table = own_table()
    table.to_csv(source, index=False) if suffix == ".csv" else table.to_parquet(source, index=False)

    assert main(["--data", str(source)]) == 0
    contract = load_contract(project / "contract.yaml")
    assert (contract.id, contract.target) == ("order_id", "returned")
    assert contract.columns["channel"].values == ("phone", "store", "web")
    assert contract.columns["placed_at"].type == "datetime"
    assert contract.columns["items"].type == "integer"
    raw = yaml.safe_load((project / "params.yaml").read_text())["data"]["raw"]
    assert raw == f"data/raw/dataset{suffix}"
    report, validated = validate_file(project / raw, contract)
    assert report["success"], report["failures"]
    assert validated is not None


def test_an_existing_contract_is_not_overwritten(project, capsys):
    """Redrafting needs --force: a reviewed contract is never replaced by accident."""
    (project / "contract.yaml").write_text("reviewed: true\n")
    own_table().to_csv(project / "orders.csv", index=False)
    assert (
        run_main("contract", main, ["--data", str(project / "orders.csv")])
        == RefusedError.exit_code
    )
    assert "--force" in capsys.readouterr().err
    assert (project / "contract.yaml").read_text() == "reviewed: true\n"


def test_id_and_target_are_guessed_from_the_data_and_explained(project, capsys):
    """A unique text id not named *_id, a yes/no target: found from values, and the reason printed."""
    rows = 200
    table = pd.DataFrame(
        {
            "opened": pd.date_range("2023-01-01", periods=rows, freq="D").strftime("%Y-%m-%d"),
            "reference": [f"ACC{i:05d}X" for i in range(rows)],
            "visits": [i % 9 for i in range(rows)],
            "is_fraud": ["yes" if i % 7 == 0 else "no" for i in range(rows)],
            "foreign": ["Y" if i % 3 == 0 else "N" for i in range(rows)],
        }
    )
    table.to_csv(project / "log.csv", index=False)
    assert main(["--data", str(project / "log.csv")]) == 0
    out = capsys.readouterr().out
    contract = load_contract(project / "contract.yaml")
    assert (contract.id, contract.target, contract.positive) == ("reference", "is_fraud", "yes")
    assert "id 'reference' (guessed: string, unique and never blank in 200 rows" in out
    assert "target 'is_fraud' (guessed: two values" in out
    assert "also possible: foreign" in out
    assert "positive value 'yes'" in out


def test_an_integer_id_and_a_boolean_target_keep_their_types(project, tmp_path):
    """An integer id stays integer and a True/False column is boolean, so the file validates."""
    rows = 120
    table = pd.DataFrame(
        {
            "customer": np.random.default_rng(0).permutation(rows) + 5000,
            "member": [i % 2 == 0 for i in range(rows)],
            "opted_in": [None if i % 10 == 0 else i % 3 == 0 for i in range(rows)],
            "renewed": [i % 4 == 0 for i in range(rows)],
        }
    )
    contract, report = drafted_and_validated(table, tmp_path / "members.csv")
    assert report["success"], report["failures"]
    assert contract.id == "customer"
    assert contract.columns["customer"].type == "integer"
    assert contract.columns["member"].type == "boolean"
    assert contract.columns["opted_in"].type == "boolean"
    assert contract.columns["opted_in"].nullable
    assert (contract.target, contract.positive) == ("renewed", True)


def test_roles_can_be_given_and_a_bad_one_is_named(project, capsys):
    """--id/--target override the guess; a column that does not exist is named with the choices."""
    own_table().to_csv(project / "orders.csv", index=False)
    args = ["--data", str(project / "orders.csv"), "--target", "nope"]
    assert run_main("contract", main, args) == DataError.exit_code
    assert "TARGET='nope' is not a column" in capsys.readouterr().err
    assert main(["--data", str(project / "orders.csv"), "--target=returned", "--id=order_id"]) == 0
    assert "(as given)" in capsys.readouterr().out
    assert not (project / "data" / "raw" / "dataset.parquet").exists()


def test_a_table_without_an_id_is_refused_with_the_make_variable(project, capsys):
    """No unique column: the message says how to choose one with make (ID=)."""
    pd.DataFrame({"a": [1, 1, 2], "y": [0, 1, 0]}).to_csv(project / "t.csv", index=False)
    assert run_main("contract", main, ["--data", str(project / "t.csv")]) == DataError.exit_code
    assert "ID=name" in capsys.readouterr().err
    assert not (project / "contract.yaml").exists()


def test_ranges_keep_the_sign_of_the_data(tmp_path):
    """Non-negative money and counts never get a negative minimum; negative-only data no positive max."""
    rows = 200
    table = pd.DataFrame(
        {
            "row": range(rows),
            "amount": [0.5 + 1000.0 * (i % 13) for i in range(rows)],
            "count": [i % 4 for i in range(rows)],
            "fees": [-1.25 - (i % 11) for i in range(rows)],
            "balance": [(-1) ** i * 10.0 * i for i in range(rows)],
            "y": [i % 2 for i in range(rows)],
        }
    )
    contract, report = drafted_and_validated(table, tmp_path / "money.csv")
    assert report["success"], report["failures"]
    columns = contract.columns
    assert columns["amount"].min == 0.0
    assert columns["count"].min == 0
    assert -1.25 <= columns["fees"].max <= 0.0
    assert columns["fees"].min < -11.25
    assert columns["balance"].min < -1980
    assert columns["balance"].max > 1980
    for name in ("amount", "count", "fees"):
        assert columns[name].mean[0] >= columns[name].min
        assert columns[name].mean[1] <= columns[name].max
    text = to_yaml(draft(table, "money", "row", "y"), "money.csv")
    assert "no negative value seen: min kept >= 0" in text
    assert "widened by 10%" in text


def test_dates_end_near_the_data_not_today(tmp_path):
    """Data that ends a year ago gets a max near its own end; afternoons of the last day pass."""
    rows = 100
    stamps = pd.date_range("2024-01-01 08:30", "2024-12-31 17:45", periods=rows)
    table = pd.DataFrame(
        {
            "id": [f"r{i}" for i in range(rows)],
            "at": stamps.strftime("%Y-%m-%d %H:%M:%S"),
            "y": [i % 3 == 0 for i in range(rows)],
        }
    )
    contract, report = drafted_and_validated(table, tmp_path / "stamps.csv")
    assert report["success"], report["failures"]
    at = contract.columns["at"]
    assert at.type == "datetime"
    assert at.reference == "2025-01-01"
    assert pd.Timestamp("2024-12-31 17:45") < pd.Timestamp(at.max) <= pd.Timestamp("2025-02-08")
    assert pd.Timestamp(at.min) <= pd.Timestamp("2024-01-01 08:30")


def test_boolean_columns_refuse_other_values(tmp_path):
    """The boolean type admits true/false (and blanks when nullable), nothing else."""
    with pytest.raises(ContractError, match="boolean column holds true/false only"):
        parse_contract(
            {
                "name": "t",
                "id": "id",
                "target": "y",
                "columns": {
                    "id": {"type": "string"},
                    "y": {"type": "integer", "values": [0, 1]},
                    "flag": {"type": "boolean", "min": 0},
                },
            }
        )
    table = pd.DataFrame({"id": ["a", "b", "c"], "flag": [True, None, False], "y": [0, 1, 0]})
    contract, report = drafted_and_validated(table, tmp_path / "flags.csv", id="id", target="y")
    assert report["success"], report["failures"]
    pd.DataFrame({"id": ["a", "b"], "flag": ["maybe", True], "y": [0, 1]}).to_csv(
        tmp_path / "bad.csv", index=False
    )
    report, table = validate_file(tmp_path / "bad.csv", contract)
    assert not report["success"]
    assert table is None
    assert any("'flag'" in line for line in report["failures"])


def test_gates_are_drafted_relative_to_the_data(project):
    """params.yaml gets gates relative to the baselines and the prevalence, with their derivation."""
    own_table(400).to_csv(project / "orders.csv", index=False)
    assert main(["--data", str(project / "orders.csv")]) == 0
    text = (project / "params.yaml").read_text()
    gates = yaml.safe_load(text)["gates"]
    assert gates["judge_on"] == "lower_bound"
    assert gates["beat_baseline"] is True
    assert gates["min_lift_at_5pct"] == 1.0
    assert gates["auc_roc"] is None
    assert "prevalence 20.00%" in text
    assert "best single feature now is" in text
    assert "about 24 positives" in text  # 400 rows x 30% holdout x 20% positives
    assert "the intervals are wide" in text
    assert yaml.safe_load(text)["promotion"] == {"metric": "roc_auc"}  # the rest is kept


# --- property: draft then validate passes on tables of many shapes ------------------------

FEATURES = [
    "int_id",
    "str_id",
    "int",
    "float",
    "bool",
    "yesno",
    "category",
    "many_categories",
    "text",
    "date",
    "timestamp",
    "timestamp_native",
    "timestamp_offset",
    "constant",
]
TARGETS = ["01", "bool", "yesno", "YN", "words"]
SIGNS = ["positive", "negative", "mixed"]


def feature(kind: str, rows: int, rng: np.random.Generator, nulls: float, sign: str) -> list:
    """One column of `kind`; `nulls` is the share of blanks (ids never have any)."""
    scale = {"positive": 1, "negative": -1, "mixed": 0}[sign]
    if kind == "int_id":
        values = list(rng.permutation(rows) + int(rng.integers(0, 10**6)))
    elif kind == "str_id":
        values = [f"k{v:x}z" for v in rng.choice(10**7, rows, replace=False)]
    elif kind == "int":
        raw = rng.integers(0, 500, rows)
        values = list(raw * scale if scale else raw - 250)
    elif kind == "float":
        raw = np.round(rng.lognormal(2, 1.5, rows), 3)
        values = list(raw * scale if scale else raw - float(np.median(raw)))
    elif kind == "bool":
        values = list(rng.random(rows) < 0.3)
    elif kind == "yesno":
        values = list(rng.choice(["yes", "no"], rows))
    elif kind == "category":
        values = list(rng.choice([f"c{i}" for i in range(int(rng.integers(2, 30)))], rows))
    elif kind == "many_categories":
        values = list(rng.choice([f"m{i}" for i in range(int(rng.integers(31, 150)))], rows))
    elif kind == "text":
        values = [
            f"note {v} about {w}"
            for v, w in zip(rng.integers(0, 10**6, rows), rng.integers(0, 99, rows), strict=True)
        ]
    elif kind == "date":
        values = list(
            (
                pd.Timestamp("2021-06-01") + pd.to_timedelta(rng.integers(0, 900, rows), unit="D")
            ).strftime("%Y-%m-%d")
        )
    elif kind == "timestamp":
        seconds = rng.integers(0, 400 * 86400, rows)
        values = list(
            (pd.Timestamp("2023-03-01") + pd.to_timedelta(seconds, unit="s")).strftime(
                "%Y-%m-%d %H:%M:%S"
            )
        )
    elif kind in ("timestamp_native", "timestamp_offset"):
        seconds = rng.integers(0, 90 * 86400, rows)
        stamps = pd.Timestamp("2022-11-15 06:00") + pd.to_timedelta(seconds, unit="s")
        # native: datetime64 in Parquet (text in CSV); offset: ISO text with a UTC offset
        values = (
            list(stamps)
            if kind == "timestamp_native"
            else list(stamps.strftime("%Y-%m-%dT%H:%M:%S+02:00"))
        )
    else:
        values = [7.5] * rows
    if kind not in ("int_id", "str_id") and nulls:
        blank = rng.random(rows) < nulls
        blank[0] = False  # at least one value is present
        values = [None if b else v for v, b in zip(values, blank, strict=True)]
    return values


def target(kind: str, rows: int, rng: np.random.Generator, prevalence: float) -> list:
    hits = rng.random(rows) < prevalence
    hits[:2] = [True, False]  # both classes present
    labels = {
        "01": (1, 0),
        "bool": (True, False),
        "yesno": ("yes", "no"),
        "YN": ("Y", "N"),
        "words": ("approved", "rejected"),
    }[kind]
    return [labels[0] if h else labels[1] for h in hits]


@st.composite
def tables(draw):
    """A table: an id, 1-6 features of any kind, a two-valued target; nulls, signs and sizes vary."""
    rows = draw(st.integers(min_value=20, max_value=300))
    rng = np.random.default_rng(draw(st.integers(min_value=0, max_value=2**32 - 1)))
    id_kind = draw(st.sampled_from(["int_id", "str_id"]))
    columns = {"key": feature(id_kind, rows, rng, 0.0, "positive")}
    for i, kind in enumerate(draw(st.lists(st.sampled_from(FEATURES), min_size=1, max_size=6))):
        nulls = draw(st.sampled_from([0.0, 0.0, 0.1, 0.5]))
        columns[f"f{i}_{kind}"] = feature(kind, rows, rng, nulls, draw(st.sampled_from(SIGNS)))
    prevalence = draw(st.sampled_from([0.03, 0.2, 0.5]))
    columns["outcome"] = target(draw(st.sampled_from(TARGETS)), rows, rng, prevalence)
    order = draw(st.permutations(list(columns)))
    return pd.DataFrame({name: columns[name] for name in order})


@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(table=tables(), suffix=st.sampled_from([".csv", ".parquet"]), guess=st.booleans())
def test_draft_then_validate_passes_for_any_table(table, suffix, guess, tmp_path):
    """Whatever the shape of the table, the contract drafted from a file accepts that file."""
    roles = {} if guess else {"id": "key", "target": "outcome"}
    contract, report = drafted_and_validated(table, tmp_path / f"table{suffix}", **roles)
    assert report["success"], (report["failures"], contract.columns)
    for name, column in contract.columns.items():
        present = pd.to_numeric(table[name], errors="coerce").dropna()
        if column.is_numeric and column.min is not None and len(present):
            # never across zero or the data's sign
            assert column.min >= 0 if present.min() >= 0 else column.min <= present.min()
            assert column.max <= 0 if present.max() <= 0 else column.max >= present.max()


# --- the draft gets the table right and says what to do -------------------------------------


def test_an_outcome_name_wins_over_a_two_valued_attribute(project, capsys):
    """`survived` is the target, not `sex` (also two-valued, and later in the table)."""
    rows = 300
    pd.DataFrame(
        {
            "name": [f"Passenger {i}" for i in range(rows)],
            "survived": ["yes" if i % 3 == 0 else "no" for i in range(rows)],
            "age": [20 + i % 50 for i in range(rows)],
            "sex": ["female" if i % 2 else "male" for i in range(rows)],
        }
    ).to_csv(project / "people.csv", index=False)
    assert main(["--data", str(project / "people.csv")]) == 0
    out = capsys.readouterr().out
    assert "target 'survived' (guessed: two values, never blank; its name says outcome" in out
    assert "also possible: sex" in out


def test_an_outcome_word_beats_flag_prefixes(project, capsys):
    """`churned` is the target; `is_senior` and `is_enterprise` are attributes named as flags,
    weaker evidence than an outcome word. Two flags alone would still tie."""
    rows = 300
    pd.DataFrame(
        {
            "customer_id": [f"C{i}" for i in range(rows)],
            "is_senior": [i % 4 == 0 for i in range(rows)],
            "is_enterprise": [i % 5 == 0 for i in range(rows)],
            "tenure": [i % 60 for i in range(rows)],
            "churned": [int(i % 3 == 0) for i in range(rows)],
        }
    ).to_csv(project / "customers.csv", index=False)
    assert main(["--data", str(project / "customers.csv")]) == 0
    assert "target 'churned' (guessed" in capsys.readouterr().out
    pd.read_csv(project / "customers.csv").drop(columns="churned").to_csv(
        project / "flags.csv", index=False
    )
    (project / "contract.yaml").unlink()
    code = run_main("contract", main, ["--data", str(project / "flags.csv")])
    assert code == DataError.exit_code
    assert "is_senior, is_enterprise" in capsys.readouterr().err


def test_two_equally_plausible_targets_stop_with_the_commands(project, capsys):
    """Neither named like an outcome: nothing is drafted, both are named with the exact command."""
    rows = 200
    pd.DataFrame(
        {
            "key": range(rows),
            "married": [i % 2 == 0 for i in range(rows)],
            "treat": [i % 3 == 0 for i in range(rows)],
            "age": [30 + i % 20 for i in range(rows)],
        }
    ).to_csv(project / "jobs.csv", index=False)
    code = run_main("contract", main, ["--data", str(project / "jobs.csv")])
    assert code == DataError.exit_code
    err = capsys.readouterr().err
    assert "married, treat" in err
    for name in ("married", "treat"):
        assert f"make contract DATA={project / 'jobs.csv'} TARGET={name}" in err
    assert not (project / "contract.yaml").exists()


def test_integer_codes_are_categories_and_a_zero_one_column_is_said(project, capsys):
    """Codes named so (StoreID, MOSTYPE) become categories; a 0/1 integer is a flag, said aloud."""
    rows = 300
    pd.DataFrame(
        {
            "key": range(rows),
            "StoreID": [(1, 2, 3, 4, 7)[i % 5] for i in range(rows)],
            "MOSTYPE": [1 + i % 41 for i in range(rows)],
            "children": [i % 2 for i in range(rows)],
            "income": [1000 + 37 * i for i in range(rows)],
            "bought": ["yes" if i % 4 == 0 else "no" for i in range(rows)],
        }
    ).to_csv(project / "shop.csv", index=False)
    assert main(["--data", str(project / "shop.csv")]) == 0
    out = capsys.readouterr().out
    contract = load_contract(project / "contract.yaml")
    assert contract.columns["StoreID"].type == "category"
    assert list(contract.columns["StoreID"].values) == [1, 2, 3, 4, 7]
    assert contract.columns["MOSTYPE"].encoding == "frequency"  # 41 codes
    assert contract.columns["income"].type == "integer"
    assert "StoreID, MOSTYPE are whole numbers drafted as categories" in out
    assert "children hold only 0 and 1 and are drafted as 0/1 flags" in out
    text = (project / "contract.yaml").read_text()
    assert "if it counts something, replace `values` with `min: 0` and a `max`" in text
    report, _ = validate_file(project / "data" / "raw" / "dataset.csv", contract)
    assert report["success"], report["failures"]


def test_baseline_gate_is_drafted_as_the_holdout_allows(project):
    """One feature with nearly all the signal: non-inferiority with a stated margin; room left:
    superiority. The comment says which, and why."""
    rng = np.random.default_rng(7)
    rows = 3000
    balance = rng.normal(0, 1, rows)
    strong = pd.DataFrame(
        {
            "key": range(rows),
            "balance": balance,
            "noise": rng.normal(0, 1, rows),
            "default": np.where(balance + rng.normal(0, 0.25, rows) > 1.6, "Yes", "No"),
        }
    )
    strong.to_csv(project / "credit.csv", index=False)
    assert main(["--data", str(project / "credit.csv")]) == 0
    text = (project / "params.yaml").read_text()
    gates = yaml.safe_load(text)["gates"]
    assert gates["beat_baseline"] is True
    assert gates["baseline_margin"] > 0
    assert "no model could show a gain here" in text
    assert f"baseline_margin: {gates['baseline_margin']}" in text
    weak = strong.assign(default=np.where(balance + rng.normal(0, 2.0, rows) > 1.0, "Yes", "No"))
    weak.to_csv(project / "credit.csv", index=False)
    assert main(["--data", str(project / "credit.csv"), "--force"]) == 0
    gates = yaml.safe_load((project / "params.yaml").read_text())["gates"]
    assert gates["baseline_margin"] == 0.0  # room for a gain the holdout can show
