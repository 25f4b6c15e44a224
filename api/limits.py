"""The seed's per-key limits (requests per minute, unfinished batches at once), and failed
authentications per client address.

The request rate uses the `limits` library's moving window, on Redis when BATCHLINE_REDIS_URL is
set (shared by every API process) and in process memory otherwise.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

from limits import RateLimitItemPerMinute
from limits.aio.storage import MemoryStorage, RedisStorage, Storage
from limits.aio.strategies import MovingWindowRateLimiter

REQUESTS_PER_MINUTE = 1000
# Failed authentications (no key, an unknown or a revoked key) a client address may make in a
# minute; past them, every request from that address is answered 429 without its key being
# looked at, so that guessing keys gains nothing.
AUTH_FAILURES_PER_MINUTE = 20
MAX_UNFINISHED_BATCHES = 5
KEY_NAMESPACE = "batchline"


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


def _storage(redis_url: str | None) -> Storage:
    if redis_url is None:
        return MemoryStorage()
    # limits names its async Redis scheme async+redis; redis-py is the client we ship.
    scheme, rest = redis_url.split("://", 1)
    return RedisStorage(f"async+{scheme}://{rest}", implementation="redispy")


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
        self._storage = _storage(redis_url)
        self._limiter = MovingWindowRateLimiter(self._storage)

    async def hit(self, key_id: str) -> RateDecision:
        """Counts a request of the key; allowed while the key is under its limit."""
        allowed = await self._limiter.hit(self._item, key_id)
        return await self._decision(self._item, key_id, allowed)

    async def auth_refused(self, address: str) -> RateDecision | None:
        """The refusal for an address that failed authentication too often lately, else None
        (asking counts nothing)."""
        if await self._limiter.test(self._auth_item, address):
            return None
        return await self._decision(self._auth_item, address, allowed=False)

    async def auth_failed(self, address: str) -> None:
        await self._limiter.hit(self._auth_item, address)

    async def _decision(
        self, item: RateLimitItemPerMinute, key: str, allowed: bool
    ) -> RateDecision:
        stats = await self._limiter.get_window_stats(item, key)
        return RateDecision(
            allowed=allowed,
            limit=item.amount,
            remaining=max(stats.remaining, 0),
            reset_s=max(math.ceil(stats.reset_time - time.time()), 0),
        )

    async def ping(self) -> bool:
        return bool(await self._storage.check())

    async def close(self) -> None:
        # Storages hold a client (Redis) or a timer task (memory); both have a reset only.
        closer = getattr(self._storage, "close", None)
        if closer is not None:
            await closer()
