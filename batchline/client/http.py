"""A small synchronous client for the Batchline HTTP API, built on httpx.

Every failure comes out as a ``ClientError`` whose text is one printable line: an API error as
``404 not_found: Batch job not found``, a network failure as "the server at URL is unreachable".
The API key travels in a header only and is never part of a message.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from types import TracebackType
from typing import Any
from urllib.parse import quote

import httpx

from batchline.client.errors import (
    ApiResponseError,
    BadServerUrl,
    ClientError,
    InputError,
    ServerUnreachable,
)
from schemas import jsonio

DEFAULT_URL = "http://127.0.0.1:8000"
BATCH_PATH = "/api/v1/transform/batch"
BATCHES_PATH = "/api/v1/transform/batches"
PIPELINES_PATH = "/api/v1/pipelines"
NDJSON = "application/x-ndjson"
JSON = "application/json"
CONNECT_TIMEOUT_S = 5.0
# A 10,000-item submit is published to Kafka before the 202 comes back.
READ_TIMEOUT_S = 120.0
STREAM_CHUNK_BYTES = 64 * 1024
KEY_HINT = "pass --api-key or set BATCHLINE_API_KEY"


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
    ) -> None:
        self.url = url.rstrip("/")
        self._has_key = bool(api_key)
        headers = {"User-Agent": "batchline-cli"}
        if api_key:
            headers["X-API-Key"] = api_key
        try:
            self._http = httpx.Client(
                base_url=self.url,
                headers=headers,
                transport=transport,
                timeout=timeout or httpx.Timeout(READ_TIMEOUT_S, connect=CONNECT_TIMEOUT_S),
            )
        except (httpx.InvalidURL, httpx.UnsupportedProtocol, TypeError):
            raise _bad_url(self.url) from None

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
    ) -> dict[str, Any]:
        """POST a batch with ``Prefer: respond-async``: a 202 {batch_id, status} at once, or a
        200 with the results when the server already had them (an idempotent retry)."""
        body: dict[str, Any] = {"data": items, "batch_size": batch_size, "pipeline": pipeline}
        if on_invalid is not None:
            body["on_invalid"] = on_invalid
        headers = {"Content-Type": JSON, "Prefer": "respond-async"}
        request = self._http.build_request(
            "POST", BATCH_PATH, content=jsonio.dumps(body), headers=headers
        )
        return self._json(request)

    def status(self, batch_id: str) -> dict[str, Any]:
        return self._json(self._http.build_request("GET", _batch_path(batch_id)))

    def cancel(self, batch_id: str) -> dict[str, Any]:
        return self._json(self._http.build_request("POST", f"{_batch_path(batch_id)}/cancel"))

    def replay(self, batch_id: str, pipeline: str | None = None) -> dict[str, Any]:
        """POST .../replay: a 202 {batch_id, status} of the new batch."""
        body = {} if pipeline is None else {"pipeline": pipeline}
        request = self._http.build_request(
            "POST",
            f"{_batch_path(batch_id)}/replay",
            content=jsonio.dumps(body),
            headers={"Content-Type": JSON},
        )
        return self._json(request)

    def retry(self, batch_id: str) -> dict[str, Any]:
        """POST .../retry: a 202 {batch_id, status} once the failed chunks run again."""
        return self._json(self._http.build_request("POST", f"{_batch_path(batch_id)}/retry"))

    def errors(self, batch_id: str, offset: int = 0, limit: int = 1000) -> dict[str, Any]:
        """GET .../errors: a page of the records dropped as invalid, as {row, field, reason}."""
        params = {"offset": offset, "limit": limit}
        path = f"{_batch_path(batch_id)}/errors"
        return self._json(self._http.build_request("GET", path, params=params))

    def batches(self, offset: int = 0, limit: int = 50) -> dict[str, Any]:
        params = {"offset": offset, "limit": limit}
        return self._json(self._http.build_request("GET", BATCHES_PATH, params=params))

    def pipelines(self) -> dict[str, Any]:
        return self._json(self._http.build_request("GET", PIPELINES_PATH))

    def pipeline(self, ref: str) -> dict[str, Any]:
        if not ref.strip():
            raise InputError("the pipeline is empty: pass name or name@version")
        path = f"{PIPELINES_PATH}/{quote(ref, safe='@')}"
        return self._json(self._http.build_request("GET", path))

    def validate_pipeline(self, spec: Any, sample: Sequence[Any] | None) -> dict[str, Any]:
        """The server's check of a spec (a file's text, or a parsed object), with a dry run
        over ``sample``."""
        body: dict[str, Any] = {"spec": spec}
        if sample is not None:
            body["sample"] = sample
        request = self._http.build_request(
            "POST",
            f"{PIPELINES_PATH}/validate",
            content=jsonio.dumps(body),
            headers={"Content-Type": JSON},
        )
        return self._json(request)

    @contextmanager
    def results(self, batch_id: str) -> Iterator[Results]:
        """The results as NDJSON bytes, chunk by chunk as they arrive: never all in memory."""
        request = self._http.build_request(
            "GET", f"{_batch_path(batch_id)}/results", headers={"Accept": NDJSON}
        )
        response = self._send(request, stream=True)
        try:
            if response.is_error:
                response.read()
                raise self._api_error(response)
            partial = response.headers.get("Batchline-Partial", "false").lower() == "true"
            yield Results(self._chunks(response), partial)
        finally:
            response.close()

    def _chunks(self, response: httpx.Response) -> Iterator[bytes]:
        try:
            yield from response.iter_bytes(STREAM_CHUNK_BYTES)
        except httpx.TransportError as exc:
            raise ServerUnreachable(
                f"the results stream from {self.url} broke off: {_reason(exc)}; "
                "run the command again"
            ) from None

    def _json(self, request: httpx.Request) -> dict[str, Any]:
        response = self._send(request)
        if response.is_error:
            raise self._api_error(response)
        try:
            body = jsonio.loads(response.content)
        except jsonio.JSONDecodeError:
            body = None
        if not isinstance(body, dict):
            raise ClientError(
                f"{response.status_code}: the server at {self.url} answered something other than "
                "a JSON object; is --url pointing at a Batchline API?"
            )
        return body

    def _send(self, request: httpx.Request, stream: bool = False) -> httpx.Response:
        try:
            return self._http.send(request, stream=stream)
        except (httpx.InvalidURL, httpx.UnsupportedProtocol):
            raise _bad_url(self.url) from None
        except httpx.TimeoutException as exc:
            phase = "connect" if isinstance(exc, httpx.ConnectTimeout) else "answer"
            raise ServerUnreachable(
                f"the server at {self.url} did not {phase} in time; check that it is running "
                "and reachable (--url or BATCHLINE_URL)"
            ) from None
        except httpx.TransportError as exc:
            raise ServerUnreachable(
                f"the server at {self.url} is unreachable ({_reason(exc)}); start it with "
                "`batchline dev` or point --url / BATCHLINE_URL at a running API"
            ) from None

    def _api_error(self, response: httpx.Response) -> ApiResponseError:
        try:
            body = jsonio.loads(response.content)
        except jsonio.JSONDecodeError:
            body = None
        hint = KEY_HINT if response.status_code == 401 and not self._has_key else None
        if (
            isinstance(body, dict)
            and isinstance(body.get("error"), str)
            and isinstance(body.get("message"), str)
        ):
            details = body.get("details")
            return ApiResponseError(
                response.status_code,
                body["error"],
                body["message"],
                details if isinstance(details, dict) else None,
                hint,
                _retry_after_s(response),
            )
        # Not the API's error shape (a proxy's HTML page, say): its status line says enough.
        phrase = response.reason_phrase or "error"
        return ApiResponseError(
            response.status_code,
            phrase.lower().replace(" ", "_"),
            phrase,
            hint=hint,
            retry_after_s=_retry_after_s(response),
        )


def _retry_after_s(response: httpx.Response) -> float | None:
    try:
        return float(response.headers["Retry-After"])
    except (KeyError, ValueError):
        return None  # absent, or an HTTP date: the caller picks its own pause


def _batch_path(batch_id: str) -> str:
    if not batch_id.strip():
        # An empty id would name another route; say so here rather than relay its 404.
        raise InputError("the batch id is empty: pass the id that submit printed")
    # Quoted whole, so an id can never reach another path ("../batches").
    return f"{BATCH_PATH}/{quote(batch_id, safe='')}"


def _reason(exc: httpx.TransportError) -> str:
    text = " ".join(str(exc).split())
    return text or type(exc).__name__


def _bad_url(url: str) -> BadServerUrl:
    return BadServerUrl(f"{url!r} is not a usable server URL; give one like {DEFAULT_URL}")
