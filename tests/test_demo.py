"""`make demo` (demo/story.py): its drifted batch really drifts and the retrained v2 really wins.

The demo itself runs minutes of servers and pipelines and is not part of `make test`; these
tests check, with the baked project's own code and the demo's seeds, the two facts its story
depends on, and the labelling of logged predictions.
"""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import pytest

from .conftest import TEMPLATE, bake, run, tool_env

SPEC = importlib.util.spec_from_file_location("demo_story", TEMPLATE / "demo" / "story.py")
assert SPEC is not None and SPEC.loader is not None
story = importlib.util.module_from_spec(SPEC)
SPEC.loader.exec_module(story)

# In the baked project: v1 trained on the first batch, v2 on the drifted one (as the demo's
# retrain does: the batch replaces the raw data), both compared on v2's holdout by promote's
# own paired test; drift-check's comparison of the batch with v1's training profile.
DECISIONS = """
import json, sys
from pathlib import Path
import pandas as pd
from {package}.config import load_config
from {package}.contract import load_contract
from {package}.data import conform, features_and_target, load_table
from {package}.drift import build_reference, compare
from {package}.pipeline.promote import compare_on_holdout
from {package}.sample_data import generate
from {package}.pipeline.train import build_pipeline, holdout_mask

contract, config = load_contract(Path("contract.yaml")), load_config(Path("params.yaml"))
rows, seed = config.data.sample_rows, config.data.seed
old = conform(load_table(generate(Path("contract.yaml"), Path("old.csv"), rows, seed)), contract)
drift, batch_seed, first_id = (float(a) for a in sys.argv[1:4])
new_path = generate(Path("contract.yaml"), Path("new.csv"), rows, int(batch_seed), drift, int(first_id))
new = conform(load_table(new_path), contract)

def split(df):
    mask = holdout_mask(df[contract.id], config.split.test_size, config.split.seed)
    return df[~mask], df[mask]

(old_train, _), (new_train, new_holdout) = split(old), split(new)
v1 = build_pipeline(contract, config.model).fit(*features_and_target(old_train, contract))
v2 = build_pipeline(contract, config.model).fit(*features_and_target(new_train, contract))
reference = build_reference(old_train, contract, config.drift.bins)
report = compare(reference, new, contract, config.drift.limits())
X, y = features_and_target(new_holdout, contract)
paired = compare_on_holdout(v2, v1, X, y, config.promotion)
print(json.dumps({{"drift": report["status"], "drifted": report["drifted"],
                  "paired": paired.to_dict(), "ids": [str(new[contract.id].iloc[0]), str(old[contract.id].iloc[0])]}}))
"""


@pytest.mark.slow
def test_drifted_batch_drifts_and_v2_wins_for_a_real_reason(tmp_path: Path) -> None:
    """With the demo's seeds: drift-check fires, and the paired test promotes v2 over v1."""
    project = bake(tmp_path)
    script = DECISIONS.format(package="churn_model")
    args = [str(story.DRIFT), str(story.BATCH_SEED), str(story.FIRST_ID)]
    done = run([sys.executable, "-c", script, *args], project, env=tool_env(project))
    result = json.loads(done.stdout.splitlines()[-1])
    assert result["drift"] == "drift" and len(result["drifted"]) >= 2, result
    paired = result["paired"]
    # v1 is stale on the moved concept: a clear, significant gain, not a lucky draw
    assert paired["significant"] and paired["low"] > 0.03, paired
    assert paired["champion"] < 0.80 < paired["challenger"], paired
    # the batch's customers are new ones: their ids never collide with the first batch's
    assert result["ids"] == [f"C{story.FIRST_ID:07d}", "C0000000"], result


def test_undrifted_batch_is_the_training_distribution(tmp_path: Path) -> None:
    """--drift 0 draws exactly as before: the same rows for the same seed (data hashes hold)."""
    project = bake(tmp_path)
    generator = project / "src" / "churn_model" / "sample_data.py"
    outs = []
    for extra in ([], ["--drift", "0"]):
        out = tmp_path / f"rows{len(extra)}.csv"
        command = [sys.executable, str(generator), "--out", str(out), "--rows", "500", *extra]
        run(command, project)
        outs.append(out.read_text())
    assert outs[0] == outs[1]
    refused = run([sys.executable, str(generator), "--out", str(tmp_path / "x.csv"),
                   "--drift", "1.5"], project, check=False)  # fmt: skip
    assert refused.returncode == 2 and "--drift must be from 0 to 1" in refused.stderr


