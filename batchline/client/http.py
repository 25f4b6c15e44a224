"""The synchronous Python client of the Batchline HTTP API (the CLI is built on it).

    from batchline.client import BatchlineClient

    with BatchlineClient("http://127.0.0.1:8000", api_key) as client:
        status = client.submit(items, wait=True, on_progress=print)
        for result in client.iter_results(status["batch_id"]):
            ...

Amounts come back as exact ``Decimal``s, never floats. Every failure is a ``ClientError``
(see batchline.client.errors) whose text is one printable line.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from types import TracebackType
from typing import Any

import httpx

from batchline.client import calls
from batchline.client.calls import DEFAULT_URL, Calls
from batchline.client.errors import ApiResponseError, WaitTimedOut
from schemas import jsonio

__all__ = ["DEFAULT_URL", "BatchlineClient", "Progress", "Results"]

# Called with each status read while waiting for a batch.
Progress = Callable[[dict[str, Any]], None]


@dataclass(frozen=True, slots=True)
class Results:
    """A results stream, and whether the server said it is partial (the batch did not
    complete: it still runs, or was cancelled or failed)."""

    chunks: Iterator[bytes]
    partial: bool


class BatchlineClient:
    """One connection pool to one API; use it as a context manager so the pool is closed."""

    def __init__(
        self,
        url: str = DEFAULT_URL,
        api_key: str | None = None,
        *,
        transport: httpx.BaseTransport | None = None,
        timeout: httpx.Timeout | None = None,
        sleep: Callable[[float], None] | None = None,
    ) -> None:
        self.url = url.rstrip("/")
        self._has_key = bool(api_key)
        # Looked up when used (time.sleep unless given), so tests may replace time.sleep.
        self._sleep = sleep
        try:
            self._http = httpx.Client(
                transport=transport, **calls.client_options(self.url, api_key, timeout)
            )
        except (httpx.InvalidURL, httpx.UnsupportedProtocol, TypeError):
            raise calls.bad_url(self.url) from None
        self._calls = Calls(self._http)

    def __enter__(self) -> BatchlineClient:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        self._http.close()

    def submit(
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
        """Submits a batch: {batch_id, status} at once, or with ``wait`` its final status (see
        :meth:`wait`). A 200 with results (an idempotent retry the server had) comes as is."""
        answer = self._json(
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
        return self.wait(answer["batch_id"], on_progress=on_progress, timeout_s=timeout_s)

    def wait(
        self,
        batch_id: str,
        *,
        on_progress: Progress | None = None,
        timeout_s: float | None = None,
        interval_s: float | None = None,
    ) -> dict[str, Any]:
        """Polls the batch until it is completed, cancelled or failed; returns its last status.
        ``on_progress`` gets every status read. A 429 is waited out. Raises WaitTimedOut, with
        the last status, when ``timeout_s`` runs out first."""
        deadline = None if timeout_s is None else time.monotonic() + timeout_s
        while True:
            status = self._poll(batch_id, deadline)
            if on_progress is not None:
                on_progress(status)
            if calls.finished(status):
                return status
            if deadline is not None and time.monotonic() >= deadline:
                raise WaitTimedOut(status)
            (self._sleep or time.sleep)(calls.poll_interval(interval_s))

    def _poll(self, batch_id: str, deadline: float | None) -> dict[str, Any]:
        while True:
            try:
                return self.status(batch_id)
            except ApiResponseError as exc:
                pause = calls.rate_limit_pause(exc)
                if pause is None:
                    raise
                if deadline is not None and time.monotonic() + pause > deadline:
                    raise WaitTimedOut({}) from None
                (self._sleep or time.sleep)(pause)

    def status(self, batch_id: str) -> dict[str, Any]:
        return self._json(self._calls.status(batch_id))

    def cancel(self, batch_id: str) -> dict[str, Any]:
        return self._json(self._calls.cancel(batch_id))

    def replay(self, batch_id: str, pipeline: str | None = None) -> dict[str, Any]:
        """POST .../replay: a 202 {batch_id, status} of the new batch."""
        return self._json(self._calls.replay(batch_id, pipeline))

    def retry(self, batch_id: str) -> dict[str, Any]:
        """POST .../retry: a 202 {batch_id, status} once the failed chunks run again."""
        return self._json(self._calls.retry(batch_id))

    def errors(
        self, batch_id: str, offset: int = 0, limit: int = calls.ERRORS_PAGE
    ) -> dict[str, Any]:
        """One page of the records dropped as invalid, as {row, field, reason}."""
        return self._json(self._calls.errors(batch_id, offset, limit))

    def iter_errors(self, batch_id: str) -> Iterator[dict[str, Any]]:
        """Every record dropped as invalid, page after page."""
        seen = 0
        while True:
            page = self.errors(batch_id, offset=seen, limit=calls.ERRORS_PAGE)
            found = page.get("errors") or []
            yield from found
            seen += len(found)
            if not found or seen >= page.get("total", 0):
                return

    def batches(
        self, offset: int = 0, limit: int = 50, status: str | None = None
    ) -> dict[str, Any]:
        """A page of your batches, newest first (only those in ``status``, if given)."""
        return self._json(self._calls.batches(offset, limit, status))

    def pipelines(self) -> dict[str, Any]:
        return self._json(self._calls.pipelines())

    def pipeline(self, ref: str) -> dict[str, Any]:
        return self._json(self._calls.pipeline(ref))

    def validate_pipeline(self, spec: Any, sample: Sequence[Any] | None = None) -> dict[str, Any]:
        """The server's check of a spec (a file's text, or a parsed object), with a dry run
        over ``sample``."""
        return self._json(self._calls.validate_pipeline(spec, sample))

    @contextmanager
    def results(self, batch_id: str) -> Iterator[Results]:
        """The results as NDJSON bytes, chunk by chunk as they arrive: never all in memory."""
        response = self._send(self._calls.results(batch_id), stream=True)
        try:
            if response.is_error:
                response.read()
                raise calls.api_error(response, self._has_key)
            yield Results(self._chunks(response), calls.is_partial(response))
        finally:
            response.close()

    def iter_results(self, batch_id: str) -> Iterator[Any]:
        """Each result, parsed (amounts as Decimals), streamed in item order."""
        with self.results(batch_id) as results:
            pending = b""
            for chunk in results.chunks:
                *lines, pending = (pending + chunk).split(b"\n")
                for line in lines:
                    if line.strip():
                        yield jsonio.loads(line)
            if pending.strip():
                yield jsonio.loads(pending)

    def _chunks(self, response: httpx.Response) -> Iterator[bytes]:
        try:
            yield from response.iter_bytes(calls.STREAM_CHUNK_BYTES)
        except httpx.TransportError as exc:
            raise calls.stream_broke(exc, self.url) from None

    def _json(self, request: httpx.Request) -> dict[str, Any]:
        return calls.json_body(self._send(request), self.url, self._has_key)

    def _send(self, request: httpx.Request, stream: bool = False) -> httpx.Response:
        try:
            return self._http.send(request, stream=stream)
        except calls.SEND_FAILURES as exc:
            raise calls.send_failure(exc, self.url) from None
