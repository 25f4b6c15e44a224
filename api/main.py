"""Assembles the FastAPI app: lifespan, routers, error handlers. Nothing else lives here."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager

from fastapi import FastAPI

from api.routes import health
from api.state import open_state
from schemas.settings import Settings


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or Settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with AsyncExitStack() as stack:
            app.state.batchline = await open_state(settings, stack)
            yield

    app = FastAPI(
        title="Batchline",
        version="0.1.0",
        summary="Batch transformation: timestamps to UTC, exact money, masked personal data.",
        lifespan=lifespan,
    )
    app.include_router(health.router)
    return app
