"""Prometheus metrics of a model server; names shared with the Kubernetes analysis."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

LATENCY_BUCKETS = (0.001, 0.002, 0.003, 0.005, 0.0075, 0.01, 0.015, 0.025, 0.05, 0.1, 0.25, 1.0)
SCORE_BUCKETS = tuple(i / 20 for i in range(1, 20))


class ServeMetrics:
    """Per-server counters, with the variant and version labels bound once."""

    def __init__(
        self, variant: str, model_version: str, score_buckets: tuple[float, ...] = SCORE_BUCKETS
    ) -> None:
        self.registry = CollectorRegistry()
        labels = ("variant", "model_version")
        requests = Counter(
            "model_requests",
            "Prediction requests by outcome (ok, error, rejected)",
            (*labels, "outcome"),
            registry=self.registry,
        )
        latency = Histogram(
            "model_request_latency_seconds",
            "Time to answer /predict",
            labels,
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        scores = Histogram(
            "model_prediction_score",
            "Predicted probability of the positive class (multiclass: of the answered class; "
            "regression: the predicted value, bucketed at the holdout answers' quantiles)",
            labels,
            buckets=score_buckets,
            registry=self.registry,
        )
        self.ok = requests.labels(variant, model_version, "ok")
        self.error = requests.labels(variant, model_version, "error")
        self.rejected = requests.labels(variant, model_version, "rejected")
        self._outcomes = {"ok": self.ok, "error": self.error, "rejected": self.rejected}
        self.latency = latency.labels(variant, model_version)
        self.score = scores.labels(variant, model_version)
        self.rows = Counter(
            "model_predicted_rows",
            "Rows scored (a request may carry many)",
            labels,
            registry=self.registry,
        ).labels(variant, model_version)
        self._labels = (variant, model_version)

    def watch_drift(self, compare: Callable[[], Mapping[str, Any]]) -> None:
        """Export served PSI per feature, computed from the running profile at each scrape."""
        self.registry.register(_DriftCollector(compare, self._labels))

    def count(self, outcome: str) -> None:
        """Count one /predict request by outcome: ok, error or rejected."""
        self._outcomes[outcome].inc()

    def exposition(self) -> bytes:
        """The text format Prometheus scrapes."""
        return generate_latest(self.registry)


class _DriftCollector(Collector):
    """`model_feature_psi{feature}` and the rows it is based on: one series per contract feature."""

    def __init__(self, compare: Callable[[], Mapping[str, Any]], labels: tuple[str, str]) -> None:
        self.compare, self.labels = compare, labels

    def collect(self) -> Iterator[GaugeMetricFamily]:
        report = self.compare()
        psi = GaugeMetricFamily(
            "model_feature_psi",
            "PSI of served rows against the version's training reference (same bins as batch)",
            labels=["variant", "model_version", "feature"],
        )
        for feature in report["features"]:
            if feature["psi"] is not None:
                psi.add_metric([*self.labels, feature["feature"]], feature["psi"])
        rows = GaugeMetricFamily(
            "model_drift_rows",
            "Served rows the PSI is computed from (below drift.min_rows it is not judged)",
            labels=["variant", "model_version"],
        )
        rows.add_metric(list(self.labels), report["rows"]["current"])
        yield psi
        yield rows
