"""`make contract DATA=path`: a reviewable contract drafted from the user's own table."""

import pandas as pd
import pytest
import yaml

from {{ cookiecutter.package }}.contract import load_contract
from {{ cookiecutter.package }}.draft_contract import main
from {{ cookiecutter.package }}.validate import validate_file


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


@pytest.mark.parametrize("suffix", [".csv", ".parquet"])
def test_draft_validates_the_data_it_came_from(tmp_path, monkeypatch, suffix):
    """The drafted contract guesses id and target, and the data passes its own suite."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "params.yaml").write_text("data:\n  raw: data/raw/own.csv\n  seed: 1\n")
    source = tmp_path / f"orders{suffix}"
    table = own_table()
    table.to_csv(source, index=False) if suffix == ".csv" else table.to_parquet(source, index=False)

    assert main(["--data", str(source)]) == 0
    contract = load_contract(tmp_path / "contract.yaml")
    assert (contract.id, contract.target) == ("order_id", "returned")
    assert contract.columns["channel"].values == ("phone", "store", "web")
    assert contract.columns["placed_at"].type == "datetime"
    assert contract.columns["items"].type == "integer"
    raw = yaml.safe_load((tmp_path / "params.yaml").read_text())["data"]["raw"]
    assert raw == f"data/raw/dataset{suffix}"
    report, validated = validate_file(tmp_path / raw, contract)
    assert report["success"], report["failures"]
    assert validated is not None


def test_an_existing_contract_is_not_overwritten(tmp_path, monkeypatch, capsys):
    """Redrafting needs --force: a reviewed contract is never replaced by accident."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "contract.yaml").write_text("reviewed: true\n")
    own_table().to_csv(tmp_path / "orders.csv", index=False)
    assert main(["--data", str(tmp_path / "orders.csv")]) == 1
    assert "--force" in capsys.readouterr().err
    assert (tmp_path / "contract.yaml").read_text() == "reviewed: true\n"
