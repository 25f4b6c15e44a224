"""Topics are created with the declared partitions and limits; smaller ones made elsewhere are
reported with the command that fixes them."""

from __future__ import annotations

import logging

import pytest
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from streams.topics import MAX_MESSAGE_BYTES, TopicNames, ensure_topics, topic_partitions

pytestmark = pytest.mark.kafka


async def test_ensure_topics_creates_every_topic_with_the_partitions_asked_for(
    kafka_bootstrap: str, topic_prefix: str, caplog: pytest.LogCaptureFixture
) -> None:
    names = TopicNames(topic_prefix)
    with caplog.at_level(logging.WARNING, logger="streams.topics"):
        await ensure_topics(kafka_bootstrap, names, 3)
        await ensure_topics(kafka_bootstrap, names, 3)  # a second process starting: no change
    for topic in names.all():
        assert await topic_partitions(kafka_bootstrap, topic) == [0, 1, 2]
    assert caplog.records == []


async def test_a_requests_topic_made_elsewhere_with_kafkas_stock_limit_is_reported(
    kafka_bootstrap: str, topic_prefix: str, caplog: pytest.LogCaptureFixture
) -> None:
    names = TopicNames(topic_prefix)
    admin = AIOKafkaAdminClient(bootstrap_servers=kafka_bootstrap)
    await admin.start()
    try:
        # Kafka's stock default; the brokers Batchline starts default to MAX_MESSAGE_BYTES.
        limit = {"max.message.bytes": "1048588"}
        await admin.create_topics([NewTopic(names.requests, 2, 1, topic_configs=limit)])
    finally:
        await admin.close()
    with caplog.at_level(logging.WARNING, logger="streams.topics"):
        await ensure_topics(kafka_bootstrap, names, 2)
    warnings = [record for record in caplog.records if record.levelno == logging.WARNING]
    assert [getattr(record, "topic", None) for record in warnings] == [names.requests]
    message = warnings[0].getMessage()
    assert f"--entity-name {names.requests}" in message
    assert f"max.message.bytes={MAX_MESSAGE_BYTES}" in message
    assert await topic_partitions(kafka_bootstrap, names.results) == [0, 1]
