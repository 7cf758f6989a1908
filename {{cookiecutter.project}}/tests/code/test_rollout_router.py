"""The router's weights are exact, its config is checked, its latency windows are diffable."""

from __future__ import annotations

import itertools
import math
from collections import Counter

import pytest

from {{ cookiecutter.package }}.asgi.metrics import LATENCY_BUCKETS
from {{ cookiecutter.package }}.rollout.router import WeightedChoice, validate_config
from {{ cookiecutter.package }}.rollout.window import EDGES_S, VariantCounters, window


@pytest.mark.parametrize(
    "weights", [{"stable": 95, "canary": 5}, {"a": 75, "b": 25}, {"a": 1, "b": 2, "c": 3}]
)
def test_every_cycle_gives_each_variant_exactly_its_weight(weights):
    choice = WeightedChoice(weights)
    total = sum(weights.values())
    for _ in range(3):
        assert Counter(choice.pick() for _ in range(total)) == Counter(weights)


def test_a_small_weight_is_spread_out_not_bunched():
    choice = WeightedChoice({"stable": 95, "canary": 5})
    picks = [choice.pick() for _ in range(100)]
    positions = [i for i, name in enumerate(picks) if name == "canary"]
    gaps = [b - a for a, b in itertools.pairwise(positions)]
    assert min(gaps) >= 19


def test_zero_weights_are_never_picked():
    choice = WeightedChoice({"stable": 100, "canary": 0})
    assert {choice.pick() for _ in range(50)} == {"stable"}
    with pytest.raises(ValueError, match="positive"):
        WeightedChoice({"stable": 0})


UP = {"url": "http://127.0.0.1:9001", "version": "1"}


@pytest.mark.parametrize(
    ("config", "message"),
    [
        ({"upstreams": {}, "weights": {}}, "upstreams"),
        ({"upstreams": {"s": {"url": "http://127.0.0.1:1"}}, "weights": {"s": 1}}, "version"),
        ({"upstreams": {"s": UP}, "weights": {"t": 1}}, "unknown"),
        ({"upstreams": {"s": UP}, "weights": {"s": -1}}, "non-negative"),
        ({"upstreams": {"s": UP}, "weights": {"s": True}}, "integer"),
        ({"upstreams": {"s": UP}, "weights": {"s": 0}}, "positive"),
        (
            {"upstreams": {"s": {**UP, "url": "http://10.0.0.8:80"}}, "weights": {"s": 1}},
            "loopback",
        ),
        (
            {"upstreams": {"s": {**UP, "url": "http://evil.example:80"}}, "weights": {"s": 1}},
            "loopback",
        ),
        (
            {"upstreams": {"s": {**UP, "url": "http://127.0.0.1:1/predict"}}, "weights": {"s": 1}},
            "base URL",
        ),
        (
            {
                "upstreams": {"s": UP},
                "weights": {"s": 1},
                "shadow": {"target": "x", "sample": 1, "queue": 1, "timeout_ms": 1},
            },
            "shadow.target",
        ),
        ({"upstreams": {"s": UP}, "weights": {"s": 1}, "extra": 1}, "extra"),
    ],
)
def test_bad_configs_are_refused_with_a_reason(config, message):
    with pytest.raises(ValueError, match=message):
        validate_config(config)


def test_a_window_is_the_difference_of_two_snapshots():
    counters = VariantCounters("3")
    for _ in range(90):
        counters.observe(0.002, "ok")
    before = counters.snapshot()
    for _ in range(99):
        counters.observe(0.004, "ok")
    counters.observe(0.5, "error")
    counters.observe(0.001, "rejected")
    between = window(counters.snapshot(), before)
    assert (between.requests, between.errors, between.rejected, between.judged) == (101, 1, 1, 100)
    assert between.error_rate == pytest.approx(0.01)
    # Prometheus's histogram_quantile: linear inside the bucket (3, 5] ms and (250, 1000] ms
    # (one 1 ms request sits below them, so the median's rank is 50.5 - 1 into the 99)
    assert between.quantile_ms(0.5) == pytest.approx(3 + 2 * (50.5 - 1) / 99, rel=1e-6)
    assert between.quantile_ms(0.999) == pytest.approx(250 + 750 * (0.999 * 101 - 100), rel=1e-6)
    assert math.isnan(window(None, None).quantile_ms(0.99))


def test_a_new_version_under_the_same_name_starts_from_zero():
    old, new = VariantCounters("1"), VariantCounters("2")
    old.observe(0.01, "ok")
    new.observe(0.01, "error")
    assert window(new.snapshot(), old.snapshot()).errors == 1
    assert EDGES_S == LATENCY_BUCKETS  # the servers' buckets: the engines read the same p99
