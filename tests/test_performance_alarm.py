"""The performance alarm's error rates over re-bakes: a quick run of `bench/bench_alarm.py`.

Each bake trains the baked project's own pipeline on a table generated with another seed
and judges batches from the same generator with `monitoring.performance.drop_verdict`.
Fails when undrifted batches alarm more often than alpha allows, or a drift of 1.0 (the
generator's strongest) goes unseen.
"""

from __future__ import annotations

import sys
from pathlib import Path
from types import ModuleType

import numpy as np
import pytest

from .conftest import TEMPLATE

sys.path.insert(0, str(TEMPLATE / "bench"))
import bench_alarm
import bench_canary

BAKES, BATCHES = 4, 20


@pytest.fixture(scope="module")
def package(tmp_path_factory: pytest.TempPathFactory) -> ModuleType:
    return bench_canary.bake(Path(tmp_path_factory.mktemp("alarm-bake")))


def test_undrifted_batches_rarely_alarm_and_strong_drift_is_caught(
    package: ModuleType, tmp_path: Path
):
    """False alarms stay under alpha (5%) for every bake's own evaluated reference, while
    a drift of 1.0 is caught in nearly every batch."""
    false_alarms, detected = [], []
    for seed in range(BAKES):
        alarms = bench_alarm.one_bake(package, 500 + seed, BATCHES, tmp_path)
        false_alarms += alarms["new@0.0"]
        detected += alarms["new@1.0"]
    assert np.mean(false_alarms) <= 0.05
    assert np.mean(detected) >= 0.9
