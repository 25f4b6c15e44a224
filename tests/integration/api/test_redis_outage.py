"""Redis away: the rate limits are counted per API process instead, and nothing answers 500."""

from __future__ import annotations

import pytest

from api.limits import RequestRateLimiter
from batchline.broker import free_port
from tests.integration.api.client import BATCHES_PATH, api_client
from tests.integration.stack import StackFactory


def _unreachable_redis() -> str:
    return f"redis://127.0.0.1:{free_port()}/0"  # a real connection, refused: nobody listens


async def test_limits_fall_back_to_this_process_while_redis_is_unreachable() -> None:
    limiter = RequestRateLimiter(_unreachable_redis(), per_minute=3, auth_failures_per_minute=2)
    try:
        decisions = [await limiter.hit("key-1") for _ in range(4)]
        assert [d.allowed for d in decisions] == [True, True, True, False]
        assert decisions[-1].headers()["Retry-After"]
        assert await limiter.auth_refused("192.0.2.1") is None
        await limiter.auth_failed("192.0.2.1")
        await limiter.auth_failed("192.0.2.1")
        refused = await limiter.auth_refused("192.0.2.1")
        assert refused is not None and refused.limit == 2
        assert not await limiter.ping()
    finally:
        await limiter.close()


@pytest.mark.kafka
@pytest.mark.slow
def test_the_api_answers_without_redis(make_stack: StackFactory) -> None:
    stack = make_stack(BATCHLINE_REDIS_URL=_unreachable_redis())
    url = stack.add_api()
    with api_client(url, stack.api_key) as client:
        for _ in range(3):
            response = client.get(BATCHES_PATH)
            assert response.status_code == 200, response.text
            assert response.headers["RateLimit-Limit"] == "1000"
    with api_client(url, "not-a-key") as stranger:
        assert stranger.get(BATCHES_PATH).status_code == 401
    assert "rate limits counted per process: Redis unreachable" in stack.logs()
