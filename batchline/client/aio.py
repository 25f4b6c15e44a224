"""The asynchronous Python client: the same calls, answers and errors as BatchlineClient.

from batchline.client import AsyncBatchlineClient

async with AsyncBatchlineClient("http://127.0.0.1:8000", api_key) as client:
    status = await client.submit(items, wait=True, on_progress=print)
    async for result in client.iter_results(status["batch_id"]):
        ...
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from types import TracebackType
from typing import Any

import httpx

from batchline.client import calls
from batchline.client.calls import DEFAULT_URL, Calls
from batchline.client.errors import ApiResponseError, WaitTimedOut
from batchline.client.http import Progress
from schemas import jsonio

__all__ = ["AsyncBatchlineClient"]


class AsyncBatchlineClient:
    """One connection pool to one API; use it with ``async with`` so the pool is closed."""

    def __init__(
        self,
        url: str = DEFAULT_URL,
        api_key: str | None = None,
        *,
        transport: httpx.AsyncBaseTransport | None = None,
        timeout: httpx.Timeout | None = None,
        sleep: Callable[[float], Awaitable[None]] | None = None,
    ) -> None:
        self.url = url.rstrip("/")
        self._has_key = bool(api_key)
        self._sleep = sleep
        try:
            self._http = httpx.AsyncClient(
                transport=transport, **calls.client_options(self.url, api_key, timeout)
            )
        except (httpx.InvalidURL, httpx.UnsupportedProtocol, TypeError):
            raise calls.bad_url(self.url) from None
        self._calls = Calls(self._http)

    async def __aenter__(self) -> AsyncBatchlineClient:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self._http.aclose()

    async def submit(
        self,
        items: Sequence[Any],
        *,
        batch_size: int = 100,
        pipeline: str = "default",
        on_invalid: str | None = None,
        metadata: dict[str, str] | None = None,
        idempotency_key: str | None = None,
        wait: bool = False,
        on_progress: Progress | None = None,
        timeout_s: float | None = None,
    ) -> dict[str, Any]:
        """As BatchlineClient.submit."""
        answer = await self._json(
            self._calls.submit(
                items,
                batch_size=batch_size,
                pipeline=pipeline,
                on_invalid=on_invalid,
                metadata=metadata,
                idempotency_key=idempotency_key,
            )
        )
        if not wait or "results" in answer:
            return answer
        return await self.wait(answer["batch_id"], on_progress=on_progress, timeout_s=timeout_s)

    async def wait(
        self,
        batch_id: str,
        *,
        on_progress: Progress | None = None,
        timeout_s: float | None = None,
        interval_s: float | None = None,
    ) -> dict[str, Any]:
        """As BatchlineClient.wait."""
        deadline = None if timeout_s is None else time.monotonic() + timeout_s
        while True:
            status = await self._poll(batch_id, deadline)
            if on_progress is not None:
                on_progress(status)
            if calls.finished(status):
                return status
            if deadline is not None and time.monotonic() >= deadline:
                raise WaitTimedOut(status)
            await (self._sleep or asyncio.sleep)(calls.poll_interval(interval_s))

    async def _poll(self, batch_id: str, deadline: float | None) -> dict[str, Any]:
        while True:
            try:
                return await self.status(batch_id)
            except ApiResponseError as exc:
                pause = calls.rate_limit_pause(exc)
                if pause is None:
                    raise
                if deadline is not None and time.monotonic() + pause > deadline:
                    raise WaitTimedOut({}) from None
                await (self._sleep or asyncio.sleep)(pause)

    async def status(self, batch_id: str) -> dict[str, Any]:
        return await self._json(self._calls.status(batch_id))

    async def cancel(self, batch_id: str) -> dict[str, Any]:
        return await self._json(self._calls.cancel(batch_id))

    async def replay(self, batch_id: str, pipeline: str | None = None) -> dict[str, Any]:
        return await self._json(self._calls.replay(batch_id, pipeline))

    async def retry(self, batch_id: str) -> dict[str, Any]:
        return await self._json(self._calls.retry(batch_id))

    async def errors(
        self, batch_id: str, offset: int = 0, limit: int = calls.ERRORS_PAGE
    ) -> dict[str, Any]:
        return await self._json(self._calls.errors(batch_id, offset, limit))

    async def iter_errors(self, batch_id: str) -> AsyncIterator[dict[str, Any]]:
        seen = 0
        while True:
            page = await self.errors(batch_id, offset=seen, limit=calls.ERRORS_PAGE)
            found = page.get("errors") or []
            for error in found:
                yield error
            seen += len(found)
            if not found or seen >= page.get("total", 0):
                return

    async def batches(
        self, offset: int = 0, limit: int = 50, status: str | None = None
    ) -> dict[str, Any]:
        return await self._json(self._calls.batches(offset, limit, status))

    async def pipelines(self) -> dict[str, Any]:
        return await self._json(self._calls.pipelines())

    async def pipeline(self, ref: str) -> dict[str, Any]:
        return await self._json(self._calls.pipeline(ref))

    async def validate_pipeline(
        self, spec: Any, sample: Sequence[Any] | None = None
    ) -> dict[str, Any]:
        return await self._json(self._calls.validate_pipeline(spec, sample))

    async def iter_results(self, batch_id: str) -> AsyncIterator[Any]:
        """Each result, parsed (amounts as Decimals), streamed in item order."""
        response = await self._send(self._calls.results(batch_id), stream=True)
        try:
            if response.is_error:
                await response.aread()
                raise calls.api_error(response, self._has_key)
            try:
                async for line in response.aiter_lines():
                    if line:
                        yield jsonio.loads(line)
            except httpx.TransportError as exc:
                raise calls.stream_broke(exc, self.url) from None
        finally:
            await response.aclose()

    async def _json(self, request: httpx.Request) -> dict[str, Any]:
        return calls.json_body(await self._send(request), self.url, self._has_key)

    async def _send(self, request: httpx.Request, stream: bool = False) -> httpx.Response:
        try:
            return await self._http.send(request, stream=stream)
        except calls.SEND_FAILURES as exc:
            raise calls.send_failure(exc, self.url) from None
