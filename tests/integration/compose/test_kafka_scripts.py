"""The compose stack's broker scripts, run for real outside a container.

No Docker engine runs here, so the apache/kafka image's /opt/kafka/bin is stood in for by
wrappers around the same Kafka classes from the provisioned Maven Central jars; everything else
(the config broker.sh writes, the SCRAM users it formats, the ACLs grant-acls.sh adds) is what
the containers run.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaConnectionError, TopicAuthorizationFailedError

from batchline import broker
from batchline.broker.provision import LOG4J_CONFIG_PATH
from streams.kafka_security import PLAINTEXT, KafkaSecurity
from streams.topics import TopicNames, ensure_topics
from tests.unit.compose.artifacts import COMPOSE_DIR

pytestmark = [pytest.mark.kafka, pytest.mark.slow]
SCRIPTS = COMPOSE_DIR / "kafka"
PASSWORDS = {
    "KAFKA_ADMIN_PASSWORD": "admin-pw",
    "KAFKA_BATCHLINE_PASSWORD": "batchline-pw",
    "KAFKA_READER_PASSWORD": "reader-pw",
    "KAFKA_PRODUCER_PASSWORD": "producer-pw",
}
# What the image's scripts of these names run.
KAFKA_CLASSES = {
    "kafka-storage.sh": "kafka.tools.StorageTool",
    "kafka-server-start.sh": "kafka.Kafka",
    "kafka-acls.sh": "org.apache.kafka.tools.AclCommand",
}


def _kafka_home(root: Path) -> Path:
    bin_dir = root / "bin"
    bin_dir.mkdir(parents=True)
    libs = broker.ensure_kafka_jars()
    for name, main_class in KAFKA_CLASSES.items():
        script = bin_dir / name
        script.write_text(
            "#!/bin/sh\n"
            f"exec java -Xmx512m -Dlog4j2.configurationFile={LOG4J_CONFIG_PATH} "
            f'-Dbatchline.broker.logdir={root} -cp "{libs}/*" {main_class} "$@"\n'
        )
        script.chmod(0o755)
    return root


@pytest.fixture(scope="module")
def compose_broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, str]]:
    root = tmp_path_factory.mktemp("compose-kafka")
    port, controller_port, external_port = (broker.free_port() for _ in range(3))
    env = {
        **os.environ,
        **PASSWORDS,
        "KAFKA_HOME": str(_kafka_home(root / "kafka")),
        "KAFKA_DATA_DIR": str(root / "data"),
        "KAFKA_CONFIG_DIR": str(root / "config"),
        "KAFKA_ADVERTISED_HOST": "127.0.0.1",
        "KAFKA_LISTEN_HOST": "127.0.0.1",
        "KAFKA_PORT": str(port),
        "KAFKA_CONTROLLER_PORT": str(controller_port),
        "KAFKA_EXTERNAL_PORT": str(external_port),
    }
    log = (root / "broker.log").open("wb")
    process = subprocess.Popen(  # noqa: S603
        ["/bin/bash", str(SCRIPTS / "broker.sh")], env=env, stdout=log, stderr=subprocess.STDOUT
    )
    bootstrap = f"127.0.0.1:{port}"
    prefix = f"compose-{uuid.uuid4().hex[:8]}"
    try:
        admin = KafkaSecurity.scram("admin", PASSWORDS["KAFKA_ADMIN_PASSWORD"])
        broker.wait_ready(bootstrap, process, security=admin)
        granted = subprocess.run(  # noqa: S603
            ["/bin/bash", str(SCRIPTS / "grant-acls.sh")],
            env={**env, "KAFKA_BOOTSTRAP": bootstrap, "BATCHLINE_TOPIC_PREFIX": prefix},
            capture_output=True,
            text=True,
            check=False,
            timeout=120,
        )
        assert granted.returncode == 0, granted.stderr
        assert f"ACLs granted for topic prefix {prefix}" in granted.stdout
        yield bootstrap, prefix
    finally:
        broker.stop(process)
        log.close()


async def _send(bootstrap: str, security: KafkaSecurity, topic: str) -> None:
    producer = AIOKafkaProducer(
        bootstrap_servers=bootstrap, request_timeout_ms=5_000, **security.client_options()
    )
    try:
        await producer.start()
        await producer.send_and_wait(topic, b"{}", key=b"batch_x")
    finally:
        await producer.stop()


def test_the_service_creates_and_writes_its_topics_and_no_one_else_may(
    compose_broker: tuple[str, str],
) -> None:
    bootstrap, prefix = compose_broker
    service = KafkaSecurity.scram("batchline", PASSWORDS["KAFKA_BATCHLINE_PASSWORD"])
    reader = KafkaSecurity.scram("results-reader", PASSWORDS["KAFKA_READER_PASSWORD"])
    producer = KafkaSecurity.scram("producer", PASSWORDS["KAFKA_PRODUCER_PASSWORD"])
    topics = TopicNames(prefix)

    async def check() -> None:
        await ensure_topics(bootstrap, topics, 1, service)
        await _send(bootstrap, service, topics.requests)
        await _send(bootstrap, producer, topics.requests)
        with pytest.raises(TopicAuthorizationFailedError):
            await _send(bootstrap, reader, topics.requests)
        with pytest.raises(TopicAuthorizationFailedError):
            await _send(bootstrap, producer, topics.control)
        with pytest.raises(KafkaConnectionError):
            await _send(bootstrap, PLAINTEXT, topics.requests)

    asyncio.run(check())
