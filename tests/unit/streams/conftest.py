"""Fixtures of the stream handlers' tests: fakes, and handlers wired to them."""

from __future__ import annotations

import pytest
from prometheus_client import CollectorRegistry

from streams import retry
from streams.chunk_handler import ChunkHandler
from streams.finishing import BatchFinisher
from streams.owners import StoredOwners
from telemetry.metrics import Metrics
from tests.unit.streams.builders import SECRET, TOPICS
from tests.unit.streams.fakes import FakeOutputs, FakeStore
from transforms import PipelineRegistry


@pytest.fixture(autouse=True)
def fast_retries(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(retry, "FIRST_DELAY_S", 0)
    monkeypatch.setattr(retry, "MAX_DELAY_S", 0)


@pytest.fixture(scope="session")
def registry() -> PipelineRegistry:
    return PipelineRegistry.load(None, hash_secret=b"test")


@pytest.fixture
def metrics() -> Metrics:
    return Metrics(CollectorRegistry())


@pytest.fixture
def store() -> FakeStore:
    return FakeStore()


@pytest.fixture
def outputs() -> FakeOutputs:
    return FakeOutputs()


@pytest.fixture
def handler(
    store: FakeStore, outputs: FakeOutputs, metrics: Metrics, registry: PipelineRegistry
) -> ChunkHandler:
    return ChunkHandler(
        store=store,
        registry=registry,
        outputs=outputs,
        finisher=BatchFinisher(
            store=store, outputs=outputs, metrics=metrics, status_topic=TOPICS.status
        ),
        metrics=metrics,
        topics=TOPICS,
        secret=SECRET,
        owners=StoredOwners(store),
    )


@pytest.fixture
def finisher(store: FakeStore, outputs: FakeOutputs, metrics: Metrics) -> BatchFinisher:
    return BatchFinisher(store=store, outputs=outputs, metrics=metrics, status_topic=TOPICS.status)
