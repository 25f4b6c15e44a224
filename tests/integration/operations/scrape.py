"""Reading Prometheus metrics from a running API or worker."""

from __future__ import annotations

import re

import httpx
from prometheus_client.parser import text_string_to_metric_families

from tests.integration.stack import ManagedProcess

WORKER_METRICS_LINE = re.compile(r"worker metrics on (http://\S+/metrics)")


def worker_metrics_url(worker: ManagedProcess) -> str:
    found = WORKER_METRICS_LINE.search(worker.output())
    assert found, f"the worker did not say where its metrics are:\n{worker.output()}"
    return found.group(1)


def scrape(url: str) -> str:
    response = httpx.get(url, timeout=10)
    assert response.status_code == 200, response.text
    return response.text


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """(sample name, sorted labels) -> value, for every sample in an exposition text."""
    found: dict[tuple[str, tuple[tuple[str, str], ...]], float] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            found[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return found


def families(text: str) -> dict[str, str]:
    """Metric family name -> type."""
    return {family.name: family.type for family in text_string_to_metric_families(text)}
