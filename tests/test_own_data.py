"""dataset=own on tables the sample generators never made: `make contract`, then `dvc repro`.

Each case uses only what `make contract` drafted (contract.yaml and params.yaml `gates`); the
README's own-data commands run exactly as written.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from .conftest import bake, run, tool_env
from .own_tables import write

pytestmark = pytest.mark.slow
VENV = Path(sys.prefix)


def own_project(tmp_path: Path, **answers: str) -> Path:
    return bake(tmp_path / "bake", dataset="own", **answers)


def make_contract(
    project: Path, data: Path | str, check: bool = True, **roles: str
) -> subprocess.CompletedProcess[str]:
    extra = [f"{k}={v}" for k, v in roles.items()]
    return run(["make", "contract", f"DATA={data}", f"VENV={VENV}", *extra], project, check=check)


def repro_is_green(project: Path) -> None:
    """`dvc repro` passed the gate and promoted the first model."""
    result = run(["dvc", "repro"], project)
    assert "gate: all" in result.stdout
    gate = json.loads((project / "metrics" / "gate.json").read_text())
    assert gate["passed"]
    assert gate["judge_on"] == "lower_bound"  # the drafted gates, judged on intervals
    assert {c["id"] for c in gate["checks"]} >= {"beat_baseline", "min_lift_at_5pct"}
    promotion = json.loads((project / "metrics" / "promotion.json").read_text())
    assert promotion["decision"] == "promoted", promotion["reason"]


@pytest.mark.parametrize(
    ("table", "suffix", "answers", "roles", "guessed"),
    [
        # rare positives (about 4%), money that is never negative, a 0/1 target
        ("loan_book", ".csv", {"model": "logistic_regression"}, {}, ("loan_id", "defaulted", "1")),
        # integer ids, booleans (one nullable), nullable numbers, 120 stores; target named in make
        ("mixed_types", ".csv", {}, {"TARGET": "renewed"}, ("customer", "renewed", "True")),
        # a text id not named *_id, in the middle; negative-only fees; a closed/open target
        ("account_log", ".parquet", {}, {}, ("account", "status", "'closed'")),
    ],
)
def test_own_table_reaches_a_green_repro(tmp_path, table, suffix, answers, roles, guessed):
    """make contract guesses the roles from the values, and the drafted files give a green run."""
    project = own_project(tmp_path, **answers)
    data = write(table, tmp_path, suffix)
    out = make_contract(project, data, **roles).stdout
    id_, target, positive = guessed
    assert f"contract: id '{id_}' (guessed: " in out
    reason = "as given" if roles else "guessed: "
    assert f"contract: target '{target}' ({reason}" in out
    assert f"contract: positive value {positive} (" in out
    assert (project / f"data/raw/dataset{suffix}.dvc").is_file()
    repro_is_green(project)


def readme_block(project: Path) -> str:
    """The first bash block of the baked README's own-data section."""
    readme = (project / "README.md").read_text()
    section = readme.split("## Bring your own data", 1)[1].split("\n## ", 1)[0]
    return re.search(r"```bash\n(.*?)```", section, re.DOTALL).group(1)


def test_readme_walkthrough_works_as_written(tmp_path):
    """The README's own-data commands, run verbatim on a card log (yes/no target, times of day)."""
    project = own_project(tmp_path)
    block = readme_block(project)
    assert "make contract DATA=path/to/data.csv" in block
    assert "dvc repro" in block
    source = write("card_transactions", tmp_path)
    (project / "path" / "to").mkdir(parents=True)
    (project / "path" / "to" / "data.csv").write_bytes(source.read_bytes())
    env = {**tool_env(project), "VENV": str(VENV)}
    done = run(["bash", "-euo", "pipefail", "-c", block], project, env=env)
    assert "contract: id 'transaction' (guessed: string, unique" in done.stdout
    assert "contract: target 'is_fraud' (guessed: " in done.stdout
    assert "contract: positive value 'yes'" in done.stdout
    contract = yaml.safe_load((project / "contract.yaml").read_text())
    assert contract["columns"]["timestamp"]["type"] == "datetime"
    assert contract["columns"]["timestamp"]["max"] < "2025-03-01"  # the data ends in 2024
    gate = json.loads((project / "metrics" / "gate.json").read_text())
    assert gate["passed"]
    promotion = json.loads((project / "metrics" / "promotion.json").read_text())
    assert promotion["decision"] == "promoted", promotion["reason"]


def test_a_red_gate_names_the_key_and_editing_it_turns_green(tmp_path):
    """One informative feature: the model cannot beat it; each failure names the key to edit."""
    project = own_project(tmp_path)
    import pandas as pd

    loans = pd.read_csv(write("loan_book", tmp_path))
    single = tmp_path / "one_feature.csv"
    loans[["loan_id", "credit_score", "defaulted"]].to_csv(single, index=False)
    make_contract(project, single)
    params = project / "params.yaml"
    # 45 holdout positives cannot show a gain over credit_score: drafted as non-inferiority
    assert yaml.safe_load(params.read_text())["gates"]["baseline_margin"] > 0
    # a team that asks for a gain anyway (superiority) gets a red gate that names its key
    params.write_text(
        re.sub(r"(?m)^  baseline_margin: .*$", "  baseline_margin: 0.0", params.read_text())
    )
    red = run(["dvc", "repro"], project, check=False)
    assert red.returncode != 0
    gate = json.loads((project / "metrics" / "gate.json").read_text())
    keys = [c["key"] for c in gate["checks"] if not c["passed"]]
    assert "params.yaml: gates.beat_baseline" in keys  # the model adds nothing to credit_score
    text = params.read_text()
    for key in keys:
        assert f"edit {key}." in red.stderr
        # do what the message says: edit that key (here: turn the gate off)
        name = key.removeprefix("params.yaml: gates.")
        off = "false" if name == "beat_baseline" else "null"
        text, count = re.subn(rf"(?m)^  {name}: .*$", f"  {name}: {off}", text, count=1)
        assert count == 1, key
    params.write_text(text)
    run(["dvc", "repro"], project)
    assert json.loads((project / "metrics" / "gate.json").read_text())["passed"]


def test_make_contract_passes_hostile_values_as_they_are(tmp_path):
    """Quotes, `$(...)`, `;` and spaces in DATA/ID/TARGET reach the program, never the shell."""
    project = own_project(tmp_path)
    canary = tmp_path / "pwned"
    for value in (f'x"; touch {canary}; echo "', f"$(shell touch {canary})", f"`touch {canary}`"):
        result = run(["make", "contract", f"DATA={value}", f"VENV={VENV}"], project, check=False)
        assert result.returncode != 0
        assert "contract: " in result.stderr and "file" in result.stderr
        assert not canary.exists(), value
    spaced = tmp_path / "my loans (2024); final.csv"
    spaced.write_bytes(write("account_log", tmp_path).read_bytes())
    result = run(
        [
            "make",
            "contract",
            f"DATA={spaced}",
            f"VENV={VENV}",
            f"ID=$(shell touch {canary})",
            f"TARGET=`touch {canary}`",
        ],
        project,
        check=False,
    )
    assert "ID='$(shell touch" in result.stderr
    assert not canary.exists()
    out = make_contract(project, spaced, ID="account", TARGET="status").stdout
    assert "contract: target 'status' (as given)" in out
    assert (project / "data/raw/dataset.csv.dvc").is_file()
