"""The published OpenAPI document says what the server sends.

FastAPI lists a 422 `HTTPValidationError` under every operation that takes parameters; this API
answers every invalid request with 400 in the seed's error shape (api.errors), so those entries
and their schemas are taken out, leaving the 400 each operation already declares.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fastapi import FastAPI

FASTAPI_VALIDATION_SCHEMAS = ("HTTPValidationError", "ValidationError")


def without_fastapi_422(schema: dict[str, Any]) -> dict[str, Any]:
    for operations in schema.get("paths", {}).values():
        for operation in operations.values():
            operation.get("responses", {}).pop("422", None)
    components = schema.get("components", {}).get("schemas", {})
    for name in FASTAPI_VALIDATION_SCHEMAS:
        components.pop(name, None)
    return schema


def publish_truthful_openapi(app: FastAPI) -> None:
    generate: Callable[[], dict[str, Any]] = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = without_fastapi_422(generate())
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
