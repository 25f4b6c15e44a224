"""A producer's own principal writes its own ingest and records topics and nothing else; workers
read every ingest topic and admit there only the batch IDs of its namespace, and mark the
results of its records with it (issue G, producers)."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import time
import uuid
from collections.abc import Sequence
from pathlib import Path

import httpx
import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.errors import TopicAuthorizationFailedError

from api.security import hash_api_key
from batchline.broker.auth import (
    ADMIN_USER,
    READER_USER,
    SERVICE_USER,
    BrokerCredentials,
    producer_principal,
)
from schemas import jsonio
from streams.kafka_security import KafkaSecurity
from streams.owners import producer_namespace
from streams.signing import Headers
from tests.integration.security.conftest import PARTITIONS, AuthBroker
from tests.integration.stack import StackFactory, new_key
from tests.unit.streams.builders import item, items, owned_batch_id, owned_chunks

pytestmark = [pytest.mark.kafka, pytest.mark.slow]
REQUEST_TIMEOUT_MS = 5_000
COMPLETION_TIMEOUT_S = 60.0


def grant(
    auth_broker: AuthBroker, store_url: str, key_name: str
) -> subprocess.CompletedProcess[str]:
    """`batchline keys grant-producer` on the local broker (its folder), for a key."""
    where = [key_name, "--broker-dir", str(auth_broker.data_dir)]
    return _grant(auth_broker, {"BATCHLINE_STORE_URL": store_url}, where)


def grant_elsewhere(
    auth_broker: AuthBroker, namespace: str, credentials_dir: Path
) -> subprocess.CompletedProcess[str]:
    """As on a broker of your own whose keys' store is out of reach: logged in as the admin by
    the settings, the producer named by its namespace, no store at all."""
    where = ["--namespace", namespace, "--credentials-dir", str(credentials_dir)]
    return _grant(auth_broker, auth_broker.credentials.env(ADMIN_USER), where)


def _grant(
    auth_broker: AuthBroker, more_env: dict[str, str], arguments: list[str]
) -> subprocess.CompletedProcess[str]:
    env = {
        "PATH": "/usr/bin:/bin",
        "BATCHLINE_KAFKA_BOOTSTRAP": auth_broker.bootstrap,
        "BATCHLINE_TOPIC_PREFIX": auth_broker.prefix,
        "BATCHLINE_PARTITIONS": str(PARTITIONS),
        **more_env,
    }
    return subprocess.run(
        [sys.executable, "-m", "batchline.cli", "keys", "grant-producer", *arguments],
        capture_output=True,
        text=True,
        timeout=180,
        env=env,
        check=False,
    )


async def send(
    auth_broker: AuthBroker,
    security: KafkaSecurity,
    topic: str,
    messages: Sequence[tuple[bytes, bytes, Headers]],
) -> None:
    producer = AIOKafkaProducer(
        bootstrap_servers=auth_broker.bootstrap,
        request_timeout_ms=REQUEST_TIMEOUT_MS,
        **security.client_options(),
    )
    try:
        await producer.start()
        for key, value, headers in messages:
            await producer.send_and_wait(topic, value, key=key, headers=list(headers))
    finally:
        await producer.stop()


async def record_result_headers(
    auth_broker: AuthBroker, security: KafkaSecurity, key: bytes
) -> list[tuple[str, bytes]]:
    """The headers of the record-results topic's record keyed ``key`` (other tests' records
    may be there too)."""
    consumer = AIOKafkaConsumer(
        auth_broker.topics.record_results,
        bootstrap_servers=auth_broker.bootstrap,
        auto_offset_reset="earliest",
        **security.client_options(),
    )
    try:
        await consumer.start()
        deadline = time.monotonic() + COMPLETION_TIMEOUT_S
        while time.monotonic() < deadline:
            for records in (await consumer.getmany(timeout_ms=500)).values():
                for record in records:
                    if record.key == key:
                        return list(record.headers)
    finally:
        await consumer.stop()
    raise AssertionError(f"no record keyed {key!r} on {auth_broker.topics.record_results}")


def wait_completed(url: str, api_key: str, batch_id: str) -> dict[str, object]:
    deadline = time.monotonic() + COMPLETION_TIMEOUT_S
    while True:
        response = httpx.get(
            f"{url}/api/v1/transform/batch/{batch_id}", headers={"X-API-Key": api_key}
        )
        if response.status_code == 200 and response.json()["status"] == "completed":
            body: dict[str, object] = response.json()
            return body
        assert time.monotonic() < deadline, f"batch not completed: {response.text[:300]}"
        time.sleep(0.5)


def test_a_granted_producer_writes_its_own_topics_only_its_batches_complete_and_records_are_its(
    make_stack: StackFactory, auth_broker: AuthBroker, tmp_path: Path
) -> None:
    stack = make_stack(**auth_broker.credentials.env(SERVICE_USER))
    stack.add_worker()
    url = stack.add_api()
    owner_key = new_key(stack.store_url, "owner")
    other_key = new_key(stack.store_url, "other")

    granted = grant(auth_broker, stack.store_url, "owner")
    assert granted.returncode == 0, granted.stderr
    namespace = producer_namespace(hash_api_key(owner_key))
    principal = producer_principal(namespace)
    own_topic = auth_broker.topics.ingest(namespace)
    own_records = auth_broker.topics.producer_records(namespace)
    assert f"{principal} may write {own_topic} and {own_records} only" in granted.stdout
    assert granted.stdout.splitlines()[-1] == namespace  # for NS=$(... | tail -n 1)
    password = auth_broker.credentials.password(principal)
    assert password not in granted.stdout + granted.stderr
    again = grant(auth_broker, stack.store_url, "owner")  # changes nothing
    assert again.returncode == 0 and auth_broker.credentials.password(principal) == password
    # The other producer is granted as on a broker of your own: the admin's settings, its
    # namespace (`batchline keys list`), and a folder of its own for the producer's login.
    others_folder = tmp_path / "producers"
    others_namespace = producer_namespace(hash_api_key(other_key))
    granted_there = grant_elsewhere(auth_broker, others_namespace, others_folder)
    assert granted_there.returncode == 0, granted_there.stderr
    others_topics = [
        auth_broker.topics.ingest(others_namespace),
        auth_broker.topics.producer_records(others_namespace),
    ]

    security = auth_broker.credentials.security(principal)
    batch_id = owned_batch_id(owner_key, "orders-1")
    asyncio.run(
        send(auth_broker, security, own_topic, owned_chunks(owner_key, batch_id, items(5), 2))
    )
    status = wait_completed(url, owner_key, batch_id)
    assert (status["processed"], status["total"]) == (5, 5)

    # A record on its own records topic comes out marked with its namespace, whatever it says.
    key = f"order-{uuid.uuid4().hex}".encode()
    forged = (("batchline-producer", others_namespace.encode()),)
    asyncio.run(send(auth_broker, security, own_records, [(key, jsonio.dumps(item(1)), forged)]))
    reader = auth_broker.security(READER_USER)
    headers = asyncio.run(record_result_headers(auth_broker, reader, key))
    assert ("batchline-outcome", b"transformed") in headers
    assert [v for name, v in headers if name == "batchline-producer"] == [namespace.encode()]

    # The other producer's login, from its folder, writes its own topics and its batch completes.
    others_principal = producer_principal(others_namespace)
    others_login = BrokerCredentials(others_folder).security(others_principal)
    admin_password = auth_broker.credentials.password(ADMIN_USER)
    assert admin_password not in granted_there.stdout + granted_there.stderr
    others_batch = owned_batch_id(other_key, "others-1")
    others_chunks = owned_chunks(other_key, others_batch, items(3), 1)
    asyncio.run(send(auth_broker, others_login, others_topics[0], others_chunks))
    assert wait_completed(url, other_key, others_batch)["processed"] == 3
    asyncio.run(send(auth_broker, others_login, others_topics[1], [(key, b"{}", ())]))
    for topic in (own_topic, own_records):
        with pytest.raises(TopicAuthorizationFailedError):
            asyncio.run(send(auth_broker, others_login, topic, [(b"k", b"{}", ())]))

    # Not the other producer's topics, nor the shared or internal topics.
    shared = [auth_broker.topics.requests, auth_broker.topics.records]
    for topic in (*others_topics, *shared, auth_broker.topics.record_results):
        with pytest.raises(TopicAuthorizationFailedError):
            asyncio.run(send(auth_broker, security, topic, [(b"k", b"{}", ())]))
    stack.stop()
    assert password not in stack.logs()
