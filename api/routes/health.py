"""Liveness of the API's dependencies."""

from __future__ import annotations

import asyncio

from fastapi import APIRouter
from fastapi.responses import JSONResponse

from api.deps import State
from schemas.http import Health

router = APIRouter(tags=["health"])


@router.get(
    "/healthz",
    operation_id="read_health",
    response_model=Health,
    responses={503: {"model": Health, "description": "Kafka or the store is unreachable."}},
)
async def read_health(state: State) -> JSONResponse:
    """Whether Kafka and the results store answer: 200 when both do, 503 otherwise."""
    kafka_ok, store_ok = await asyncio.gather(state.publisher.ping(), state.store.ping())
    body = Health(
        status="ok" if kafka_ok and store_ok else "unavailable",
        kafka="ok" if kafka_ok else "unreachable",
        store="ok" if store_ok else "unreachable",
    )
    return JSONResponse(body.model_dump(), status_code=200 if kafka_ok and store_ok else 503)
