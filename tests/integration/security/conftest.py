"""An authenticated broker (SASL/SCRAM-SHA-512 and ACLs), as `batchline broker --auth` runs it.

Always the local broker from the Maven Central jars, even where a Docker engine answers: what is
tested is the broker set-up that this project provisions. Every test in this folder runs on it:
``kafka_bootstrap`` and ``topic_prefix`` are overridden, so stacks built here log in as the
service principal or fail.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from batchline import broker
from batchline.broker.auth import ADMIN_USER, BrokerCredentials
from streams.kafka_security import KafkaSecurity
from streams.topics import TopicNames, ensure_topics

PARTITIONS = 2


@dataclass(frozen=True, slots=True)
class AuthBroker:
    bootstrap: str
    data_dir: Path
    prefix: str

    @property
    def credentials(self) -> BrokerCredentials:
        return BrokerCredentials.of(self.data_dir)

    def security(self, user: str) -> KafkaSecurity:
        return self.credentials.security(user)

    @property
    def topics(self) -> TopicNames:
        return TopicNames(self.prefix)


@pytest.fixture(scope="session")
def auth_broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AuthBroker]:
    data_dir = tmp_path_factory.mktemp("kafka-auth")
    port = broker.free_port()
    process = broker.start(data_dir, port, auth=True)
    try:
        bootstrap = f"127.0.0.1:{port}"
        broker.wait_ready(bootstrap, process, security=broker.admin_security(data_dir))
        prefix = f"sec-{uuid.uuid4().hex[:8]}"
        broker.grant_acls(data_dir, bootstrap, prefix)
        running = AuthBroker(bootstrap, data_dir, prefix)
        asyncio.run(
            ensure_topics(bootstrap, running.topics, PARTITIONS, running.security(ADMIN_USER))
        )
        yield running
    finally:
        broker.stop(process)


@pytest.fixture(scope="session")
def kafka_bootstrap(auth_broker: AuthBroker) -> str:
    return auth_broker.bootstrap


@pytest.fixture
def topic_prefix(auth_broker: AuthBroker) -> str:
    """The one prefix the principals' ACLs were granted for."""
    return auth_broker.prefix
