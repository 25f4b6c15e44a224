"""The HTTP client against httpx.MockTransport: request shapes and one-line errors."""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal
from typing import Any

import httpx
import pytest

from batchline.client.errors import ApiResponseError, BadServerUrl, ServerUnreachable
from batchline.client.http import BatchlineClient
from schemas import jsonio

URL = "http://batchline.test"
KEY = "bl_test-key-never-shown"
Handler = Callable[[httpx.Request], httpx.Response]


def client(handler: Handler, api_key: str | None = KEY) -> BatchlineClient:
    return BatchlineClient(URL, api_key, transport=httpx.MockTransport(handler))


def error(status: int, body: dict[str, Any], **headers: str) -> Handler:
    return lambda request: httpx.Response(status, content=jsonio.dumps(body), headers=headers)


def test_submit_posts_exact_decimals_asynchronously_with_the_key() -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(202, json={"batch_id": "batch_1", "status": "queued"})

    with client(handler) as api:
        answer = api.submit(
            [{"amt": Decimal("100.50")}], batch_size=500, pipeline="p@2", on_invalid="skip"
        )
    assert answer == {"batch_id": "batch_1", "status": "queued"}
    (request,) = seen
    assert (request.method, request.url.path) == ("POST", "/api/v1/transform/batch")
    assert request.headers["Prefer"] == "respond-async"
    assert request.headers["Content-Type"] == "application/json"
    assert request.headers["X-API-Key"] == KEY
    assert request.content == (
        b'{"data":[{"amt":100.50}],"batch_size":500,"pipeline":"p@2","on_invalid":"skip"}'
    )


def test_submit_leaves_on_invalid_to_the_pipeline_when_not_given() -> None:
    bodies: list[Any] = []

    def handler(request: httpx.Request) -> httpx.Response:
        bodies.append(jsonio.loads(request.content))
        return httpx.Response(202, json={"batch_id": "batch_1", "status": "queued"})

    with client(handler) as api:
        api.submit([{"n": 1}])
    assert "on_invalid" not in bodies[0]


def test_status_of_an_unknown_batch_is_one_line_with_status_and_code() -> None:
    body = {"error": "not_found", "message": "Batch job not found", "details": {"batch_id": "x"}}
    with client(error(404, body)) as api, pytest.raises(ApiResponseError) as caught:
        api.status("x")
    assert str(caught.value) == "404 not_found: Batch job not found"
    assert caught.value.status_code == 404


def test_validation_error_names_row_field_and_reason() -> None:
    details = {"row": 5, "field": "amount", "reason": "Invalid number format"}
    body = {
        "error": "validation_error",
        "message": "Invalid data format in batch",
        "details": details,
    }
    with client(error(400, body)) as api, pytest.raises(ApiResponseError) as caught:
        api.submit([{}])
    assert str(caught.value) == (
        "400 validation_error: Invalid data format in batch "
        "(row 5, field amount: Invalid number format)"
    )


def test_bad_request_names_the_first_problem_and_counts_the_rest() -> None:
    problems = [
        {"loc": ["body", "batch_size"], "type": "less_than_equal", "msg": "too big"},
        {"loc": ["body", "pipeline"], "type": "string_type", "msg": "not a string"},
    ]
    body = {
        "error": "bad_request",
        "message": "Invalid request parameters",
        "details": {"errors": problems},
    }
    with client(error(400, body)) as api, pytest.raises(ApiResponseError) as caught:
        api.submit([{}])
    assert str(caught.value) == (
        "400 bad_request: Invalid request parameters (body.batch_size: too big; and 1 more)"
    )


def test_internal_error_keeps_the_request_id_to_quote() -> None:
    body = {
        "error": "internal_error",
        "message": "Processing error",
        "details": {"request_id": "r1"},
    }
    with client(error(500, body)) as api, pytest.raises(ApiResponseError) as caught:
        api.status("x")
    assert str(caught.value) == "500 internal_error: Processing error (request ID r1)"


def test_error_that_is_not_the_api_shape_uses_the_status_line() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(502, text="<html>\n<h1>Bad Gateway</h1>\n</html>")

    with client(handler) as api, pytest.raises(ApiResponseError) as caught:
        api.status("x")
    assert str(caught.value) == "502 bad_gateway: Bad Gateway"


def test_401_without_a_key_says_how_to_give_one() -> None:
    body = {"error": "unauthorized", "message": "Send your API key in the X-API-Key header"}
    with client(error(401, body), api_key=None) as api, pytest.raises(ApiResponseError) as caught:
        api.batches()
    assert "BATCHLINE_API_KEY" in str(caught.value)
    assert "\n" not in str(caught.value)


def test_429_keeps_retry_after() -> None:
    body = {"error": "rate_limit_exceeded", "message": "More than 1000 requests per minute"}
    with client(error(429, body, **{"Retry-After": "7"})) as api:
        with pytest.raises(ApiResponseError) as caught:
            api.status("x")
    assert caught.value.retry_after_s == 7.0


def test_a_multi_line_message_is_printed_on_one_line() -> None:
    body = {"error": "conflict", "message": "Batch is already\ncompleted"}
    with client(error(409, body)) as api, pytest.raises(ApiResponseError) as caught:
        api.cancel("x")
    assert str(caught.value) == "409 conflict: Batch is already completed"


def test_connection_refused_is_unreachable_without_the_key() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("[Errno 111] Connection refused", request=request)

    with client(handler) as api, pytest.raises(ServerUnreachable) as caught:
        api.status("x")
    assert caught.value.exit_code == 2
    assert f"the server at {URL} is unreachable" in str(caught.value)
    assert KEY not in str(caught.value)


def test_url_without_a_scheme_is_refused_clearly() -> None:
    with pytest.raises(BadServerUrl, match="not a usable server URL"):
        BatchlineClient("localhost:8000").status("x")


def test_batch_id_cannot_reach_another_path() -> None:
    paths: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        paths.append(request.url.raw_path.decode())
        return httpx.Response(200, json={"batch_id": "x", "status": "queued"})

    with client(handler) as api:
        api.status("../batches")
    assert paths == ["/api/v1/transform/batch/..%2Fbatches"]


def test_results_stream_asks_for_ndjson_and_passes_the_bytes_through() -> None:
    body = b'{"amount":100.50}\n{"amount":2.00}\n'

    def handler(request: httpx.Request) -> httpx.Response:
        assert request.headers["Accept"] == "application/x-ndjson"
        assert request.url.path == "/api/v1/transform/batch/batch_1/results"
        return httpx.Response(200, content=body, headers={"Content-Type": "application/x-ndjson"})

    with client(handler) as api, api.results("batch_1") as results:
        assert b"".join(results.chunks) == body
        assert results.partial is False


def test_results_say_partial_when_the_server_does() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        headers = {"Content-Type": "application/x-ndjson", "Batchline-Partial": "true"}
        return httpx.Response(200, content=b'{"amount":1.00}\n', headers=headers)

    with client(handler) as api, api.results("batch_1") as results:
        assert results.partial is True


def test_results_of_an_unknown_batch_raise_before_any_bytes() -> None:
    body = {"error": "not_found", "message": "Batch job not found"}
    with client(error(404, body)) as api, pytest.raises(ApiResponseError, match="^404 not_found"):
        with api.results("x"):
            pytest.fail("no stream for an error")


def test_a_success_that_is_not_json_says_the_url_may_be_wrong() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, text="<html>hello</html>")

    with client(handler) as api, pytest.raises(Exception, match="is --url pointing"):
        api.status("x")
