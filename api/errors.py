"""One error shape everywhere: ``{"error", "message", "details"?}`` with stable error codes."""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from schemas import jsonio
from schemas.http import ErrorCode
from store import StoreUnavailable

log = logging.getLogger(__name__)

HTTP_CODES = {
    400: ErrorCode.BAD_REQUEST,
    401: ErrorCode.UNAUTHORIZED,
    404: ErrorCode.NOT_FOUND,
    405: ErrorCode.METHOD_NOT_ALLOWED,
    406: ErrorCode.NOT_ACCEPTABLE,
    409: ErrorCode.CONFLICT,
    413: ErrorCode.PAYLOAD_TOO_LARGE,
    415: ErrorCode.UNSUPPORTED_MEDIA_TYPE,
    429: ErrorCode.RATE_LIMIT_EXCEEDED,
    503: ErrorCode.SERVICE_UNAVAILABLE,
}


class ApiError(Exception):
    def __init__(
        self,
        status_code: int,
        error: ErrorCode,
        message: str,
        details: Mapping[str, Any] | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status_code = status_code
        self.error = error
        self.message = message
        self.details = dict(details) if details is not None else None
        self.headers = dict(headers or {})


def not_found(batch_id: str) -> ApiError:
    # The same answer for "no such batch" and "another key's batch": 404, never 403.
    return ApiError(404, ErrorCode.NOT_FOUND, "Batch job not found", {"batch_id": batch_id})


def error_response(
    status_code: int,
    error: ErrorCode,
    message: str,
    details: Mapping[str, Any] | None = None,
    headers: Mapping[str, str] | None = None,
) -> JSONResponse:
    body: dict[str, Any] = {"error": error.value, "message": message}
    if details is not None:
        body["details"] = dict(details)
    response = JSONResponse(status_code=status_code, content=None, headers=dict(headers or {}))
    response.body = jsonio.dumps(body)
    response.headers["content-length"] = str(len(response.body))
    return response


def _request_id(request: Request) -> str:
    return str(getattr(request.state, "request_id", "unknown"))


async def _api_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, ApiError)  # noqa: S101 - registered for ApiError only
    return error_response(exc.status_code, exc.error, exc.message, exc.details, exc.headers)


def invalid_parameters(errors: Sequence[Mapping[str, Any]]) -> ApiError:
    # Location and type of each problem, never the input (it may be personal data).
    problems = [
        {"loc": [str(part) for part in error["loc"]], "type": error["type"], "msg": error["msg"]}
        for error in errors[:20]
    ]
    return ApiError(400, ErrorCode.BAD_REQUEST, "Invalid request parameters", {"errors": problems})


async def _validation_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)  # noqa: S101
    return await _api_error(request, invalid_parameters(exc.errors()))


async def _http_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)  # noqa: S101
    code = HTTP_CODES.get(
        exc.status_code,
        ErrorCode.BAD_REQUEST if exc.status_code < 500 else ErrorCode.INTERNAL_ERROR,
    )
    return error_response(exc.status_code, code, str(exc.detail), headers=exc.headers)


STORE_RETRY_AFTER_S = 5


async def _store_unavailable(request: Request, exc: Exception) -> JSONResponse:
    # The store's own message names its host and driver: logged by type, never sent.
    log.warning(
        "results store unavailable",
        extra={"request_id": _request_id(request), "path": request.url.path},
    )
    return error_response(
        503,
        ErrorCode.SERVICE_UNAVAILABLE,
        "The results store is unavailable; retry later",
        headers={"Retry-After": str(STORE_RETRY_AFTER_S)},
    )


async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
    request_id = _request_id(request)
    log.error(
        "unhandled error",
        extra={
            "request_id": request_id,
            "error_type": type(exc).__name__,
            "path": request.url.path,
        },
    )
    return error_response(
        500,
        ErrorCode.INTERNAL_ERROR,
        "Processing error; quote the request ID when reporting it",
        {"request_id": request_id},
        headers={"X-Request-ID": request_id},
    )


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(ApiError, _api_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(StoreUnavailable, _store_unavailable)
    app.add_exception_handler(Exception, _unexpected)
