"""HTTP metrics label every request with its route template, FastAPI's own pages included."""

from __future__ import annotations

from types import SimpleNamespace

from fastapi import FastAPI
from fastapi.testclient import TestClient
from prometheus_client import CollectorRegistry

from api.metrics import HttpMetricsMiddleware
from telemetry.metrics import Metrics


def _app() -> tuple[FastAPI, CollectorRegistry]:
    registry = CollectorRegistry()
    app = FastAPI()
    app.state.batchline = SimpleNamespace(metrics=Metrics(registry))
    app.add_middleware(HttpMetricsMiddleware)

    @app.get("/api/v1/things/{thing_id}")
    async def read_thing(thing_id: str) -> dict[str, str]:
        return {"thing_id": thing_id}

    return app, registry


def _count(registry: CollectorRegistry, route: str, status: str) -> float | None:
    labels = {"method": "GET", "route": route, "status": status}
    return registry.get_sample_value("http_requests_total", labels)


def test_requests_are_counted_by_route_template_never_by_raw_path() -> None:
    app, registry = _app()
    with TestClient(app) as client:
        for thing_id in ("a1", "b2"):
            assert client.get(f"/api/v1/things/{thing_id}").status_code == 200
        assert client.get("/docs").status_code == 200
        assert client.get("/openapi.json").status_code == 200
        assert client.get("/no/such/page").status_code == 404
    assert _count(registry, "/api/v1/things/{thing_id}", "200") == 2
    assert _count(registry, "/docs", "200") == 1
    assert _count(registry, "/openapi.json", "200") == 1
    assert _count(registry, "unmatched", "404") == 1
    assert _count(registry, "unmatched", "200") is None