def test_labels_arrive_for_the_logged_ids_of_the_batch(tmp_path: Path) -> None:
    """Every logged id that is a batch customer gets the generator's outcome; others none."""
    logs = tmp_path / "logs"
    logs.mkdir()
    records = [{"request_id": "r1", "id": "C0100001", "score": 0.2},
               {"request_id": "r2", "id": "C0000007", "score": 0.9},  # a first-batch customer
               {"request_id": "r3", "id": "C0100003", "score": 0.4}]  # fmt: skip
    (logs / "predictions-stable-1.jsonl").write_text(
        "\n".join(json.dumps(r) for r in records) + "\n" + '{"torn": '
    )
    (logs / "predictions-canary-2.jsonl.1").write_text(json.dumps(records[0]) + "\n")
    truth = tmp_path / "batch.csv"
    truth.write_text("customer_id,x,churned\nC0100001,1,1\nC0100002,2,0\nC0100003,3,0\n")
    ids = story.logged_ids(sorted(logs.iterdir()))
    assert ids == {"C0100001", "C0000007", "C0100003"}
    out = tmp_path / "labels" / "batch.csv"
    assert story.write_labels(truth, ids, "customer_id", "churned", out) == 2
    assert out.read_text().splitlines() == ["customer_id,churned", "C0100001,1", "C0100003,0"]


def test_each_step_prints_its_decision_lines_only() -> None:
    """A repro's stage verdicts (a failed gate too) and a rollout's last look per phase."""
    output = "\n".join([
        "Running stage 'validate':", "> python -m churn_model validate",
        "validate: data/raw/churn.csv: 8000 rows meet contract.yaml (45 checks)",
        "gate: pass auc_roc: 0.86 >= 0.80", "gate: FAIL min_slice_auc [x]: 0.6 >= 0.7",
        "gate: 1 of 12 checks failed; see metrics/gate.json", "Updating lock file 'dvc.lock'",
        "promote: v2: promoted: roc_auc 0.86 vs champion 0.74",
    ])  # fmt: skip
    assert story.pick(output, story.REPRO_LINES) == [
        "validate: data/raw/churn.csv: 8000 rows meet contract.yaml (45 checks)",
        "gate: FAIL min_slice_auc [x]: 0.6 >= 0.7",
        "gate: 1 of 12 checks failed; see metrics/gate.json",
        "promote: v2: promoted: roc_auc 0.86 vs champion 0.74",
    ]
    shadow = {"n": 100, "agree": 70, "disagree": 30, "error": 0, "timeout": 0}
    events = [
        {"event": "analysis", "phase": "shadow", "weight": 0, "verdict": "inconclusive",
         "reason": "too few", "evidence": {"shadow": {**shadow, "n": 10}}},
        {"event": "analysis", "phase": "shadow", "weight": 0, "verdict": "pass",
         "reason": "every check passed", "evidence": {"shadow": shadow}},
        {"event": "step", "phase": "step 1/1", "weight": 5},
        {"event": "analysis", "phase": "step 1/1", "weight": 5, "verdict": "fail",
         "reason": "canary error rate vs 0.05: 0.300 of 60",
         "evidence": {"canary": {"n": 60, "errors": 18, "p99_ms": 20.0},
                      "stable": {"n": 900, "errors": 0, "p99_ms": 30.0}}},
    ]  # fmt: skip
    table = story.rollout_table(events)
    assert len(table) == 3 and table[0].split()[:2] == ["phase", "weight"]
    assert "pass (decisions differ on 30% of 100)" in table[1]
    assert table[2].split()[:5] == ["step", "1/1", "5%", "60/18", "900/0"]
    assert table[2].endswith("fail: canary error rate vs 0.05: 0.300 of 60")
