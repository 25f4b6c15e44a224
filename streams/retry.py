"""Retrying only what can heal.

A lost connection, a timeout, a broker that is not (yet) the leader, a database that is locked
or restarting: these may work on the next try, so they are retried with a growing pause, up to
MAX_ATTEMPTS. Anything else (an integrity error, a value out of range, a bug) fails the same way
every time and is raised at once, so that its message is dead-lettered and the partition moves
on instead of stalling behind it.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import TypeVar

from aiokafka.errors import KafkaError, KafkaTimeoutError

from store import StoreUnavailable
from streams.errors import StreamsError

T = TypeVar("T")
FIRST_DELAY_S = 0.1
MAX_DELAY_S = 5.0
# 0.1 + 0.2 + ... + 5 s: about 20 s of waiting before a call is given up.
MAX_ATTEMPTS = 10

log = logging.getLogger(__name__)


class GaveUp(StreamsError):
    """A transient failure outlasted every attempt."""


def is_transient(exc: BaseException) -> bool:
    if isinstance(exc, KafkaError):
        # aiokafka does not flag its own send timeout as retriable; it is.
        return bool(getattr(exc, "retriable", False)) or isinstance(exc, KafkaTimeoutError)
    return isinstance(exc, StoreUnavailable | ConnectionError | TimeoutError)


async def retry_transient(
    what: str, call: Callable[[], Awaitable[T]], *, attempts: int | None = None
) -> T:
    """``call()``, tried again on transient failures; raises GaveUp after ``attempts``
    (default MAX_ATTEMPTS), and any other failure at once."""
    attempts = attempts or MAX_ATTEMPTS
    delay = FIRST_DELAY_S
    for attempt in range(1, attempts + 1):
        try:
            return await call()
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            if not is_transient(exc):
                raise
            if attempt == attempts:
                raise GaveUp(f"{what}: still failing after {attempts} attempts") from exc
            log.warning(
                "retrying",
                extra={"what": what, "error_type": type(exc).__name__, "delay_s": delay},
            )
            await asyncio.sleep(delay)
            delay = min(delay * 2, MAX_DELAY_S)
    raise AssertionError("unreachable")  # pragma: no cover - the loop returns or raises
