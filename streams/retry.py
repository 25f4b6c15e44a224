"""Retrying the store and Kafka calls an agent cannot do without.

An agent that raises has its message acknowledged by Faust all the same, so giving up on a
transient failure (the database restarting, say) would lose the chunk. Instead the agent waits
and tries again; a stuck worker shows as consumer lag, never as a lost batch.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import TypeVar

T = TypeVar("T")
FIRST_DELAY_S = 0.1
MAX_DELAY_S = 5.0

log = logging.getLogger(__name__)


async def retry_forever(what: str, call: Callable[[], Awaitable[T]]) -> T:
    delay = FIRST_DELAY_S
    while True:
        try:
            return await call()
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # noqa: BLE001 - every failure here is worth another try
            log.warning(
                "retrying",
                extra={"what": what, "error_type": type(exc).__name__, "delay_s": delay},
            )
            await asyncio.sleep(delay)
            delay = min(delay * 2, MAX_DELAY_S)
