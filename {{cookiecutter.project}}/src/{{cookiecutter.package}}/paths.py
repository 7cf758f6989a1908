"""Every file the pipeline passes from stage to stage, spelled once.

Paths are relative to the project root, where DVC runs each stage. `dvc.yaml` declares the
same files as each stage's deps and outs; `tests/code/test_dvc_stages.py` checks that what a
stage's code names here is what its stage declares, so `dvc repro` reruns what it should.
"""

from __future__ import annotations

from pathlib import Path

PARAMS = Path("params.yaml")
CONTRACT = Path("contract.yaml")
RAW_DIR = Path("data/raw")  # where `make contract` copies a team's own table

VALIDATED = Path("data/validated.parquet")  # validate -> train
HOLDOUT = Path("data/holdout.parquet")  # train -> evaluate, promote, the load generator

MODEL = Path("models/model.skops")
META = Path("models/train_meta.json")  # data hash, git sha, environment
REFERENCE = Path("models/reference_profile.json")  # the drift profile of the training data

VALIDATION_REPORT = Path("reports/validation.json")  # with .html beside it
DRIFT_REPORT = Path("reports/drift.json")  # with .html beside it
MODEL_REPORT = Path("reports/model_report.html")
CARD = Path("reports/model_card.md")  # kept with each registered version
PLOTS = Path("plots")  # roc, pr, calibration and confusion tables for `dvc plots`

METRICS = Path("metrics/metrics.json")  # evaluate -> gate, promote
GATE = Path("metrics/gate.json")  # gate -> promote
PROMOTION = Path("metrics/promotion.json")  # promote -> the workflow's deploy decision

DRIFT_CHECK_DIR = Path("reports/drift-check")  # `make drift-check`, outside the pipeline
PERFORMANCE_DIR = Path("reports/performance")  # `make performance`, outside the pipeline
