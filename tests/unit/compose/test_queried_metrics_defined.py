"""Every metric the dashboard and the alert rules query is one that batchline/metrics.py builds."""

from __future__ import annotations

import pytest
from prometheus_client import CollectorRegistry

from telemetry.metrics import CacheCollector, Metrics
from tests.unit.compose.artifacts import exposed_names, queried_metric_names, selected_metric_names
from transforms import PipelineRegistry


def _defined_names() -> set[str]:
    registry = CollectorRegistry()
    Metrics(registry=registry)
    registry.register(CacheCollector(PipelineRegistry([])))
    return exposed_names(registry.collect())


def test_every_queried_metric_is_defined() -> None:
    assert queried_metric_names() - _defined_names() == set()


def test_the_queries_reach_every_seed_metric() -> None:
    queried = queried_metric_names()
    assert {
        "batch_processed_total",
        "batch_processing_duration_seconds_bucket",
        "batch_processing_errors_total",
        "batch_memory_usage_bytes",
        "batch_consumer_lag_messages",
    } <= queried


def test_names_are_read_from_selectors_not_from_labels_or_functions() -> None:
    expr = (
        'histogram_quantile(0.9, sum by (le) (rate(a_bucket{stage="b_total"}[$__rate_interval])))'
    )
    assert selected_metric_names(expr) == {"a_bucket"}


def test_a_selector_without_a_metric_name_is_refused() -> None:
    with pytest.raises(ValueError, match="by its name"):
        selected_metric_names('rate({__name__=~"batch_.*"}[5m])')
