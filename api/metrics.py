"""The API's Prometheus metrics: the /metrics route and the HTTP timing middleware.

With several uvicorn workers (`batchline api --workers N`) each process writes its samples to
PROMETHEUS_MULTIPROC_DIR and /metrics merges them (prometheus-client's multiprocess mode), so
a scrape sees the whole API whichever process answers it.
"""

from __future__ import annotations

import asyncio
import os
import time

import httpx
from fastapi import APIRouter, Request, Response
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.multiprocess import MultiProcessCollector
from starlette.routing import Match
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from telemetry.metrics import CacheCollector, Metrics
from transforms import PipelineRegistry

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
router = APIRouter(tags=["operations"])
WORKER_SCRAPE_TIMEOUT_S = 2.0
# The console's Operations page polls every 2 s; a scrape younger than this is served again.
WORKER_SCRAPE_MAX_AGE_S = 1.0


def build_metrics(pipelines: PipelineRegistry) -> tuple[Metrics, CollectorRegistry]:
    """The metrics this process records, and the registry /metrics reads."""
    exposed = CollectorRegistry()
    if os.environ.get(MULTIPROC_ENV):
        MultiProcessCollector(exposed)  # type: ignore[no-untyped-call]
        metrics = Metrics(registry=None)
    else:
        metrics = Metrics(registry=exposed)
    exposed.register(CacheCollector(pipelines))
    return metrics, exposed


@router.get("/metrics", include_in_schema=False)
async def read_metrics(request: Request) -> Response:
    state = request.app.state.batchline
    state.metrics.sample_resident_memory()
    return Response(generate_latest(state.metrics_registry), media_type=CONTENT_TYPE_LATEST)


@router.get("/metrics/workers", include_in_schema=False)
async def read_worker_metrics(request: Request) -> Response:
    """The workers' own /metrics: what the console's Operations page reads beside /metrics,
    since a page may only ask its own server."""
    text = await request.app.state.batchline.worker_scrapes.text()
    return Response(text, media_type=CONTENT_TYPE_LATEST)


class WorkerScrapes:
    """The workers' /metrics (BATCHLINE_WORKER_METRICS_URLS), one after another, fetched at
    most once every ``max_age_s`` however many callers ask: the route needs no key, so without
    this every request would become a request to every worker. Only the configured URLs are
    ever fetched; one that does not answer is a comment line."""

    def __init__(self, urls: str, max_age_s: float = WORKER_SCRAPE_MAX_AGE_S) -> None:
        self._urls = [url.strip() for url in urls.split(",") if url.strip()]
        self._max_age_s = max_age_s
        self._lock = asyncio.Lock()
        self._text = ""
        self._fetched_at: float | None = None

    async def text(self) -> str:
        async with self._lock:  # callers that arrive during a fetch share its answer
            now = time.monotonic()
            if self._fetched_at is None or now - self._fetched_at >= self._max_age_s:
                self._text = await self._fetch()
                self._fetched_at = time.monotonic()
            return self._text

    async def _fetch(self) -> str:
        async with httpx.AsyncClient(timeout=WORKER_SCRAPE_TIMEOUT_S) as client:
            answers = await asyncio.gather(
                *(client.get(url) for url in self._urls), return_exceptions=True
            )
        return "".join(
            answer.text
            if isinstance(answer, httpx.Response) and answer.status_code == 200
            else f"# worker {number} did not answer\n"
            for number, answer in enumerate(answers)
        )


class HttpMetricsMiddleware:
    """Counts and times every request by its route template (never the raw path: IDs)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def record_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, record_status)
        finally:
            route = _route_template(scope)
            metrics = _metrics(scope)
            if metrics is not None and route != "/metrics":
                method = scope["method"]
                metrics.http_requests.labels(method, route, str(status)).inc()
                metrics.http_duration.labels(method, route).observe(time.perf_counter() - started)


def _route_template(scope: Scope) -> str:
    """The path template of the route that served the request.

    FastAPI's own routes record themselves in the scope; plain Starlette routes such as /docs
    and /openapi.json do not, so they are matched again here.
    """
    route = scope.get("route")
    if route is not None:
        return str(route.path)
    router = getattr(scope.get("app"), "router", None)
    for candidate in getattr(router, "routes", ()):
        match, _ = candidate.matches(scope)
        if match == Match.FULL:
            return str(candidate.path)
    return "unmatched"


def _metrics(scope: Scope) -> Metrics | None:
    app = scope.get("app")
    state = getattr(getattr(app, "state", None), "batchline", None)
    return getattr(state, "metrics", None)
