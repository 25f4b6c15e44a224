"""Every metric the dashboard and the alert rules query is served by a running API or worker."""

from __future__ import annotations

import re

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.integration.api.client import post_seed
from tests.integration.stack import ManagedProcess, StackFactory
from tests.unit.compose.artifacts import exposed_names, queried_metric_names

pytestmark = [pytest.mark.kafka, pytest.mark.slow]

WORKER_METRICS_LINE = re.compile(r"worker metrics on (http://\S+/metrics)")


def _worker_metrics_url(worker: ManagedProcess) -> str:
    found = WORKER_METRICS_LINE.search(worker.output())
    assert found is not None, f"no metrics line in the worker's log:\n{worker.output()}"
    return found.group(1).replace("://0.0.0.0:", "://127.0.0.1:")


def _scrape(url: str) -> set[str]:
    response = httpx.get(url, timeout=10)
    assert response.status_code == 200, response.text
    return exposed_names(text_string_to_metric_families(response.text))


def test_every_queried_metric_is_exposed_by_the_api_or_a_worker(
    make_stack: StackFactory,
) -> None:
    stack = make_stack()
    worker = stack.add_worker()
    url = stack.add_api()
    post_seed(url, stack.api_key)

    exposed = _scrape(f"{url}/metrics") | _scrape(_worker_metrics_url(worker))

    assert queried_metric_names() - exposed == set(), stack.logs()
