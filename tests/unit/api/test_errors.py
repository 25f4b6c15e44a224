"""A store that cannot be reached is 503 with Retry-After, in the error shape, naming no host."""

from __future__ import annotations

from fastapi import FastAPI
from fastapi.testclient import TestClient

from api.errors import STORE_RETRY_AFTER_S, install_error_handlers
from store import StoreUnavailable


def test_an_unreachable_store_is_503_without_its_address() -> None:
    app = FastAPI()
    install_error_handlers(app)

    @app.get("/status")
    async def status() -> None:
        raise StoreUnavailable("The results store at postgresql://db.internal:5432 is down")

    response = TestClient(app).get("/status")

    assert response.status_code == 503
    assert response.headers["Retry-After"] == str(STORE_RETRY_AFTER_S)
    assert response.json() == {
        "error": "service_unavailable",
        "message": "The results store is unavailable; retry later",
    }
    assert "db.internal" not in response.text
