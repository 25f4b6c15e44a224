"""`batchline api --workers 2`: /metrics counts every process's requests, whichever answers."""

from __future__ import annotations

import time

import httpx
import pytest

from batchline.broker import free_port
from tests.integration.operations.scrape import samples, scrape
from tests.integration.stack import StackFactory, spawn, wait_for

pytestmark = [pytest.mark.kafka, pytest.mark.slow]
REQUESTS = 40


def test_metrics_of_several_uvicorn_workers_add_up(make_stack: StackFactory) -> None:
    stack = make_stack()
    port = free_port()
    shared = stack.log_dir / "prometheus-multiproc"
    env = {**stack.env, "PROMETHEUS_MULTIPROC_DIR": str(shared)}
    api = spawn("api-2workers", ["api", "--port", str(port), "--workers", "2"], env, stack.log_dir)
    stack.processes.append(api)
    url = f"http://127.0.0.1:{port}"

    def healthy() -> bool:
        try:
            return httpx.get(f"{url}/healthz", timeout=2).status_code == 200
        except httpx.HTTPError:
            return False

    wait_for("healthy /healthz", healthy, api)
    # Each new connection may land on either process.
    for _ in range(REQUESTS):
        response = httpx.get(
            f"{url}/api/v1/transform/batches", headers={"X-API-Key": stack.api_key}, timeout=10
        )
        assert response.status_code == 200
    key = (
        "http_requests_total",
        (("method", "GET"), ("route", "/api/v1/transform/batches"), ("status", "200")),
    )
    counts = set()
    for _ in range(6):
        counts.add(samples(scrape(f"{url}/metrics"))[key])
        time.sleep(0.05)
    assert counts == {REQUESTS}
    # Both processes recorded samples: the total above is a sum, not one process's count.
    writers = {path.stem.rsplit("_", 1)[-1] for path in shared.glob("counter_*.db")}
    assert len(writers) >= 2, writers
