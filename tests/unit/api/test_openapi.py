"""The published OpenAPI document lists the errors the server sends (400, never FastAPI's 422)
and tells clients how amounts come."""

from __future__ import annotations

from typing import Any

from api.main import create_app
from schemas.statuses import BatchStatus


def published() -> dict[str, Any]:
    schema: dict[str, Any] = create_app().openapi()
    return schema


def test_no_operation_publishes_422_and_each_with_parameters_publishes_400() -> None:
    schema = published()
    operations = [op for ops in schema["paths"].values() for op in ops.values()]
    assert all("422" not in op["responses"] for op in operations)
    takes_parameters = [op for op in operations if op.get("parameters") or op.get("requestBody")]
    assert takes_parameters and all("400" in op["responses"] for op in takes_parameters)
    error = schema["components"]["schemas"]["ErrorBody"]
    assert {"error", "message"} <= set(error["required"])
    assert "HTTPValidationError" not in schema["components"]["schemas"]
    # The codes are published: one per distinct error (the API's 409s each have their own).
    codes = schema["components"]["schemas"]["ErrorCode"]["enum"]
    assert {"batch_finished", "idempotency_key_reused", "batch_not_failed"} <= set(codes)
    assert len(codes) == len(set(codes))


def test_amounts_are_documented_as_exact_numbers_with_a_strings_opt_in() -> None:
    schema = published()
    assert "parse_float=decimal.Decimal" in schema["info"]["description"]
    for path, method in (
        ("/api/v1/transform/batch", "post"),
        ("/api/v1/transform/batch/{batch_id}/results", "get"),
    ):
        names = {p["name"]: p for p in schema["paths"][path][method]["parameters"]}
        assert names["decimals"]["schema"]["enum"] == ["number", "string"], path


def test_every_status_field_publishes_the_one_batch_status_enum() -> None:
    schema = published()
    components = schema["components"]["schemas"]
    assert components["BatchStatus"]["enum"] == [status.value for status in BatchStatus]
    ref = {"$ref": "#/components/schemas/BatchStatus"}
    for model in ("BatchAccepted", "BatchStatusBody"):
        assert components[model]["properties"]["status"] == ref, model
    listing = schema["paths"]["/api/v1/transform/batches"]["get"]["parameters"]
    status_filter = next(p for p in listing if p["name"] == "status")
    assert ref in status_filter["schema"]["anyOf"]
