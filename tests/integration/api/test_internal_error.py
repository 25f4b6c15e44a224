"""A 500 carries a request ID and neither a stack trace nor the input that caused it."""

from __future__ import annotations

from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from api.main import create_app
from schemas.settings import Settings

pytestmark = pytest.mark.kafka
PLANTED = "jane.roe.4471@example.org"


def test_unexpected_error_answers_500_with_request_id_and_no_trace(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    app = create_app(
        Settings(kafka_bootstrap=kafka_bootstrap, store_url=f"sqlite+aiosqlite:///{tmp_path}/r.db")
    )

    @app.get("/boom")
    async def boom() -> None:
        raise RuntimeError(f"could not handle {PLANTED}")

    with TestClient(app, raise_server_exceptions=False) as client:
        response = client.get("/boom", headers={"X-Request-ID": "req-123"})

    assert response.status_code == 500
    body = response.json()
    assert body == {
        "error": "internal_error",
        "message": "Processing error; quote the request ID when reporting it",
        "details": {"request_id": "req-123"},
    }
    assert response.headers["X-Request-ID"] == "req-123"
    assert PLANTED not in response.text and "Traceback" not in response.text
