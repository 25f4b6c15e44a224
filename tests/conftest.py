"""Fixtures shared by every test tree: where the real Kafka, PostgreSQL and Redis are."""

from __future__ import annotations

import os
import shutil
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

# testcontainers' KafkaContainer drives the Confluent image's start-up scripts (KRaft from 7.0);
# the official apache/kafka image would need its listeners rewritten for the mapped port.
KAFKA_IMAGE = "confluentinc/cp-kafka:7.6.0"


def _docker_engine_answers() -> bool:
    docker = shutil.which("docker")
    if docker is None:
        return False
    try:
        result = subprocess.run([docker, "info"], capture_output=True, timeout=5, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return False
    return result.returncode == 0


@pytest.fixture(scope="session")
def kafka_bootstrap(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A real Apache Kafka broker: BATCHLINE_TEST_KAFKA if set, else a testcontainers broker
    when a Docker engine answers, else one started here from the Maven Central jars."""
    configured = os.environ.get("BATCHLINE_TEST_KAFKA")
    if configured:
        yield configured
        return
    if _docker_engine_answers():
        from testcontainers.community.kafka import KafkaContainer

        with KafkaContainer(KAFKA_IMAGE).with_kraft() as container:
            yield container.get_bootstrap_server()
        return
    from batchline import broker

    port = broker.free_port()
    process = broker.start(tmp_path_factory.mktemp("kafka"), port)
    try:
        bootstrap = f"127.0.0.1:{port}"
        broker.wait_ready(bootstrap, process)
        yield bootstrap
    finally:
        broker.stop(process)


@pytest.fixture
def topic_prefix() -> str:
    """Topic names and consumer groups of one test, never shared with another."""
    return f"test-{uuid.uuid4().hex[:12]}"


def _required_env(name: str, hint: str) -> str:
    value = os.environ.get(name)
    if not value:
        pytest.fail(f"{name} is not set: {hint}", pytrace=False)
    return value


@pytest.fixture(scope="session")
def postgres_url() -> str:
    return _required_env(
        "BATCHLINE_TEST_POSTGRES_URL",
        "run `make test`, or export what `bash scripts/services.sh` prints",
    )


@pytest.fixture(scope="session")
def redis_url() -> str:
    return _required_env(
        "BATCHLINE_TEST_REDIS_URL",
        "run `make test`, or export what `bash scripts/services.sh` prints",
    )


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite+aiosqlite:///{tmp_path / 'results.db'}"
