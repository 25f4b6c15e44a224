"""Dependency aliases the routes declare their needs with."""

from __future__ import annotations

import ipaddress
import logging
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import APIKeyHeader

from api.errors import ApiError
from api.limits import RateDecision
from api.security import hash_api_key, same_hash
from api.state import ApiState
from schemas.http import ErrorCode
from store import ApiKeyRecord

log = logging.getLogger(__name__)
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
    """The caller's key, after the request-rate limit has counted this request.

    An address that failed authentication too often in the last minute is refused (429) before
    its key is looked at; each failure is counted against the address and logged without the
    key.
    """
    address = request.client.host if request.client is not None else "unknown"
    refusal = await state.rate_limiter.auth_refused(address)
    if refusal is not None:
        raise _limited(
            state,
            refusal,
            "auth_failures_per_minute",
            "failed authentications a minute from this address",
        )
    if not api_key:
        await _auth_failed(state, address, "missing")
        raise ApiError(401, ErrorCode.UNAUTHORIZED, "Send your API key in the X-API-Key header")
    key_hash = hash_api_key(api_key)
    record = await state.store.find_api_key(key_hash)
    if record is None or not same_hash(record.key_hash, key_hash):
        await _auth_failed(state, address, "unknown")
        raise ApiError(401, ErrorCode.UNAUTHORIZED, "Unknown or revoked API key")
    decision = await state.rate_limiter.hit(record.key_id)
    if not decision.allowed:
        raise _limited(
            state, decision, "requests_per_minute", "requests per minute for this API key"
        )
    # Put on the response, whichever way it is built, by api.middleware.
    request.state.response_headers = decision.headers()
    return record


def _limited(state: ApiState, decision: RateDecision, limit: str, counted: str) -> ApiError:
    state.metrics.rate_limited.labels(limit=limit).inc()
    return ApiError(
        429,
        ErrorCode.RATE_LIMIT_EXCEEDED,
        f"More than {decision.limit} {counted}; retry in {decision.headers()['Retry-After']} s",
        {"limit": decision.limit, "window_s": 60},
        headers=decision.headers(),
    )


def network_of(address: str) -> str:
    """The /24 (IPv4) or /48 (IPv6) network of a client address: enough to see where failures
    come from, without logging a person's address."""
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return "unknown"
    prefix = 24 if ip.version == 4 else 48
    return str(ipaddress.ip_network(f"{ip}/{prefix}", strict=False))


async def _auth_failed(state: ApiState, address: str, reason: str) -> None:
    await state.rate_limiter.auth_failed(address)
    # The address and why, never the key that was sent.
    log.warning("authentication failed", extra={"network": network_of(address), "reason": reason})


Caller = Annotated[ApiKeyRecord, Depends(get_caller)]
