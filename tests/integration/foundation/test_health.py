"""/healthz reports whether Kafka and the store are reachable."""

from __future__ import annotations

from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from api.main import create_app
from batchline.broker import free_port
from schemas.settings import Settings

pytestmark = pytest.mark.kafka


def _settings(tmp_path: Path, kafka: str) -> Settings:
    return Settings(kafka_bootstrap=kafka, store_url=f"sqlite+aiosqlite:///{tmp_path}/r.db")


def test_healthz_is_200_when_kafka_and_store_answer(kafka_bootstrap: str, tmp_path: Path) -> None:
    with TestClient(create_app(_settings(tmp_path, kafka_bootstrap))) as client:
        response = client.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok", "kafka": "ok", "store": "ok"}


def test_healthz_is_503_with_the_same_body_when_kafka_is_down(tmp_path: Path) -> None:
    closed = f"127.0.0.1:{free_port()}"
    with TestClient(create_app(_settings(tmp_path, closed))) as client:
        response = client.get("/healthz")
    assert response.status_code == 503
    assert response.json() == {"status": "unavailable", "kafka": "unreachable", "store": "ok"}
