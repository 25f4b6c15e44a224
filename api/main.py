"""Assembles the FastAPI app: lifespan, middleware, routers, error handlers. Nothing else."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager

from fastapi import FastAPI

from api import console
from api.errors import install_error_handlers
from api.metrics import HttpMetricsMiddleware
from api.metrics import router as metrics_router
from api.middleware import RequestIdMiddleware
from api.openapi import publish_truthful_openapi
from api.routes import batches, health, pipelines
from api.state import open_state
from schemas.settings import Settings
from telemetry.collector import freeze_startup_objects

DESCRIPTION = """
Batches of JSON records through a declarative transformation pipeline: timestamps to UTC,
money as exact decimals, e-mails and phones masked. Authenticate with the `X-API-Key` header.
Limits per key: 1,000 requests a minute, 10,000 items a batch, 5 unfinished batches.

Every error is `{"error", "message", "details"?}` with a stable `error` code; an invalid
request is 400 `bad_request` or `validation_error`, never 422.

Amounts in results are exact JSON numbers with their scale (`100.50`). A JSON parser that reads
numbers as floats would lose that: parse with decimals (Python: `json.loads(text,
parse_float=decimal.Decimal)`), or ask for strings with `?decimals=string` (`"100.50"`) on the
submit and results endpoints.
"""


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or Settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with AsyncExitStack() as stack:
            app.state.batchline = await open_state(settings, stack)
            freeze_startup_objects()
            yield

    app = FastAPI(
        title="Batchline",
        version="0.1.0",
        summary="Batch transformation: timestamps to UTC, exact money, masked personal data.",
        description=DESCRIPTION,
        lifespan=lifespan,
    )
    app.add_middleware(HttpMetricsMiddleware)
    app.add_middleware(RequestIdMiddleware)
    install_error_handlers(app)
    app.include_router(health.router)
    app.include_router(metrics_router)
    app.include_router(batches.router)
    app.include_router(pipelines.router)
    app.include_router(console.router)
    publish_truthful_openapi(app)
    return app
