"""Only the broker's principals get in, and each only where its ACLs say (issue G, point 1)."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.errors import (
    GroupAuthorizationFailedError,
    KafkaConnectionError,
    TopicAuthorizationFailedError,
)

from batchline.broker import BrokerError, ensure_kafka_jars
from batchline.broker.auth import PRODUCER_USER, READER_USER, SERVICE_USER
from batchline.broker.local_broker import prepare
from schemas.http import SEED_RESULT
from streams.app import TABLES
from streams.kafka_security import PLAINTEXT, KafkaSecurity
from streams.topics import changelog_topic
from tests.integration.api.client import post_seed
from tests.integration.security.conftest import AuthBroker
from tests.integration.stack import StackFactory

pytestmark = [pytest.mark.kafka, pytest.mark.slow]
REQUEST_TIMEOUT_MS = 5_000


def internal_topics(auth_broker: AuthBroker) -> list[str]:
    """Every topic only the API and the workers may write: Batchline's and Faust's own."""
    worker_group = f"{auth_broker.prefix}-worker"
    return [*auth_broker.topics.all(), *(changelog_topic(worker_group, t) for t in TABLES)]


async def _send(bootstrap: str, security: KafkaSecurity, topic: str) -> None:
    producer = AIOKafkaProducer(
        bootstrap_servers=bootstrap,
        request_timeout_ms=REQUEST_TIMEOUT_MS,
        **security.client_options(),
    )
    try:
        await producer.start()
        await producer.send_and_wait(topic, b"forged", key=b"batch_victim")
    finally:
        await producer.stop()


async def _read(bootstrap: str, security: KafkaSecurity, topic: str, group: str) -> list[bytes]:
    consumer = AIOKafkaConsumer(
        topic,
        bootstrap_servers=bootstrap,
        group_id=group,
        auto_offset_reset="earliest",
        request_timeout_ms=REQUEST_TIMEOUT_MS,
        **security.client_options(),
    )
    try:
        await consumer.start()
        fetched = await consumer.getmany(timeout_ms=5_000)
        return [record.value or b"" for records in fetched.values() for record in records]
    finally:
        await consumer.stop()


async def test_a_client_without_credentials_can_neither_write_nor_read_any_internal_topic(
    auth_broker: AuthBroker,
) -> None:
    for topic in internal_topics(auth_broker):
        with pytest.raises(KafkaConnectionError):
            await _send(auth_broker.bootstrap, PLAINTEXT, topic)
        with pytest.raises(KafkaConnectionError):
            await _read(auth_broker.bootstrap, PLAINTEXT, topic, f"{auth_broker.prefix}-worker")


async def test_a_wrong_password_is_refused(auth_broker: AuthBroker) -> None:
    impostor = KafkaSecurity.scram(SERVICE_USER, "not-the-password")
    with pytest.raises(KafkaConnectionError):
        await _send(auth_broker.bootstrap, impostor, auth_broker.topics.requests)


async def test_another_principal_may_write_no_internal_topic(auth_broker: AuthBroker) -> None:
    reader = auth_broker.security(READER_USER)
    for topic in internal_topics(auth_broker):
        with pytest.raises(TopicAuthorizationFailedError):
            await _send(auth_broker.bootstrap, reader, topic)


async def test_another_principal_may_not_read_the_raw_records(auth_broker: AuthBroker) -> None:
    reader = auth_broker.security(READER_USER)
    own_group = f"{auth_broker.prefix}.results.{uuid.uuid4().hex[:6]}"
    with pytest.raises(TopicAuthorizationFailedError):
        await _read(auth_broker.bootstrap, reader, auth_broker.topics.requests, own_group)
    # Nor join the workers' group, where it would be handed their partitions.
    with pytest.raises(GroupAuthorizationFailedError):
        await _read(
            auth_broker.bootstrap,
            reader,
            auth_broker.topics.results,
            f"{auth_broker.prefix}-worker",
        )


async def test_the_producer_principal_may_write_chunks_and_records_and_nothing_else(
    auth_broker: AuthBroker,
) -> None:
    producer = auth_broker.security(PRODUCER_USER)
    ingest = {auth_broker.topics.requests, auth_broker.topics.records}
    for topic in ingest:
        await _send(auth_broker.bootstrap, producer, topic)
    for topic in internal_topics(auth_broker):
        if topic not in ingest:
            with pytest.raises(TopicAuthorizationFailedError):
                await _send(auth_broker.bootstrap, producer, topic)
    # Other tenants' raw records are on the requests topic: a producer may not read them.
    with pytest.raises((TopicAuthorizationFailedError, GroupAuthorizationFailedError)):
        await _read(
            auth_broker.bootstrap, producer, auth_broker.topics.requests, f"{auth_broker.prefix}-p"
        )


async def test_the_results_reader_reads_results_in_its_own_groups(auth_broker: AuthBroker) -> None:
    marker = f"result-{uuid.uuid4().hex}".encode()
    producer = AIOKafkaProducer(
        bootstrap_servers=auth_broker.bootstrap,
        **auth_broker.security(SERVICE_USER).client_options(),
    )
    await producer.start()
    try:
        await producer.send_and_wait(auth_broker.topics.results, marker, key=b"batch_x")
    finally:
        await producer.stop()
    group = f"{auth_broker.prefix}.results.{uuid.uuid4().hex[:6]}"
    values = await _read(
        auth_broker.bootstrap, auth_broker.security(READER_USER), auth_broker.topics.results, group
    )
    assert marker in values


def test_a_batch_goes_through_api_and_worker_logged_in_as_the_service(
    make_stack: StackFactory, auth_broker: AuthBroker
) -> None:
    stack = make_stack(**auth_broker.credentials.env(SERVICE_USER))
    stack.add_worker()
    url = stack.add_api()
    response = post_seed(url, stack.api_key)
    assert response.json()["results"] == [SEED_RESULT]
    password = auth_broker.credentials.password(SERVICE_USER)
    assert password not in stack.logs()


def test_a_broker_folder_keeps_the_authentication_it_was_formatted_with(tmp_path: Path) -> None:
    libs = ensure_kafka_jars()
    prepare(tmp_path, 19092, libs)
    with pytest.raises(BrokerError, match="formatted without authentication; start it without"):
        prepare(tmp_path, 19092, libs, auth=True)
