"""The seed's per-key limits (requests per minute, unfinished batches at once), and failed
authentications per client address.

The request rate uses the `limits` library's moving window, on Redis when BATCHLINE_REDIS_URL is
set (shared by every API process) and in process memory otherwise. While Redis cannot be
reached, each API process counts in its own memory instead (the limits then hold per process,
not across them): a Redis outage never turns a request into a 500.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TypeVar

from limits import RateLimitItemPerMinute
from limits.aio.storage import MemoryStorage, RedisStorage, Storage
from limits.aio.strategies import MovingWindowRateLimiter
from limits.errors import StorageError

log = logging.getLogger(__name__)
T = TypeVar("T")
REQUESTS_PER_MINUTE = 1000
# Failed authentications (no key, an unknown or a revoked key) a client address may make in a
# minute; past them, every request from that address is answered 429 without its key being
# looked at, so that guessing keys gains nothing.
AUTH_FAILURES_PER_MINUTE = 20
MAX_UNFINISHED_BATCHES = 5
KEY_NAMESPACE = "batchline"
REDIS_TIMEOUT_S = 0.5
REDIS_RETRY_AFTER_S = 5.0


@dataclass(frozen=True, slots=True)
class RateDecision:
    allowed: bool
    limit: int
    remaining: int
    reset_s: int

    def headers(self) -> dict[str, str]:
        headers = {
            "RateLimit-Limit": str(self.limit),
            "RateLimit-Remaining": str(self.remaining),
            "RateLimit-Reset": str(self.reset_s),
        }
        if not self.allowed:
            headers["Retry-After"] = str(max(self.reset_s, 1))
        return headers


def _redis_storage(redis_url: str) -> Storage:
    # limits names its async Redis scheme async+redis; redis-py is the client we ship. Its
    # errors come wrapped as StorageError, whatever the client raised.
    scheme, rest = redis_url.split("://", 1)
    return RedisStorage(
        f"async+{scheme}://{rest}",
        implementation="redispy",
        wrap_exceptions=True,
        # A Redis that does not answer (not only one that refuses) must not hold a request.
        socket_connect_timeout=REDIS_TIMEOUT_S,
        socket_timeout=REDIS_TIMEOUT_S,
    )


class RequestRateLimiter:
    def __init__(
        self,
        redis_url: str | None,
        per_minute: int = REQUESTS_PER_MINUTE,
        auth_failures_per_minute: int = AUTH_FAILURES_PER_MINUTE,
    ) -> None:
        self._item = RateLimitItemPerMinute(per_minute, namespace=KEY_NAMESPACE)
        self._auth_item = RateLimitItemPerMinute(
            auth_failures_per_minute, namespace=f"{KEY_NAMESPACE}-auth-failures"
        )
        self._local_storage = MemoryStorage()
        self._local = MovingWindowRateLimiter(self._local_storage)
        self._shared_storage = _redis_storage(redis_url) if redis_url is not None else None
        self._shared = (
            MovingWindowRateLimiter(self._shared_storage)
            if self._shared_storage is not None
            else None
        )
        self._shared_failing = False
        self._shared_retry_at = 0.0

    async def hit(self, key_id: str) -> RateDecision:
        """Counts a request of the key; allowed while the key is under its limit."""
        allowed = await self._run(lambda limiter: limiter.hit(self._item, key_id))
        return await self._decision(self._item, key_id, allowed)

    async def auth_refused(self, address: str) -> RateDecision | None:
        """The refusal for an address that failed authentication too often lately, else None
        (asking counts nothing)."""
        if await self._run(lambda limiter: limiter.test(self._auth_item, address)):
            return None
        return await self._decision(self._auth_item, address, allowed=False)

    async def auth_failed(self, address: str) -> None:
        await self._run(lambda limiter: limiter.hit(self._auth_item, address))

    async def _decision(
        self, item: RateLimitItemPerMinute, key: str, allowed: bool
    ) -> RateDecision:
        stats = await self._run(lambda limiter: limiter.get_window_stats(item, key))
        return RateDecision(
            allowed=allowed,
            limit=item.amount,
            remaining=max(stats.remaining, 0),
            reset_s=max(math.ceil(stats.reset_time - time.time()), 0),
        )

    async def _run(self, call: Callable[[MovingWindowRateLimiter], Awaitable[T]]) -> T:
        """``call`` on the shared (Redis) limiter, or on this process's own while Redis fails."""
        if self._shared is not None and time.monotonic() >= self._shared_retry_at:
            try:
                result = await call(self._shared)
            except StorageError as exc:
                if not self._shared_failing:
                    log.warning(
                        "rate limits counted per process: Redis unreachable",
                        extra={"error_type": type(exc.storage_error).__name__},
                    )
                self._shared_failing = True
                # Not asked again for a while: a Redis that hangs would cost every request
                # its timeout.
                self._shared_retry_at = time.monotonic() + REDIS_RETRY_AFTER_S
            else:
                if self._shared_failing:
                    log.warning("rate limits shared again: Redis reachable")
                self._shared_failing = False
                return result
        return await call(self._local)

    async def ping(self) -> bool:
        storage = self._shared_storage or self._local_storage
        try:
            return bool(await storage.check())
        except StorageError:
            return False

    async def close(self) -> None:
        # Storages hold a client (Redis) or a timer task (memory); both have a reset only.
        for storage in (self._shared_storage, self._local_storage):
            closer = getattr(storage, "close", None)
            if closer is not None:
                await closer()
