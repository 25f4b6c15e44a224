"""Reading a JSON request body: bounded in size, and with exact decimals.

FastAPI's own body parsing reads ``100.5`` as a float; Batchline reads every number with a
fraction as a Decimal (schemas.jsonio), so money is exact from the first byte.
"""

from __future__ import annotations

from typing import Any, TypeVar

from fastapi import Request
from pydantic import BaseModel, ValidationError

from api.errors import ApiError, invalid_parameters
from schemas import jsonio

ModelT = TypeVar("ModelT", bound=BaseModel)


def too_large(limit: int) -> ApiError:
    return ApiError(
        413,
        "payload_too_large",
        f"Request body is larger than {limit} bytes; split the batch",
        {"max_bytes": limit},
    )


async def read_body(request: Request, max_bytes: int) -> bytes:
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > max_bytes:
        raise too_large(max_bytes)  # refused before a byte of the body is read
    received = bytearray()
    async for piece in request.stream():
        received += piece
        if len(received) > max_bytes:
            raise too_large(max_bytes)
    return bytes(received)


def parse_json(body: bytes) -> Any:
    try:
        return jsonio.loads(body)
    except jsonio.JSONDecodeError as exc:
        raise ApiError(400, "bad_request", str(exc)) from None


def validate_model(model: type[ModelT], document: Any) -> ModelT:
    try:
        return model.model_validate(document)
    except ValidationError as exc:
        raise invalid_parameters(exc.errors()) from None
