"""Each Batchline API call as an httpx request, and each answer read back: the half of the
client that the synchronous and the asynchronous client share (they differ only in how they
send).

Every failure comes out as a ``ClientError`` whose text is one printable line: an API error as
``404 not_found: Batch job not found``, a network failure as "the server at URL is unreachable".
The API key travels in a header only and is never part of a message.
"""

from __future__ import annotations

from collections.abc import Sequence
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
from schemas.statuses import FINISHED

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
PARTIAL_HEADER = "Batchline-Partial"
# Polling a batch until it ends, and pausing when a 429 carries no usable Retry-After.
POLL_INTERVAL_S = 0.5
RATE_LIMITED_PAUSE_S = 5.0
ERRORS_PAGE = 1000


def client_options(url: str, api_key: str | None, timeout: httpx.Timeout | None) -> dict[str, Any]:
    """What httpx.Client and httpx.AsyncClient are both built with."""
    headers = {"User-Agent": "batchline-client"}
    if api_key:
        headers["X-API-Key"] = api_key
    return {
        "base_url": url,
        "headers": headers,
        "timeout": timeout or httpx.Timeout(READ_TIMEOUT_S, connect=CONNECT_TIMEOUT_S),
    }


class Calls:
    """Builds the request of each call; ``build`` is an httpx client's ``build_request``."""

    def __init__(self, http: httpx.Client | httpx.AsyncClient) -> None:
        self._build = http.build_request

    def submit(
        self,
        items: Sequence[Any],
        *,
        batch_size: int,
        pipeline: str,
        on_invalid: str | None,
        metadata: dict[str, str] | None,
        idempotency_key: str | None,
    ) -> httpx.Request:
        """With ``Prefer: respond-async``: a 202 {batch_id, status} at once, or a 200 with the
        results when the server already had them (an idempotent retry)."""
        body: dict[str, Any] = {"data": items, "batch_size": batch_size, "pipeline": pipeline}
        if on_invalid is not None:
            body["on_invalid"] = on_invalid
        if metadata:
            body["metadata"] = metadata
        headers = {"Content-Type": JSON, "Prefer": "respond-async"}
        if idempotency_key is not None:
            headers["Idempotency-Key"] = idempotency_key
        return self._build("POST", BATCH_PATH, content=jsonio.dumps(body), headers=headers)

    def status(self, batch_id: str) -> httpx.Request:
        return self._build("GET", batch_path(batch_id))

    def cancel(self, batch_id: str) -> httpx.Request:
        return self._build("POST", f"{batch_path(batch_id)}/cancel")

    def replay(self, batch_id: str, pipeline: str | None) -> httpx.Request:
        body = {} if pipeline is None else {"pipeline": pipeline}
        return self._build(
            "POST",
            f"{batch_path(batch_id)}/replay",
            content=jsonio.dumps(body),
            headers={"Content-Type": JSON},
        )

    def retry(self, batch_id: str) -> httpx.Request:
        return self._build("POST", f"{batch_path(batch_id)}/retry")

    def errors(self, batch_id: str, offset: int, limit: int) -> httpx.Request:
        params = {"offset": offset, "limit": limit}
        return self._build("GET", f"{batch_path(batch_id)}/errors", params=params)

    def batches(self, offset: int, limit: int, status: str | None) -> httpx.Request:
        params: dict[str, Any] = {"offset": offset, "limit": limit}
        if status is not None:
            params["status"] = status
        return self._build("GET", BATCHES_PATH, params=params)

    def results(self, batch_id: str) -> httpx.Request:
        return self._build("GET", f"{batch_path(batch_id)}/results", headers={"Accept": NDJSON})

    def pipelines(self) -> httpx.Request:
        return self._build("GET", PIPELINES_PATH)

    def pipeline(self, ref: str) -> httpx.Request:
        if not ref.strip():
            raise InputError("the pipeline is empty: pass name or name@version")
        return self._build("GET", f"{PIPELINES_PATH}/{quote(ref, safe='@')}")

    def validate_pipeline(self, spec: Any, sample: Sequence[Any] | None) -> httpx.Request:
        body: dict[str, Any] = {"spec": spec}
        if sample is not None:
            body["sample"] = sample
        return self._build(
            "POST",
            f"{PIPELINES_PATH}/validate",
            content=jsonio.dumps(body),
            headers={"Content-Type": JSON},
        )


def json_body(response: httpx.Response, url: str, has_key: bool) -> dict[str, Any]:
    """The answer's JSON object (numbers with a fraction as exact Decimals), or its error."""
    if response.is_error:
        raise api_error(response, has_key)
    try:
        body = jsonio.loads(response.content)
    except jsonio.JSONDecodeError:
        body = None
    if not isinstance(body, dict):
        raise ClientError(
            f"{response.status_code}: the server at {url} answered something other than "
            "a JSON object; is --url pointing at a Batchline API?"
        )
    return body


def is_partial(response: httpx.Response) -> bool:
    return bool(response.headers.get(PARTIAL_HEADER, "false").lower() == "true")


def finished(status: dict[str, Any]) -> bool:
    return bool(status.get("status") in FINISHED)


def poll_interval(given: float | None) -> float:
    # Read when used, not when a default was bound: tests set POLL_INTERVAL_S to 0.
    return POLL_INTERVAL_S if given is None else given


def send_failure(exc: Exception, url: str) -> ClientError:
    """A ClientError for what httpx raised while sending (no answer came)."""
    if isinstance(exc, httpx.InvalidURL | httpx.UnsupportedProtocol):
        return bad_url(url)
    if isinstance(exc, httpx.TimeoutException):
        phase = "connect" if isinstance(exc, httpx.ConnectTimeout) else "answer"
        return ServerUnreachable(
            f"the server at {url} did not {phase} in time; check that it is running "
            "and reachable (--url or BATCHLINE_URL)"
        )
    return ServerUnreachable(
        f"the server at {url} is unreachable ({reason(exc)}); start it with "
        "`batchline dev` or point --url / BATCHLINE_URL at a running API"
    )


SEND_FAILURES = (httpx.InvalidURL, httpx.UnsupportedProtocol, httpx.TransportError)


def stream_broke(exc: httpx.TransportError, url: str) -> ServerUnreachable:
    return ServerUnreachable(
        f"the results stream from {url} broke off: {reason(exc)}; run the command again"
    )


def rate_limit_pause(exc: ApiResponseError) -> float | None:
    """How long to wait before polling again after ``exc``, or None when it is no 429 (other
    scripts on the same key may use up its request rate: that is waited out, not fatal)."""
    if exc.status_code != 429:
        return None
    return exc.retry_after_s or RATE_LIMITED_PAUSE_S


def api_error(response: httpx.Response, has_key: bool) -> ApiResponseError:
    try:
        body = jsonio.loads(response.content)
    except jsonio.JSONDecodeError:
        body = None
    hint = KEY_HINT if response.status_code == 401 and not has_key else None
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


def batch_path(batch_id: str) -> str:
    if not batch_id.strip():
        # An empty id would name another route; say so here rather than relay its 404.
        raise InputError("the batch id is empty: pass the id that submit printed")
    # Quoted whole, so an id can never reach another path ("../batches").
    return f"{BATCH_PATH}/{quote(batch_id, safe='')}"


def reason(exc: Exception) -> str:
    text = " ".join(str(exc).split())
    return text or type(exc).__name__


def bad_url(url: str) -> BadServerUrl:
    return BadServerUrl(f"{url!r} is not a usable server URL; give one like {DEFAULT_URL}")
