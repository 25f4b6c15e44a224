"""Dependency aliases the routes declare their needs with."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import APIKeyHeader

from api.errors import ApiError
from api.security import hash_api_key, same_hash
from api.state import ApiState
from store import ApiKeyRecord

api_key_header = APIKeyHeader(name="X-API-Key", auto_error=False, description="Your API key.")


def get_state(request: Request) -> ApiState:
    state: ApiState = request.app.state.batchline
    return state


State = Annotated[ApiState, Depends(get_state)]


async def get_caller(
    state: State,
    request: Request,
    api_key: Annotated[str | None, Depends(api_key_header)],
) -> ApiKeyRecord:
    """The caller's key, after the request-rate limit has counted this request."""
    if not api_key:
        raise ApiError(401, "unauthorized", "Send your API key in the X-API-Key header")
    key_hash = hash_api_key(api_key)
    record = await state.store.find_api_key(key_hash)
    if record is None or not same_hash(record.key_hash, key_hash):
        raise ApiError(401, "unauthorized", "Unknown or revoked API key")
    decision = await state.rate_limiter.hit(record.key_id)
    if not decision.allowed:
        state.metrics.rate_limited.labels(limit="requests_per_minute").inc()
        raise ApiError(
            429,
            "rate_limit_exceeded",
            f"More than {decision.limit} requests per minute for this API key; "
            f"retry in {decision.headers()['Retry-After']} s",
            {"limit": decision.limit, "window_s": 60},
            headers=decision.headers(),
        )
    # Put on the response, whichever way it is built, by api.middleware.
    request.state.response_headers = decision.headers()
    return record


Caller = Annotated[ApiKeyRecord, Depends(get_caller)]
